public import Foundation

/// RFC 3339 times (`2026-11-20T09:51:03.157076+01:00`, `…Z`), parsed by hand: Foundation's
/// ISO8601DateFormatter costs far more to create on Linux than a whole delivery's other
/// work, and sharing one across threads is not documented as safe there.
public enum RFC3339 {
    /// `2026-01-05T08:00:00Z` (whole seconds, UTC).
    public static func format(_ date: Date) -> String {
        let t = Int(date.timeIntervalSince1970.rounded(.down))
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let s = t - days * 86400
        // Not String(format:): it goes through a locale, 8 % of a Now page's server CPU.
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        return LocalDate(dayNumber: days).description + "T\(two(s / 3600)):\(two(s % 3600 / 60)):\(two(s % 60))Z"
    }

    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(utf8: $0) }
    }

    static func parse(utf8 s: UnsafeBufferPointer<UInt8>) -> Date? {
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= s.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = s[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < s.count, s[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2) else { return nil }
        guard i < s.count, s[i] == 0x54 || s[i] == 0x74 || s[i] == 0x20 else { return nil }
        i += 1
        guard let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A), let second = digits(2) else { return nil }
        var fraction = 0.0
        if i < s.count, s[i] == 0x2E {
            i += 1
            var scale = 0.1
            let start = i
            while i < s.count, s[i] >= 48, s[i] <= 57 {
                fraction += Double(s[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offset = 0
        guard i < s.count else { return nil }
        switch s[i] {
        case 0x5A, 0x7A: i += 1
        case 0x2B, 0x2D:
            let sign = s[i] == 0x2D ? -1 : 1
            i += 1
            guard let oh = digits(2), expect(0x3A), let om = digits(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        default: return nil
        }
        guard i == s.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60 else { return nil }
        // Days since 1970-01-01 in the proleptic Gregorian calendar; a day the month lacks is refused.
        guard let days = LocalDate(year: year, month: month, day: day)?.dayNumber else { return nil }
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
