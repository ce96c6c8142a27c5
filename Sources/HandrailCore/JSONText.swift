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

    /// A JSON string: quotes, backslashes and control characters escaped.
    public mutating func string(_ value: String) {
        out += "\""
        var plain = true
        for byte in value.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C {
            plain = false
            break
        }
        if plain {
            out += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value == 0 {
                        out += "\\ufffd"  // PostgreSQL text cannot hold NUL
                    } else if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out += "\""
    }
}
