import Foundation

/// Makes a `TemplateValue` of a view model through its `Encodable` conformance (code the
/// compiler writes, no reflection): properties by snake_case name (`openedIso` →
/// `opened_iso`), numbers as their decimal text, a nil optional as `.null` (so a row's
/// missing owner does not find the page's `owner`).
enum TemplateEncoder {
    enum Naming: Sendable {
        /// `decidedBy` → `decided_by`: the page templates' names.
        case snakeCase
        /// As declared (`decidedBy`): the document templates' names.
        case asDeclared
    }

    static func value(_ model: some Encodable, naming: Naming = .snakeCase) -> TemplateValue {
        do {
            return try encoded(model, naming)
        } catch {
            // Only a type's own encode(to:) can throw, and no view model has one that does.
            return .null
        }
    }

    static func encoded(_ value: some Encodable, _ naming: Naming) throws -> TemplateValue {
        switch value {
        case let s as String: return .text(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .text(String(i))
        case let i as Int64: return .text(String(i))
        case let map as [String: String]:
            // Keys as they are (labels), not names to convert; in key order.
            var fields = TemplateFields()
            for key in map.keys.sorted() { fields.append(key, .text(map[key] ?? "")) }
            return .object(fields)
        default:
            let storage = Storage(naming)
            try value.encode(to: Encoder(storage))
            return storage.value
        }
    }

    /// `decidedBy` → `decided_by` (names are ASCII, with no runs of capitals).
    static func snake(_ name: String) -> String {
        guard name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return name }
        var out = [UInt8]()
        out.reserveCapacity(name.utf8.count + 4)
        for c in name.utf8 {
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") {
                out.append(UInt8(ascii: "_"))
                out.append(c + 32)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// What one value's containers write. Values are written in place; a nested container
    /// (which synthesized conformances do not use) is read when the outer value is.
    final class Storage {
        let naming: Naming
        init(_ naming: Naming) { self.naming = naming }

        func name(_ key: some CodingKey) -> String { naming == .snakeCase ? snake(key.stringValue) : key.stringValue }

        enum Shape { case single, object, list }
        var shape = Shape.single
        var single = TemplateValue.null
        var fields = TemplateFields()
        var items: [TemplateValue] = []
        var nestedFields: [(String, Storage)] = []
        var nestedItems: [(Int, Storage)] = []

        var value: TemplateValue {
            switch shape {
            case .single: return single
            case .object:
                var fields = fields
                for (key, storage) in nestedFields { fields[key] = storage.value }
                return .object(fields)
            case .list:
                var items = items
                for (index, storage) in nestedItems { items[index] = storage.value }
                return .list(items)
            }
        }
    }

    struct Encoder: Swift.Encoder {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        init(_ storage: Storage) { self.storage = storage }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            storage.shape = .object
            return KeyedEncodingContainer(Keyed<Key>(storage: storage))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            storage.shape = .list
            return Unkeyed(storage: storage)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(storage: storage) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }

        func set(_ value: TemplateValue, _ key: Key) { storage.fields.append(storage.name(key), value) }

        func nested(_ key: Key) -> Storage {
            let child = Storage(storage.naming)
            storage.nestedFields.append((storage.name(key), child))
            storage.fields.append(storage.name(key), .null)
            return child
        }

        mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
        mutating func encode(_ value: String, forKey key: Key) throws { set(.text(value), key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { set(.text(String(value)), key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { set(.text(String(value)), key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { set(try encoded(value, storage.naming), key) }
        // A nil optional is written as null, not left out (see TemplateEncoder).
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { set(value.map { .text($0) } ?? .null, key) }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { set(value.map { .bool($0) } ?? .null, key) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { set(value.map { .text(String($0)) } ?? .null, key) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { set(value.map { .text(String($0)) } ?? .null, key) }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            set(try value.map { try encoded($0, storage.naming) } ?? .null, key)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            Encoder(nested(key)).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Encoder(nested(key)).unkeyedContainer()
        }

        mutating func superEncoder() -> any Swift.Encoder { Encoder(storage) }
        mutating func superEncoder(forKey key: Key) -> any Swift.Encoder { Encoder(nested(key)) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }
        var count: Int { storage.items.count }

        func nested() -> Storage {
            let child = Storage(storage.naming)
            storage.nestedItems.append((storage.items.count, child))
            storage.items.append(.null)
            return child
        }

        mutating func encodeNil() throws { storage.items.append(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws { storage.items.append(try encoded(value, storage.naming)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            Encoder(nested()).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { Encoder(nested()).unkeyedContainer() }
        mutating func superEncoder() -> any Swift.Encoder { Encoder(nested()) }
    }

    struct Single: SingleValueEncodingContainer {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil() throws { storage.single = .null }
        mutating func encode(_ value: String) throws { storage.single = .text(value) }
        mutating func encode(_ value: Bool) throws { storage.single = .bool(value) }
        mutating func encode(_ value: Int) throws { storage.single = .text(String(value)) }
        mutating func encode(_ value: Int64) throws { storage.single = .text(String(value)) }
        mutating func encode(_ value: Double) throws { storage.single = .text(String(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { storage.single = try encoded(value, storage.naming) }
    }
}
