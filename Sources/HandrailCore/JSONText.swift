public import Foundation

/// A minimal JSON writer for the hot path: what ingestion sends to PostgreSQL and answers
/// to senders. Foundation's JSONSerialization took half of a delivery's CPU time.
public struct JSONText: Sendable {
    public var out = ""

    public init() {}

    public mutating func key(_ name: String) {
        out += ",\""
        out += name
        out += "\":"
    }

    public mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    /// Grafana's values, as `"vals"` (finite numbers only: JSON has no NaN).
    public mutating func values(_ values: [String: Double]) {
        key("vals")
        out += "{"
        var first = true
        for (k, v) in values where v.isFinite {
            if !first { out += "," }
            first = false
            string(k)
            out += ":\(v)"
        }
        out += "}"
    }

    public mutating func field(_ name: String, _ value: [String: String]) {
        key(name)
        out += "{"
        var first = true
        for (k, v) in value {
            if !first { out += "," }
            first = false
            string(k)
            out += ":"
            string(v)
        }
        out += "}"
    }

    /// A JSON string: quotes, backslashes and control characters escaped. Runs of plain
    /// text are copied whole (a handoff's Markdown is hundreds of kilobytes of lines).
    public mutating func string(_ value: String) {
        out += "\""
        var value = value
        value.withUTF8 { bytes in
            var start = 0
            for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                if start < i { out += String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self) }
                start = i + 1
                switch byte {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                case 0: out += "\\ufffd"  // PostgreSQL text cannot hold NUL
                default:
                    let hex = String(byte, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            }
            if start < bytes.count { out += String(decoding: UnsafeBufferPointer(rebasing: bytes[start...]), as: UTF8.self) }
        }
        out += "\""
    }
}

/// Writes JSON objects field by field into one buffer, in the order given: callers give the
/// keys sorted, as `JSONEncoder`'s `.sortedKeys` writes them (after the snake_case
/// conversion when asked; keys are ASCII). A missing optional has no key, as
/// `encodeIfPresent` writes it.
public struct JSONObjectWriter {
    let snakeCase: Bool
    public var out = JSONText()
    var first = true

    public init(snakeCase: Bool) { self.snakeCase = snakeCase }

    public mutating func open() { out.out += "{"; first = true }
    public mutating func close() { out.out += "}"; first = false }

    mutating func key(_ name: String) {
        out.out += first ? "\"" : ",\""
        first = false
        out.out += snakeCase ? Self.snake(name) : name
        out.out += "\":"
    }

    public mutating func string(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        out.string(value)
    }

    public mutating func int(_ name: String, _ value: Int64?) {
        guard let value else { return }
        key(name)
        out.out += String(value)
    }

    public mutating func bool(_ name: String, _ value: Bool) { key(name); out.out += value ? "true" : "false" }
    /// `2026-11-16T09:00:00Z`, as the API writes dates.
    public mutating func date(_ name: String, _ value: Date?) { string(name, value.map(RFC3339.format)) }

    /// A value already written as JSON.
    public mutating func raw(_ name: String, _ json: String?) {
        guard let json else { return }
        key(name)
        out.out += json
    }

    public mutating func array<T>(_ name: String, _ items: [T], _ each: (inout JSONObjectWriter, T) -> Void) {
        key(name)
        out.out += "["
        for (n, item) in items.enumerated() {
            if n > 0 { out.out += "," }
            open()
            each(&self, item)
            close()
        }
        out.out += "]"
    }

    /// `decidedBy` → `decided_by`, as `JSONEncoder.KeyEncodingStrategy.convertToSnakeCase`
    /// does for keys without runs of capitals.
    static func snake(_ key: String) -> String {
        guard key.utf8.contains(where: { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else { return key }
        var out = ""
        for c in key.unicodeScalars {
            if ("A"..."Z").contains(c) {
                out += "_"
                out.unicodeScalars.append(Unicode.Scalar(UInt8(c.value + 32)))
            } else {
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
