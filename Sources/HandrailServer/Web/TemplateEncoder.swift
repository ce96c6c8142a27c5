import Foundation

/// Makes a `TemplateValue` of a view model through its `Encodable` conformance (code the
/// compiler writes, no reflection): properties by snake_case name (`openedIso` →
/// `opened_iso`), numbers as their decimal text, a nil optional as `.null` (so a row's
/// missing owner does not find the page's `owner`).
enum TemplateEncoder {
    static func value(_ model: some Encodable) -> TemplateValue {
        let encoder = Encoder()
        do {
            try model.encode(to: encoder)
        } catch {
            // Only a type's own encode(to:) can throw, and no view model has one that does.
            return .null
        }
        return encoder.box.value
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

    /// Where one value is written: containers write into their box, and nested boxes are
    /// read when the outer value is.
    final class Box {
        enum Content {
            case value(TemplateValue)
            case object([String: Box])
            case list([Box])
        }
        var content: Content = .value(.null)

        var value: TemplateValue {
            switch content {
            case .value(let v): v
            case .object(let fields): .object(fields.mapValues(\.value))
            case .list(let items): .list(items.map(\.value))
            }
        }
    }

    final class Encoder: Swift.Encoder {
        let box: Box
        var codingPath: [any CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        init(_ box: Box = Box()) { self.box = box }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if case .object = box.content {} else { box.content = .object([:]) }
            return KeyedEncodingContainer(Keyed<Key>(box: box))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if case .list = box.content {} else { box.content = .list([]) }
            return Unkeyed(box: box)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(box: box) }
    }

    static func encoded(_ value: some Encodable) throws -> Box {
        switch value {
        case let s as String: return leaf(.text(s))
        case let b as Bool: return leaf(.bool(b))
        case let i as Int: return leaf(.text(String(i)))
        case let i as Int64: return leaf(.text(String(i)))
        default:
            let encoder = Encoder()
            try value.encode(to: encoder)
            return encoder.box
        }
    }

    static func leaf(_ value: TemplateValue) -> Box {
        let box = Box()
        box.content = .value(value)
        return box
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: Box
        var codingPath: [any CodingKey] { [] }

        func set(_ child: Box, _ key: Key) {
            guard case .object(var fields) = box.content else { return }
            box.content = .value(.null)  // keeps `fields` uniquely referenced while it changes
            fields[snake(key.stringValue)] = child
            box.content = .object(fields)
        }

        mutating func encodeNil(forKey key: Key) throws { set(leaf(.null), key) }
        mutating func encode(_ value: String, forKey key: Key) throws { set(leaf(.text(value)), key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { set(leaf(.bool(value)), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { set(leaf(.text(String(value))), key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { set(leaf(.text(String(value))), key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { set(try encoded(value), key) }
        // A nil optional is written as null, not left out (see TemplateEncoder).
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { set(value.map { leaf(.text($0)) } ?? leaf(.null), key) }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { set(value.map { leaf(.bool($0)) } ?? leaf(.null), key) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { set(value.map { leaf(.text(String($0))) } ?? leaf(.null), key) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { set(value.map { leaf(.text(String($0))) } ?? leaf(.null), key) }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            set(try value.map { try encoded($0) } ?? leaf(.null), key)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let child = Box()
            set(child, key)
            return Encoder(child).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = Box()
            set(child, key)
            return Encoder(child).unkeyedContainer()
        }

        mutating func superEncoder() -> any Swift.Encoder { Encoder(box) }
        mutating func superEncoder(forKey key: Key) -> any Swift.Encoder {
            let child = Box()
            set(child, key)
            return Encoder(child)
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let box: Box
        var codingPath: [any CodingKey] { [] }
        var count: Int {
            if case .list(let items) = box.content { items.count } else { 0 }
        }

        func append(_ child: Box) {
            guard case .list(var items) = box.content else { return }
            box.content = .value(.null)
            items.append(child)
            box.content = .list(items)
        }

        mutating func encodeNil() throws { append(leaf(.null)) }
        mutating func encode<T: Encodable>(_ value: T) throws { append(try encoded(value)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let child = Box()
            append(child)
            return Encoder(child).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let child = Box()
            append(child)
            return Encoder(child).unkeyedContainer()
        }

        mutating func superEncoder() -> any Swift.Encoder {
            let child = Box()
            append(child)
            return Encoder(child)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let box: Box
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil() throws { box.content = .value(.null) }
        mutating func encode(_ value: String) throws { box.content = .value(.text(value)) }
        mutating func encode(_ value: Bool) throws { box.content = .value(.bool(value)) }
        mutating func encode(_ value: Int) throws { box.content = .value(.text(String(value))) }
        mutating func encode(_ value: Int64) throws { box.content = .value(.text(String(value))) }
        mutating func encode(_ value: Double) throws { box.content = .value(.text(String(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws { box.content = try encoded(value).content }
    }
}
