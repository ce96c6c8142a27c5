public import Foundation

/// A Swift value that can be sent as a statement parameter, in PostgreSQL's text format.
///
/// Values are always sent as parameters (`$1`, `$2`, …), never spliced into SQL text.
public protocol PostgresEncodable: Sendable {
    /// The value in PostgreSQL's text input format, or `nil` for SQL NULL.
    var postgresText: String? { get }
}

/// A Swift type that can be decoded from PostgreSQL's text output format.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value from its text representation.
    /// - Throws: `PostgresError` of kind `.decoding` when the text is not a valid value.
    init(postgresText text: String) throws(PostgresError)
    /// What a SQL NULL decodes to. Non-optional types throw; `Optional` answers `nil`.
    static func decodeNull() throws(PostgresError) -> Self
}

extension PostgresDecodable {
    public static func decodeNull() throws(PostgresError) -> Self {
        throw PostgresError(kind: .decoding, message: "unexpected NULL for non-optional \(Self.self)")
    }
}

func decodingError(_ text: String, as type: Any.Type) -> PostgresError {
    PostgresError(kind: .decoding, message: "cannot decode \(text.prefix(64).debugDescription) as \(type)")
}

// MARK: - Optional

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText text: String) throws(PostgresError) {
        self = .some(try Wrapped(postgresText: text))
    }
    public static func decodeNull() throws(PostgresError) -> Self { nil }
}

// MARK: - Text

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self }
    public init(postgresText text: String) { self = text }
}

extension Substring: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

/// A Swift enum stored as its raw text (a PostgreSQL enum or a text column): a value the
/// enum does not know is a decoding error, never a default.
public protocol PostgresEnum: RawRepresentable, PostgresEncodable, PostgresDecodable where RawValue == String {}

extension PostgresEnum {
    public var postgresText: String? { rawValue }
    public init(postgresText text: String) throws(PostgresError) {
        guard let value = Self(rawValue: text) else { throw decodingError(text, as: Self.self) }
        self = value
    }
}

// MARK: - Numbers and booleans

/// Integers travel as their decimal text; each width checks its own range on the way in.
public protocol PostgresInteger: FixedWidthInteger, PostgresEncodable, PostgresDecodable {}

extension PostgresInteger {
    public var postgresText: String? { String(self) }
    public init(postgresText text: String) throws(PostgresError) {
        guard let v = Self(text) else { throw decodingError(text, as: Self.self) }
        self = v
    }
}

extension Int: PostgresInteger {}
extension Int64: PostgresInteger {}
extension Int32: PostgresInteger {}
extension Int16: PostgresInteger {}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return String(self)
    }
    public init(postgresText text: String) throws(PostgresError) {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let v = Double(text) else { throw decodingError(text, as: Double.self) }
            self = v
        }
    }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self ? "true" : "false" }
    public init(postgresText text: String) throws(PostgresError) {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw decodingError(text, as: Bool.self)
        }
    }
}

// MARK: - UUID

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { uuidString.lowercased() }
    public init(postgresText text: String) throws(PostgresError) {
        guard let v = UUID(uuidString: text) else { throw decodingError(text, as: UUID.self) }
        self = v
    }
}

// MARK: - Timestamps

/// `Date` travels as `timestamptz` with microsecond precision (PostgreSQL's own precision).
/// Every connection sets `TimeZone=UTC` and `DateStyle=ISO`, so the server's text is stable.
extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { PostgresTimestamp.format(self) }
    public init(postgresText text: String) throws(PostgresError) {
        guard let d = PostgresTimestamp.parse(text) else { throw decodingError(text, as: Date.self) }
        self = d
    }
}

enum PostgresTimestamp {
    /// `2024-03-01 12:34:56.123456+00`, always UTC.
    static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = Int64(t.rounded(.down))
        var micros = Int64(((t - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let micro = String(micros)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 6 - micro.count) + micro + "+00"
    }

    /// Parses ISO-style `timestamptz`/`timestamp` output: `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]]`.
    /// A missing offset means UTC (plain `timestamp` columns hold UTC by convention here).
    static func parse(_ text: String) -> Date? {
        let u = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int? {
            guard i + width <= u.count else { return nil }
            var v = 0
            for k in i..<(i + width) {
                let c = u[k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += width
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < u.count, u[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2) else { return nil }
        guard expect(32) || expect(84) else { return nil }  // ' ' or 'T'
        guard let hour = number(2), expect(58), let minute = number(2), expect(58), let second = number(2) else { return nil }
        var fraction = 0.0
        if expect(46) {
            var scale = 0.1
            while i < u.count, u[i] >= 48 && u[i] <= 57 {
                fraction += Double(u[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offset = 0
        if i < u.count {
            let sign: Int
            if u[i] == 43 { sign = 1 } else if u[i] == 45 { sign = -1 } else if u[i] == 90 { sign = 0 } else { return nil }
            i += 1
            if sign != 0 {
                guard let oh = number(2) else { return nil }
                var om = 0
                var os = 0
                if expect(58) {
                    guard let m = number(2) else { return nil }
                    om = m
                }
                if expect(58) {
                    guard let s = number(2) else { return nil }
                    os = s
                }
                offset = sign * (oh * 3600 + om * 60 + os)
            }
        }
        guard i == u.count else { return nil }  // e.g. " BC" or trailing junk
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = timegm(&parts)
        return Date(timeIntervalSince1970: Double(Int64(epoch) - Int64(offset)) + fraction)
    }
}

// MARK: - JSON

/// A `json`/`jsonb` value, carried as its text.
public struct PostgresJSON: PostgresEncodable, PostgresDecodable, Hashable {
    public var text: String

    public init(text: String) { self.text = text }

    /// Encodes any `Encodable` value as JSON text (keys sorted, so equal values compare equal).
    public init<T: Encodable>(encoding value: T) throws(PostgresError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        do {
            self.text = String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw PostgresError(kind: .invalidParameter, message: "cannot encode \(T.self) as JSON: \(error)")
        }
    }

    public init(postgresText text: String) { self.text = text }
    public var postgresText: String? { text }

    /// Decodes the JSON text into `T`.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws(PostgresError) -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw PostgresError(kind: .decoding, message: "cannot decode JSON as \(T.self): \(error)")
        }
    }
}

// MARK: - Arrays

/// An element type of a one-dimensional PostgreSQL array (`text[]`, `bigint[]`, `uuid[]`).
public protocol PostgresArrayElement: PostgresEncodable, PostgresDecodable {}
extension String: PostgresArrayElement {}
extension Int: PostgresArrayElement {}
extension Int64: PostgresArrayElement {}
extension UUID: PostgresArrayElement {}
extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// The array literal: every element double-quoted with `"` and `\` escaped, so any text
    /// (commas, braces, the word NULL, quotes) survives unchanged.
    /// Built as UTF-8 bytes: `"` and `\` are ASCII, never part of another character's bytes
    /// (appending scalar by scalar to a String was 5 % of a storm delivery's server CPU).
    public var postgresText: String? {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (n, element) in enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            guard var text = element.postgresText else {
                out.append(contentsOf: "NULL".utf8)
                continue
            }
            out.append(UInt8(ascii: "\""))
            text.withUTF8 { bytes in
                for byte in bytes {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                    out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public init(postgresText text: String) throws(PostgresError) {
        guard let items = PostgresArrayLiteral.parse(text) else { throw decodingError(text, as: [Element].self) }
        var result: [Element] = []
        result.reserveCapacity(items.count)
        for item in items {
            if let item {
                result.append(try Element(postgresText: item))
            } else {
                result.append(try Element.decodeNull())
            }
        }
        self = result
    }
}

enum PostgresArrayLiteral {
    /// Parses a one-dimensional array literal such as `{a,"b c","d\"e",NULL}`; `nil` elements
    /// are SQL NULLs. Returns `nil` for anything else (multi-dimensional, bounds decoration).
    static func parse(_ text: String) -> [String?]? {
        let s = Array(text.unicodeScalars)
        guard s.first == "{", s.last == "}" else { return nil }
        var items: [String?] = []
        var i = 1
        let end = s.count - 1
        if end == 1 { return [] }
        while i <= end {
            if i < end, s[i] == "\"" {
                var v = String.UnicodeScalarView()
                i += 1
                while i < end, s[i] != "\"" {
                    if s[i] == "\\" {
                        i += 1
                        guard i < end else { return nil }
                    }
                    v.append(s[i])
                    i += 1
                }
                guard i < end else { return nil }
                i += 1  // closing quote
                items.append(String(v))
            } else {
                var v = String.UnicodeScalarView()
                while i < end, s[i] != "," {
                    if s[i] == "{" || s[i] == "\"" { return nil }
                    if s[i] == "\\" {
                        i += 1
                        guard i < end else { return nil }
                    }
                    v.append(s[i])
                    i += 1
                }
                let word = String(v).trimmingCharacters(in: .whitespaces)
                items.append(word.uppercased() == "NULL" ? nil : word)
            }
            // Now at ',' or at the closing brace.
            if i == end { break }
            guard s[i] == "," else { return nil }
            i += 1
        }
        return items
    }
}
