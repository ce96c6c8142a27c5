public import Foundation

/// A strict JSON parser (RFC 8259) for alert payloads: into `JSONValue` (generic and
/// PagerDuty bodies, whose shapes vary), and through `Reader` straight into alerts
/// (`AlertmanagerReader`, 4× faster than `JSONDecoder`, see there). Nesting deeper than
/// `maxDepth` is refused, so no payload can exhaust the stack.
public enum JSONParser {
    public static let maxDepth = 64

    public struct Failure: Error, Sendable, Equatable {
        public let offset: Int
    }

    public static func parse(_ data: Data) throws(Failure) -> JSONValue {
        var reader = Reader(bytes: [UInt8](data))
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.i == reader.bytes.count else { throw Failure(offset: reader.i) }
        return value
    }

    struct Reader {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func value(depth: Int) throws(Failure) -> JSONValue {
            guard depth < JSONParser.maxDepth, i < bytes.count else { throw Failure(offset: i) }
            switch bytes[i] {
            case 0x7B: return try object(depth: depth)
            case 0x5B: return try array(depth: depth)
            case 0x22: return .string(try string())
            case 0x74:
                try literal("true")
                return .bool(true)
            case 0x66:
                try literal("false")
                return .bool(false)
            case 0x6E:
                try literal("null")
                return .null
            default: return .number(try number())
            }
        }

        /// Reads past one value, checked exactly as `value(depth:)` checks it, without
        /// building it: for the keys a reader does not use (Alertmanager's `groupLabels`,
        /// `commonLabels`, … cost a dictionary each).
        mutating func skip(depth: Int) throws(Failure) {
            guard depth < JSONParser.maxDepth, i < bytes.count else { throw Failure(offset: i) }
            switch bytes[i] {
            case 0x7B:
                if enter(0x7D) { return }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == 0x22 else { throw Failure(offset: i) }
                    _ = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == 0x3A else { throw Failure(offset: i) }
                    i += 1
                    skipSpace()
                    try skip(depth: depth + 1)
                    guard try more(0x7D) else { return }
                }
            case 0x5B:
                if enter(0x5D) { return }
                while true {
                    skipSpace()
                    try skip(depth: depth + 1)
                    guard try more(0x5D) else { return }
                }
            case 0x22: _ = try string()
            case 0x74: try literal("true")
            case 0x66: try literal("false")
            case 0x6E: try literal("null")
            default: _ = try number()
            }
        }

        /// Steps into the object or array at the cursor; `true` when it is empty (and read).
        mutating func enter(_ close: UInt8) -> Bool {
            i += 1
            skipSpace()
            guard i < bytes.count, bytes[i] == close else { return false }
            i += 1
            return true
        }

        /// After a member or an element: `true` at a comma (another follows), `false` at
        /// `close` (the end); both are read.
        mutating func more(_ close: UInt8) throws(Failure) -> Bool {
            skipSpace()
            guard i < bytes.count else { throw Failure(offset: i) }
            if bytes[i] == 0x2C {
                i += 1
                return true
            }
            if bytes[i] == close {
                i += 1
                return false
            }
            throw Failure(offset: i)
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let n = word.utf8CodeUnitCount
            guard i + n <= bytes.count else { throw Failure(offset: i) }
            let expected = UnsafeBufferPointer(start: word.utf8Start, count: n)
            for k in 0..<n where bytes[i + k] != expected[k] { throw Failure(offset: i + k) }
            i += n
        }

        mutating func object(depth: Int) throws(Failure) -> JSONValue {
            var result: [String: JSONValue] = [:]
            if enter(0x7D) { return .object(result) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == 0x22 else { throw Failure(offset: i) }
                let key = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == 0x3A else { throw Failure(offset: i) }
                i += 1
                skipSpace()
                result[key] = try value(depth: depth + 1)
                guard try more(0x7D) else { return .object(result) }
            }
        }

        mutating func array(depth: Int) throws(Failure) -> JSONValue {
            var result: [JSONValue] = []
            if enter(0x5D) { return .array(result) }
            while true {
                skipSpace()
                result.append(try value(depth: depth + 1))
                guard try more(0x5D) else { return .array(result) }
            }
        }

        mutating func string() throws(Failure) -> String {
            i += 1
            let start = i
            // The common case: no escapes — one slice, validated as UTF-8 once.
            var high: UInt8 = 0
            while i < bytes.count, bytes[i] != 0x22, bytes[i] != 0x5C {
                guard bytes[i] >= 0x20 else { throw Failure(offset: i) }
                high |= bytes[i]
                i += 1
            }
            guard i < bytes.count else { throw Failure(offset: i) }
            if bytes[i] == 0x22 {
                defer { i += 1 }
                let end = i
                guard let text = bytes.withUnsafeBufferPointer({ Self.utf8(UnsafeBufferPointer(rebasing: $0[start..<end]), ascii: high < 0x80) })
                else {
                    throw Failure(offset: start)
                }
                return text
            }
            var out = Array(bytes[start..<i])
            while i < bytes.count {
                let c = bytes[i]
                if c == 0x22 {
                    i += 1
                    guard let text = out.withUnsafeBufferPointer({ Self.utf8($0, ascii: false) }) else { throw Failure(offset: start) }
                    return text
                }
                guard c >= 0x20 else { throw Failure(offset: i) }
                if c != 0x5C {
                    out.append(c)
                    i += 1
                    continue
                }
                i += 1
                guard i < bytes.count else { throw Failure(offset: i) }
                switch bytes[i] {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x2F: out.append(0x2F)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by \u and a low one.
                        guard i + 2 < bytes.count, bytes[i + 1] == 0x5C, bytes[i + 2] == 0x75 else { throw Failure(offset: i) }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Failure(offset: i) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw Failure(offset: i)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw Failure(offset: i) }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw Failure(offset: i)
                }
                i += 1
            }
            throw Failure(offset: i)
        }

        /// The string these bytes spell, or `nil` when they are not UTF-8. ASCII needs no
        /// check; other text is decoded (which repairs) and compared with the bytes, so a
        /// repair shows as a difference. (`String(validating:as:)` is generic over the encoding
        /// and looked its metadata up on every call: a sixth of reading a body.)
        static func utf8(_ bytes: UnsafeBufferPointer<UInt8>, ascii: Bool) -> String? {
            let text = String(decoding: bytes, as: UTF8.self)
            if ascii { return text }
            return text.utf8.elementsEqual(bytes) ? text : nil
        }

        /// Reads the four hex digits after `\u`; leaves `i` on the last of them.
        mutating func hex4() throws(Failure) -> UInt32 {
            guard i + 4 < bytes.count else { throw Failure(offset: i) }
            var v: UInt32 = 0
            for k in 1...4 {
                let c = bytes[i + k]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw Failure(offset: i + k)
                }
                v = v << 4 | d
            }
            i += 4
            return v
        }

        mutating func number() throws(Failure) -> Double {
            let start = i
            if i < bytes.count, bytes[i] == 0x2D { i += 1 }
            guard i < bytes.count, (0x30...0x39).contains(bytes[i]) else { throw Failure(offset: i) }
            if bytes[i] == 0x30 { i += 1 } else { while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 } }
            if i < bytes.count, bytes[i] == 0x2E {
                i += 1
                guard i < bytes.count, (0x30...0x39).contains(bytes[i]) else { throw Failure(offset: i) }
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
            }
            if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
                i += 1
                if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
                guard i < bytes.count, (0x30...0x39).contains(bytes[i]) else { throw Failure(offset: i) }
                while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }
            }
            guard let value = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else { throw Failure(offset: start) }
            return value
        }
    }
}
