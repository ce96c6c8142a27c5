public import Foundation

/// A minimal JSON writer for the hot path: what ingestion sends to PostgreSQL and answers
/// to senders. Foundation's JSONSerialization took half of a delivery's CPU time.
/// It writes UTF-8 bytes, not a `String`: appending to a `String` piece by piece cost about
/// as much as reading the alerts did. `text` makes the one `String` at the end.
public struct JSONText: Sendable {
    public var bytes: [UInt8] = []

    public init() {}

    /// What was written, as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }

    /// Appends text as it is (JSON already, or a number).
    public static func += (w: inout JSONText, text: String) {
        var text = text
        text.withUTF8 { w.bytes.append(contentsOf: $0) }
    }

    public static func += (w: inout JSONText, text: StaticString) {
        w.bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends a finite number as Swift prints it (`1.5`, `1e-07`), which JSON reads.
    public mutating func number(_ value: Double) {
        self += value.description
    }

    public mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: ","))
        bytes.append(UInt8(ascii: "\""))
        self += name
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ name: StaticString, _ value: String) {
        key(name)
        string(value)
    }

    /// Grafana's values, as `"vals"` (finite numbers only: JSON has no NaN).
    public mutating func values(_ values: [String: Double]) {
        key("vals")
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for (k, v) in values where v.isFinite {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            string(k)
            bytes.append(UInt8(ascii: ":"))
            number(v)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    public mutating func field(_ name: StaticString, _ value: [String: String]) {
        key(name)
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for (k, v) in value {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            string(k)
            bytes.append(UInt8(ascii: ":"))
            string(v)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// A JSON string: quotes, backslashes and control characters escaped. Runs of plain
    /// text are copied whole (a handoff's Markdown is hundreds of kilobytes of lines).
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { text in
            var start = 0
            for (i, byte) in text.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                if start < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start..<i])) }
                start = i + 1
                switch byte {
                case 0x22: self += "\\\""
                case 0x5C: self += "\\\\"
                case 0x0A: self += "\\n"
                case 0x0D: self += "\\r"
                case 0x09: self += "\\t"
                case 0: self += "\\ufffd"  // PostgreSQL text cannot hold NUL
                default:
                    let hex = String(byte, radix: 16)
                    self += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            }
            if start < text.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start...])) }
        }
        bytes.append(UInt8(ascii: "\""))
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

    public mutating func open() {
        out += "{"
        first = true
    }
    public mutating func close() {
        out += "}"
        first = false
    }

    mutating func key(_ name: String) {
        out += first ? "\"" : ",\""
        first = false
        out += snakeCase ? Self.snake(name) : name
        out += "\":"
    }

    public mutating func string(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        out.string(value)
    }

    public mutating func int(_ name: String, _ value: Int64?) {
        guard let value else { return }
        key(name)
        out += String(value)
    }

    public mutating func bool(_ name: String, _ value: Bool) {
        key(name)
        out += value ? "true" : "false"
    }
    /// `2026-11-16T09:00:00Z`, as the API writes dates.
    public mutating func date(_ name: String, _ value: Date?) { string(name, value.map(RFC3339.format)) }

    /// A value already written as JSON.
    public mutating func raw(_ name: String, _ json: String?) {
        guard let json else { return }
        key(name)
        out += json
    }

    public mutating func array<T>(_ name: String, _ items: [T], _ each: (inout JSONObjectWriter, T) -> Void) {
        key(name)
        out += "["
        for (n, item) in items.enumerated() {
            if n > 0 { out += "," }
            open()
            each(&self, item)
            close()
        }
        out += "]"
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
