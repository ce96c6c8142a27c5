public import Foundation

/// What the handoff's on-call load section is read from, beside the incidents.
public struct HandoffLoadInput: Sendable, Equatable, Codable {
    /// One page a person received: an incident's notification to them (however many of
    /// their contact methods it went to).
    public struct Page: Sendable, Equatable, Codable {
        public var user: String
        public var at: Date
        public var incident: Int64

        public init(user: String, at: Date, incident: Int64) {
            self.user = user
            self.at = at
            self.incident = incident
        }
    }

    /// Pages in the window and the one before it.
    public var pages: [Page]
    /// People's own time zones; anyone else's nights are read in the rotation's zone.
    public var zones: [String: String]
    /// The rotation's limits per window: night interruptions, and pages in all.
    public var nightPageLimit: Int
    public var pageLimit: Int

    public init(pages: [Page] = [], zones: [String: String] = [:], nightPageLimit: Int = 2, pageLimit: Int = 20) {
        self.pages = pages
        self.zones = zones
        self.nightPageLimit = nightPageLimit
        self.pageLimit = pageLimit
    }
}

/// On-call load per person over a handoff window: pages received, incidents owned,
/// interruptions out of hours (outside 09:00–18:00 on weekdays) and at night (22:00–07:00),
/// both in the person's own zone, the longest stretch on call without a break, back-to-back
/// shifts (less than 12 h off between two), against the previous window and the rotation's
/// average; whoever crossed a limit the rotation sets is flagged.
public enum OnCallLoad {
    public struct Row: Sendable, Equatable, Codable {
        public var user: String
        public var pages: Int
        public var pagesBefore: Int
        public var nights: Int
        public var outOfHours: Int
        public var owned: Int
        public var ownedBefore: Int
        /// "117 h", the longest continuous time on call in the window.
        public var longestStretch: String
        public var backToBack: Int
        /// The limits crossed, in words ("3 night interruptions (limit 2)"); empty: none.
        public var crossed: [String]
        public var flagged: Bool
        /// The zone nights were read in.
        public var zone: String
    }

    /// Night: 22:00 to 07:00 local time.
    public static func isNight(_ at: Date, zone: TimeZone) -> Bool {
        let hour = local(at, zone).hour ?? 12
        return hour >= 22 || hour < 7
    }

    /// Out of hours: outside 09:00–18:00 Monday to Friday, local time.
    public static func isOutOfHours(_ at: Date, zone: TimeZone) -> Bool {
        let c = local(at, zone)
        let weekend = c.weekday == 1 || c.weekday == 7
        let hour = c.hour ?? 12
        return weekend || hour < 9 || hour >= 18
    }

    static func local(_ at: Date, _ zone: TimeZone) -> DateComponents {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = zone
        return cal.dateComponents([.hour, .weekday], from: at)
    }

    /// The rows, members first in the rotation's order, then anyone else paged or owning.
    public static func rows(
        _ log: HandoffLog,
        owners: (_ window: HandoffWindow) -> [String: Int]
    ) -> [Row] {
        let w = log.window
        let previous = w.previous
        let input = log.load
        let rotationZone = TimeZone(identifier: log.rotation.timeZone) ?? TimeZone(identifier: "UTC")!
        let owned = owners(w)
        let ownedBefore = owners(previous)
        let inWindow = input.pages.filter { $0.at >= w.from && $0.at < w.to }
        let before = input.pages.filter { $0.at >= previous.from && $0.at < previous.to }
        let cover = log.rotation.coverage(from: w.from, to: w.to)
        var people = log.rotation.members
        for name in (inWindow.map(\.user) + owned.keys.sorted() + cover.map(\.user)) where !people.contains(name) { people.append(name) }
        return people.map { user in
            let zoneName = input.zones[user] ?? log.rotation.timeZone
            let zone = TimeZone(identifier: zoneName) ?? rotationZone
            let mine = inWindow.filter { $0.user == user }
            let pieces = cover.filter { $0.user == user }.sorted { $0.start < $1.start }
            // Continuous time on call: pieces that touch are one stretch.
            var longest: TimeInterval = 0
            var backToBack = 0
            var stretchStart: Date?
            var stretchEnd: Date?
            for p in pieces {
                if let end = stretchEnd, p.start <= end {
                    stretchEnd = max(end, p.end)
                } else {
                    if let end = stretchEnd, p.start.timeIntervalSince(end) < 12 * 3600 { backToBack += 1 }
                    stretchStart = p.start
                    stretchEnd = p.end
                }
                if let s = stretchStart, let e = stretchEnd { longest = max(longest, e.timeIntervalSince(s)) }
            }
            let nights = mine.filter { isNight($0.at, zone: zone) }.count
            var crossed: [String] = []
            if nights > input.nightPageLimit {
                crossed.append("\(NumberText.count(nights, "night interruption")) (limit \(input.nightPageLimit))")
            }
            if mine.count > input.pageLimit { crossed.append("\(NumberText.count(mine.count, "page")) (limit \(input.pageLimit))") }
            return Row(
                user: user,
                pages: mine.count,
                pagesBefore: before.filter { $0.user == user }.count,
                nights: nights,
                outOfHours: mine.filter { isOutOfHours($0.at, zone: zone) }.count,
                owned: owned[user] ?? 0,
                ownedBefore: ownedBefore[user] ?? 0,
                longestStretch: OutcomeProposal.duration(Int(longest)),
                backToBack: backToBack,
                crossed: crossed,
                flagged: !crossed.isEmpty,
                zone: zoneName
            )
        }
    }

    /// "6 pages, 1.5 at night, 2 incidents owned a person" over the rotation's members.
    public static func average(_ rows: [Row], members: [String]) -> String {
        let counted = rows.filter { members.contains($0.user) }
        guard !counted.isEmpty else { return "no members" }
        func mean(_ f: (Row) -> Int) -> String {
            NumberText.plain((Double(counted.map(f).reduce(0, +)) / Double(counted.count) * 10).rounded() / 10)
        }
        return "\(mean(\.pages)) pages, \(mean(\.nights)) at night, \(mean(\.outOfHours)) out of hours, \(mean(\.owned)) incidents owned a person"
    }
}

/// A note from the outgoing on-call for a handoff window.
public struct HandoffNote: Sendable, Equatable, Codable {
    public var text: String
    public var by: String
    public var at: Date

    public init(text: String, by: String, at: Date) {
        self.text = text
        self.by = by
        self.at = at
    }
}

/// A resolved incident that needs a postmortem and has none (its runbook requires one, or it
/// was critical and the runbook does not make it optional).
public struct NeededPostmortem: Sendable, Equatable, Codable {
    public var incident: Int64
    public var title: String
    public var why: String

    public init(incident: Int64, title: String, why: String) {
        self.incident = incident
        self.title = title
        self.why = why
    }
}
