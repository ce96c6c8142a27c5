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
