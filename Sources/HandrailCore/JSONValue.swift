import Foundation

/// Any JSON value, for data whose shape varies (timeline event details).
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n.rounded() == n, abs(n) < 1e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// What PostgreSQL cannot store of this value: the first string or key holding a NUL
    /// character, or the first number that is not finite (`1e999`), with its path below
    /// `field` (`custom_details.a[2]`); nil when all of it can be stored.
    public func unstorable(at field: String) -> ValidationError? {
        switch self {
        case .null, .bool: return nil
        case .number(let n):
            return n.isFinite ? nil : ValidationError(field: field, message: "must be a finite number (at most about 1.8e308)")
        case .string(let s):
            return s.utf8.contains(0) ? ValidationError(field: field, message: "must not contain NUL characters (\\u0000)") : nil
        case .array(let items):
            for (n, item) in items.enumerated() { if let bad = item.unstorable(at: "\(field)[\(n)]") { return bad } }
            return nil
        case .object(let members):
            for (key, value) in members {
                let path = field.isEmpty ? String(key.prefix(40)) : "\(field).\(key.prefix(40))"
                if key.utf8.contains(0) { return ValidationError(field: path, message: "its name must not contain NUL characters (\\u0000)") }
                if let bad = value.unstorable(at: path) { return bad }
            }
            return nil
        }
    }
}
