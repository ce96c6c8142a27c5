public import Foundation

/// A calendar date without a time or a zone (`2026-11-23`), for a rotation's start.
public struct LocalDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), (1...LocalDate.daysIn(month, year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD`.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2])
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public var description: String {
        func pad(_ n: Int, _ width: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (proleptic Gregorian), so that dates add and subtract exactly.
    public var dayNumber: Int {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    public init(dayNumber z0: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        self.month = m
        self.day = d
    }

    public func adding(days: Int) -> LocalDate { LocalDate(dayNumber: dayNumber + days) }

    /// ISO weekday: 1 Monday … 7 Sunday.
    public var weekday: Int { ((dayNumber % 7 + 7) % 7 + 3) % 7 + 1 }

    public static func < (a: LocalDate, b: LocalDate) -> Bool { a.dayNumber < b.dayNumber }
}

/// How long one person's shift lasts: whole days (`1d`, `3d`) or weeks (`1w`, `2w`). Shifts
/// are counted in local calendar days, so a week is Monday 09:00 to Monday 09:00 on the wall
/// clock even when a DST change makes it 167 or 169 hours.
public struct ShiftLength: Sendable, Hashable, Codable, CustomStringConvertible {
    public let days: Int

    public init?(days: Int) {
        guard (1...366).contains(days) else { return nil }
        self.days = days
    }

    /// Parses `1w`, `2w`, `1d`, `12d`, also `1 week`, `2 weeks`, `1 day`, `3 days`.
    public static func parse(_ text: String, field: String = "shift_length") throws(ValidationError) -> ShiftLength {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = t.prefix { $0.isASCII && $0.isNumber }
        let unit = t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let factor: Int? =
            switch unit {
            case "d", "day", "days": 1
            case "w", "week", "weeks": 7
            default: nil
            }
        // At most three digits: 366 days is the longest shift, and no product can overflow.
        guard digits.count <= 3, let n = Int(digits), let factor, let length = ShiftLength(days: n * factor) else {
            throw ValidationError(
                field: field,
                message: "must be whole days or weeks, such as 1d, 3d, 1w or 2w (at most 366 days), not \(text.debugDescription)"
            )
        }
        return length
    }

    public var description: String { days % 7 == 0 ? "\(days / 7)w" : "\(days)d" }
}

/// When shifts change hands: a wall-clock time in the rotation's zone, and for shifts of
/// whole weeks optionally the weekday (`Monday 09:00`).
public struct HandoffTime: Sendable, Hashable, Codable, CustomStringConvertible {
    /// ISO weekday, 1 Monday … 7 Sunday; nil: the start date's own weekday.
    public let weekday: Int?
    public let hour: Int
    public let minute: Int

    public init?(weekday: Int?, hour: Int, minute: Int) {
        guard weekday.map({ (1...7).contains($0) }) ?? true, (0...23).contains(hour), (0...59).contains(minute) else { return nil }
        self.weekday = weekday
        self.hour = hour
        self.minute = minute
    }

    static let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

    /// Parses `09:00` or `Monday 09:00` (`Mon 9:00` too).
    public static func parse(_ text: String, field: String = "handoff") throws(ValidationError) -> HandoffTime {
        let words = text.split(separator: " ").map { $0.lowercased() }
        var weekday: Int?
        var clock = words.last ?? ""
        if words.count == 2 {
            let day = words[0]
            weekday = weekdays.firstIndex { $0 == day || (day.count >= 3 && $0.hasPrefix(day)) }.map { $0 + 1 }
            if weekday == nil { clock = "" }
        } else if words.count != 1 {
            clock = ""
        }
        let hm = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard hm.count == 2, (1...2).contains(hm[0].count), hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
            let time = HandoffTime(weekday: weekday, hour: h, minute: m)
        else {
            throw ValidationError(
                field: field,
                message: "must be a time such as 09:00, or a weekday and a time such as \"Monday 09:00\", not \(text.debugDescription)"
            )
        }
        return time
    }

    public var description: String {
        let clock = String(format: "%02d:%02d", hour, minute)
        guard let weekday else { return clock }
        return HandoffTime.weekdays[weekday - 1].capitalized + " " + clock
    }
}

/// Someone covering a rotation from `start` to `end` (a swap, a sick day). The override
/// listed last wins where several cover the same moment.
public struct RotationOverride: Sendable, Hashable, Codable {
    public var id: Int64?
    public var user: String
    public var start: Date
    public var end: Date
    public var reason: String?

    public init(id: Int64? = nil, user: String, start: Date, end: Date, reason: String? = nil) {
        self.id = id
        self.user = user
        self.start = start
        self.end = end
        self.reason = reason
    }
}

/// Who is on call at one moment, and for how long that stays so.
public struct OnCall: Sendable, Hashable, Codable {
    /// The person on call; nil before the rotation's first shift (and no override).
    public var user: String?
    /// Whom the schedule alone names (differs from `user` under an override).
    public var scheduled: String?
    /// The override that puts `user` on call, if one does.
    public var override: RotationOverride?
    /// The moment from which, and until which, this answer holds (the surrounding shift
    /// and override boundaries).
    public var since: Date?
    public var until: Date?
    /// The scheduled shift around the moment: its 0-based number, start and end.
    public var shift: Int?
    public var shiftStart: Date?
    public var shiftEnd: Date?
}

/// One stretch of a shift with one person on call.
public struct ShiftSegment: Sendable, Hashable, Codable {
    public var start: Date
    public var end: Date
    public var user: String
    public var override: RotationOverride?
}

/// One scheduled shift, and who actually covers which part of it.
public struct Shift: Sendable, Hashable, Codable {
    public var index: Int
    public var start: Date
    public var end: Date
    public var scheduled: String
    public var segments: [ShiftSegment]
}

/// A rotation: members take shifts in order, in one time zone, handing over at a wall-clock
/// time; overrides cover stretches. Every answer here is a pure function of its fields.
public struct Rotation: Sendable, Hashable, Codable {
    public var name: String
    public var members: [String]
    public var timeZone: String
    public var shiftLength: ShiftLength
    public var handoff: HandoffTime
    public var startDate: LocalDate
    public var overrides: [RotationOverride]

    public init(
        name: String,
        members: [String],
        timeZone: String,
        shiftLength: ShiftLength,
        handoff: HandoffTime,
        startDate: LocalDate,
        overrides: [RotationOverride] = []
    ) {
        self.name = name
        self.members = members
        self.timeZone = timeZone
        self.shiftLength = shiftLength
        self.handoff = handoff
        self.startDate = startDate
        self.overrides = overrides
    }

    /// Checks what the fields' types cannot: a name people can type, at least one member, a
    /// zone the system knows, a weekday only for shifts of whole weeks.
    public func validate() throws(ValidationError) {
        guard Rotation.isValidName(name) else {
            throw ValidationError(
                field: "name",
                message: "must be 1-64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        }
        guard !members.isEmpty else { throw ValidationError(field: "members", message: "must name at least one person") }
        guard TimeZone(identifier: timeZone) != nil else {
            throw ValidationError(
                field: "time_zone",
                message: "must be an IANA time zone such as Europe/Berlin or America/New_York, not \(timeZone.debugDescription)"
            )
        }
        if handoff.weekday != nil, shiftLength.days % 7 != 0 {
            throw ValidationError(
                field: "handoff",
                message: "a weekday only fits shifts of whole weeks; give a time alone (such as 09:00) for \(shiftLength) shifts"
            )
        }
        for (n, o) in overrides.enumerated() where o.end <= o.start {
            throw ValidationError(field: "overrides[\(n)].to", message: "must be after from")
        }
    }

    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, (1...64).contains(name.utf8.count) else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
        return ok(first) && name.utf8.allSatisfy { ok($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    var calendar: Calendar {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")!
        return c
    }

    /// The local date of the first handoff: the start date, or the first day on or after it
    /// with the handoff's weekday.
    public var firstShiftDate: LocalDate {
        guard let weekday = handoff.weekday else { return startDate }
        return startDate.adding(days: (weekday - startDate.weekday + 7) % 7)
    }

    /// When shift `k` begins: the handoff's wall-clock time on its local date. A time that
    /// a DST change skips (02:30 on a spring-forward night) is taken as the first moment
    /// after the gap, as the calendar resolves it.
    public func shiftStart(_ k: Int, calendar: Calendar? = nil) -> Date {
        let date = firstShiftDate.adding(days: k * shiftLength.days)
        let components = DateComponents(year: date.year, month: date.month, day: date.day, hour: handoff.hour, minute: handoff.minute)
        return (calendar ?? self.calendar).date(from: components) ?? Date(timeIntervalSince1970: Double(date.dayNumber) * 86400)
    }

    /// The number of the shift under way at `t`, or nil before the first one.
    public func shiftIndex(at t: Date) -> Int? {
        let cal = calendar
        let first = shiftStart(0, calendar: cal)
        guard t >= first else { return nil }
        var k = Int((t.timeIntervalSince(first) / (Double(shiftLength.days) * 86400)).rounded(.down))
        while k > 0, shiftStart(k, calendar: cal) > t { k -= 1 }
        while shiftStart(k + 1, calendar: cal) <= t { k += 1 }
        return k
    }

    /// The override in force at `t`: the last listed one that covers it.
    public func override(at t: Date) -> RotationOverride? {
        overrides.last { $0.start <= t && t < $0.end }
    }

    /// Who is on call at `t`.
    public func onCall(at t: Date) -> OnCall {
        let cal = calendar
        var answer = OnCall()
        var lower: Date? = nil
        var upper: Date? = nil
        if let k = shiftIndex(at: t) {
            answer.shift = k
            answer.scheduled = members[k % members.count]
            answer.shiftStart = shiftStart(k, calendar: cal)
            answer.shiftEnd = shiftStart(k + 1, calendar: cal)
            lower = answer.shiftStart
            upper = answer.shiftEnd
        } else {
            upper = shiftStart(0, calendar: cal)
        }
        answer.override = override(at: t)
        answer.user = answer.override?.user ?? answer.scheduled
        // The answer holds until the next boundary of the shift or of any override.
        for o in overrides {
            for edge in [o.start, o.end] {
                if edge <= t, lower.map({ edge > $0 }) ?? true { lower = edge }
                if edge > t, upper.map({ edge < $0 }) ?? true { upper = edge }
            }
        }
        answer.since = lower
        answer.until = upper
        return answer
    }

    /// `count` shifts starting with the one under way at `t` (or the first, before the
    /// rotation starts), with who covers which part of each.
    public func shifts(from t: Date, count: Int) -> [Shift] {
        let cal = calendar
        let first = shiftIndex(at: t) ?? 0
        return (first..<(first + max(0, count))).map { k in
            let start = shiftStart(k, calendar: cal)
            let end = shiftStart(k + 1, calendar: cal)
            let scheduled = members[k % members.count]
            return Shift(index: k, start: start, end: end, scheduled: scheduled, segments: segments(from: start, to: end, scheduled: scheduled))
        }
    }

    /// Who is on call over `[from, to)`, as consecutive stretches (for handoffs). Stretches
    /// before the first shift with no override have nobody and are left out.
    public func coverage(from: Date, to: Date) -> [ShiftSegment] {
        guard from < to else { return [] }
        let cal = calendar
        var result: [ShiftSegment] = []
        var k = shiftIndex(at: from)
        var cursor = from
        if k == nil {
            // Before the first shift only overrides cover.
            let firstStart = shiftStart(0, calendar: cal)
            let end = min(firstStart, to)
            result += segments(from: from, to: end, scheduled: nil)
            cursor = end
            k = 0
        }
        while cursor < to, var index = k {
            let end = min(shiftStart(index + 1, calendar: cal), to)
            result += segments(from: cursor, to: end, scheduled: members[index % members.count])
            cursor = end
            index += 1
            k = index
        }
        // Join neighbours that are the same person for the same reason.
        var joined: [ShiftSegment] = []
        for s in result {
            if var last = joined.last, last.user == s.user, last.override == s.override, last.end == s.start {
                last.end = s.end
                joined[joined.count - 1] = last
            } else {
                joined.append(s)
            }
        }
        return joined
    }

    /// Splits `[start, end)` at override edges; each piece goes to its override's person or
    /// to `scheduled`.
    func segments(from start: Date, to end: Date, scheduled: String?) -> [ShiftSegment] {
        var edges = Set([start, end])
        for o in overrides where o.end > start && o.start < end {
            edges.insert(max(o.start, start))
            edges.insert(min(o.end, end))
        }
        let sorted = edges.sorted()
        var result: [ShiftSegment] = []
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            let o = override(at: a)
            guard let user = o?.user ?? scheduled else { continue }
            if var last = result.last, last.user == user, last.override == o, last.end == a {
                last.end = b
                result[result.count - 1] = last
            } else {
                result.append(ShiftSegment(start: a, end: b, user: user, override: o))
            }
        }
        return result
    }
}
