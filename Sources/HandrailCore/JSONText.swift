import Foundation

/// A minimal JSON writer for ingestion's hot path: the rows each delivery sends to
/// PostgreSQL and the answer to its sender. `handrail-bench bench-parse` measures it against
/// `JSONEncoder` on the same alerts (10-alert Alertmanager groups: 16 µs against 106 µs per
/// delivery, see ARCHITECTURE.md). It writes UTF-8 bytes; `text` makes the one `String`.
///
/// Objects and arrays are written by closures; keys get their commas by themselves:
///
///     w.object { w in
///         w.field("status", "stored")
///         w.field("alerts", alerts) { w, a in w.object { w in w.field("fingerprint", a.fingerprint) } }
///     }
public struct JSONText: Sendable {
    public var bytes: [UInt8] = []
    /// Whether the next key is the first of its object (no comma before it).
    var first = true

    public init() {}

    /// What was written, as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }

    mutating func append(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// `{…}`: `fields` writes the members with `field` or `key`.
    public mutating func object(_ fields: (inout JSONText) -> Void) {
        append("{")
        let outer = first
        first = true
        fields(&self)
        first = outer
        append("}")
    }

    /// `[…]`: `each` writes one value per item.
    public mutating func array<S: Sequence>(_ items: S, _ each: (inout JSONText, S.Element) -> Void) {
        append("[")
        var firstItem = true
        for item in items {
            if !firstItem { append(",") }
            firstItem = false
            each(&self, item)
        }
        append("]")
    }

    /// A member's key; its value is written next.
    public mutating func key(_ name: StaticString) {
        append(first ? "\"" : ",\"")
        first = false
        append(name)
        append("\":")
    }

    public mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
    }

    public mutating func field(_ name: StaticString, _ value: Int?) {
        guard let value else { return }
        key(name)
        append(String(value))
    }

    public mutating func field(_ name: StaticString, _ value: Int64?) {
        guard let value else { return }
        key(name)
        append(String(value))
    }

    public mutating func field(_ name: StaticString, _ value: Bool) {
        key(name)
        append(value ? "true" : "false")
    }

    /// A finite number as Swift prints it (`1.5`, `1e-07`), which JSON reads; NaN and
    /// infinities (which JSON cannot hold) are left out.
    public mutating func field(_ name: StaticString, _ value: Double?) {
        guard let value, value.isFinite else { return }
        key(name)
        append(value.description)
    }

    /// An object of strings.
    public mutating func field(_ name: StaticString, _ value: [String: String]) {
        key(name)
        map(value) { $0.string($1) }
    }

    /// An object of numbers (finite ones only: JSON has no NaN).
    public mutating func field(_ name: StaticString, _ value: [String: Double]) {
        key(name)
        map(value.filter { $0.value.isFinite }) { $0.append($1.description) }
    }

    /// An array, one value per item.
    public mutating func field<S: Sequence>(_ name: StaticString, _ items: S, _ each: (inout JSONText, S.Element) -> Void) {
        key(name)
        array(items, each)
    }

    mutating func map<V>(_ value: [String: V], _ write: (inout JSONText, V) -> Void) {
        append("{")
        var firstKey = true
        for (k, v) in value {
            if !firstKey { append(",") }
            firstKey = false
            string(k)
            append(":")
            write(&self, v)
        }
        append("}")
    }

    /// A JSON string: quotes, backslashes and control characters escaped; runs of plain
    /// text copied whole.
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { text in
            var start = 0
            for (i, byte) in text.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                if start < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start..<i])) }
                start = i + 1
                switch byte {
                case 0x22: append("\\\"")
                case 0x5C: append("\\\\")
                case 0x0A: append("\\n")
                case 0x0D: append("\\r")
                case 0x09: append("\\t")
                case 0: append("\\ufffd")  // PostgreSQL text cannot hold NUL
                default:
                    let hex = String(byte, radix: 16)
                    append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                }
            }
            if start < text.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
