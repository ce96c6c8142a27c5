public import Foundation

/// The stretch of time a handoff covers, in its rotation's zone.
public struct HandoffWindow: Sendable, Equatable, Codable {
    public var from: Date
    public var to: Date

    public init(from: Date, to: Date) {
        self.from = from
        self.to = to
    }

    /// The window of the same length just before this one (MTTA and MTTR compare with it).
    public var previous: HandoffWindow { HandoffWindow(from: from.addingTimeInterval(-to.timeIntervalSince(from)), to: from) }

    /// An ISO week (`2026-W47`): Monday 00:00 to the next Monday 00:00 in `timeZone`.
    public static func isoWeek(_ text: String, timeZone: String, field: String = "week") throws(ValidationError) -> HandoffWindow {
        let parts = text.uppercased().split(separator: "-W")
        guard parts.count == 2, let year = Int(parts[0]), let week = Int(parts[1]), (1...53).contains(week),
            let jan4 = LocalDate(year: year, month: 1, day: 4)
        else {
            throw ValidationError(field: field, message: "must be an ISO week such as 2026-W47, not \(text.debugDescription)")
        }
        // Week 1 is the week with 4 January; weeks start on Monday.
        let monday = jan4.adding(days: 1 - jan4.weekday + (week - 1) * 7)
        if week == 53, LocalDate(year: year + 1, month: 1, day: 4).map({ $0.adding(days: 1 - $0.weekday) == monday }) == true {
            throw ValidationError(field: field, message: "\(year) has no week 53")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")!
        func midnight(_ d: LocalDate) -> Date {
            calendar.date(from: DateComponents(year: d.year, month: d.month, day: d.day)) ?? Date(timeIntervalSince1970: Double(d.dayNumber) * 86400)
        }
        return HandoffWindow(from: midnight(monday), to: midnight(monday.adding(days: 7)))
    }

    /// The rotation's last shift that has ended by `now` (the default handoff window).
    public static func lastShift(of rotation: Rotation, now: Date) -> HandoffWindow? {
        guard let k = rotation.shiftIndex(at: now), k > 0 else { return nil }
        return HandoffWindow(from: rotation.shiftStart(k - 1), to: rotation.shiftStart(k))
    }
}

/// One incident as the incident log holds it, for handoffs.
public struct HandoffIncident: Sendable, Equatable, Codable {
    public struct Gap: Sendable, Equatable, Codable {
        public var step: Int
        public var title: String
        /// skipped or failed
        public var outcome: StepOutcome
        public var note: String
        public var by: String

        public init(step: Int, title: String, outcome: StepOutcome, note: String, by: String) {
            self.step = step
            self.title = title
            self.outcome = outcome
            self.note = note
            self.by = by
        }
    }

    public var number: Int64
    public var title: String
    public var severity: Severity
    public var state: IncidentState
    public var openedAt: Date
    public var acknowledgedAt: Date?
    public var resolvedAt: Date?
    public var owner: String?
    public var ownerPending: Bool
    public var runbookId: String?
    public var runbookVersion: Int?
    /// The first runbook step without a mark, while the incident is open.
    public var nextStep: String?
    /// Skipped and failed steps (their latest marks).
    public var gaps: [Gap]

    /// Whether a handoff of `window` lists it: opened or resolved in the window, or open at
    /// its end.
    public func listed(in window: HandoffWindow) -> Bool {
        (openedAt >= window.from && openedAt < window.to) || (resolvedAt.map { $0 >= window.from && $0 < window.to } ?? false)
            || (openedAt < window.to && (resolvedAt.map { $0 >= window.to } ?? true))
    }

    public init(
        number: Int64,
        title: String,
        severity: Severity,
        state: IncidentState,
        openedAt: Date,
        acknowledgedAt: Date? = nil,
        resolvedAt: Date? = nil,
        owner: String? = nil,
        ownerPending: Bool = false,
        runbookId: String? = nil,
        runbookVersion: Int? = nil,
        nextStep: String? = nil,
        gaps: [Gap] = []
    ) {
        self.number = number
        self.title = title
        self.severity = severity
        self.state = state
        self.openedAt = openedAt
        self.acknowledgedAt = acknowledgedAt
        self.resolvedAt = resolvedAt
        self.owner = owner
        self.ownerPending = ownerPending
        self.runbookId = runbookId
        self.runbookVersion = runbookVersion
        self.nextStep = nextStep
        self.gaps = gaps
    }
}

/// A rollback decision as handoffs list it.
public struct HandoffDecision: Sendable, Equatable, Codable {
    public var id: Int64
    public var incident: Int64
    public var kind: DecisionKind
    public var target: String
    public var decidedBy: String
    public var decidedAt: Date
    public var rationale: String
    /// awaiting_execution, awaiting_outcome, superseded, effective, not_effective, reverted
    public var status: String

    public init(id: Int64, incident: Int64, kind: DecisionKind, target: String, decidedBy: String, decidedAt: Date, rationale: String, status: String)
    {
        self.id = id
        self.incident = incident
        self.kind = kind
        self.target = target
        self.decidedBy = decidedBy
        self.decidedAt = decidedAt
        self.rationale = rationale
        self.status = status
    }
}

/// A canary gate as handoffs list it: the rotation's rollouts (their runbook's owners) asked
/// about in the window, with every decision on the gate up to the window's end.
public struct HandoffRollout: Sendable, Equatable, Codable {
    public struct Decision: Sendable, Equatable, Codable {
        public var kind: GateDecisionKind
        public var by: String
        public var at: Date
        public var rationale: String
        /// The gate it was decided at (a rollback of the release may be another gate's).
        public var gate: Int64?
        public init(kind: GateDecisionKind, by: String, at: Date, rationale: String, gate: Int64?) {
            self.gate = gate
            self.kind = kind
            self.by = by
            self.at = at
            self.rationale = rationale
        }
    }
    public var gate: Int64
    public var release: ReleaseRef
    /// "confirm-traffic-increase #2".
    public var stage: String
    public var openedAt: Date
    /// Decisions at this gate, and rollbacks of its release, made before the window's end.
    public var decisions: [Decision]

    public init(gate: Int64, release: ReleaseRef, stage: String, openedAt: Date, decisions: [Decision]) {
        self.gate = gate
        self.release = release
        self.stage = stage
        self.openedAt = openedAt
        self.decisions = decisions
    }
}

/// Deliveries of one alert type.
public struct AlertNoise: Sendable, Equatable, Codable {
    public var alertname: String
    public var alerts: Int
    public var deliveries: Int

    public init(alertname: String, alerts: Int, deliveries: Int) {
        self.alertname = alertname
        self.alerts = alerts
        self.deliveries = deliveries
    }
}

/// A postmortem action item still open.
public struct OpenActionItem: Sendable, Equatable, Codable {
    public var incident: Int64
    public var title: String
    public var owner: String
    public var due: LocalDate

    public init(incident: Int64, title: String, owner: String, due: LocalDate) {
        self.incident = incident
        self.title = title
        self.owner = owner
        self.due = due
    }
}

/// Everything a handoff is made of, as read from the log: the rotation's incidents that
/// touch the window or its predecessor, their decisions, alert noise, and alert types that
/// opened incidents without a runbook.
public struct HandoffLog: Sendable, Equatable, Codable {
    public var rotation: Rotation
    public var window: HandoffWindow
    public var incidents: [HandoffIncident]
    public var decisions: [HandoffDecision]
    public var noise: [AlertNoise]
    /// Alert names of incidents opened in the window with no runbook, with how many.
    public var withoutRunbook: [String: Int]
    /// Open action items of the rotation's postmortems.
    public var actionItems: [OpenActionItem]
    /// Pages, people's zones and the rotation's limits, for the on-call load section.
    public var load = HandoffLoadInput()
    /// The outgoing on-call's latest note for the window.
    public var note: HandoffNote?
    /// The rotation's incidents resolved in the window that still need a postmortem.
    public var postmortemsNeeded: [NeededPostmortem] = []
    /// The rotation's canary gates asked about or decided in the window.
    public var rollouts: [HandoffRollout] = []

    public init(
        rotation: Rotation,
        window: HandoffWindow,
        incidents: [HandoffIncident],
        decisions: [HandoffDecision],
        noise: [AlertNoise],
        withoutRunbook: [String: Int],
        actionItems: [OpenActionItem] = []
    ) {
        self.rotation = rotation
        self.window = window
        self.incidents = incidents
        self.decisions = decisions
        self.noise = noise
        self.withoutRunbook = withoutRunbook
        self.actionItems = actionItems
    }
}

/// A handoff's content: every section computed, ordered and formatted (times in the
/// rotation's zone), ready for the template and for JSON. A pure function of the log, so the
/// same log gives the same bytes.
public struct HandoffDocument: Sendable, Equatable, Codable {
    public struct Row: Sendable, Equatable, Codable {
        public var ref: String
        public var title: String
        public var severity: String
        public var state: String
        public var owner: String
        public var opened: String
        public var resolved: String?
        /// opened → resolved (or → window end while open), e.g. `2 h 5 min`
        public var duration: String
        public var runbook: String
        public var nextStep: String?
        /// Opened inside the window (nil in documents stored before this was said).
        public var new: Bool?
        /// The incident's page (absolute with a public URL).
        public var link: String?
    }

    public struct GapRow: Sendable, Equatable, Codable {
        public var ref: String
        public var step: Int
        public var title: String
        public var outcome: String
        public var note: String
        public var by: String
    }

    public struct DecisionRow: Sendable, Equatable, Codable {
        public var ref: String
        public var id: Int64
        public var kind: String
        public var target: String
        public var decidedBy: String
        public var decided: String
        public var rationale: String
        public var status: String
        /// The status in words ("awaiting execution").
        public var statusText: String
    }

    public struct Measure: Sendable, Equatable, Codable {
        public var name: String
        public var current: String
        public var previous: String
        public var change: String
    }

    public struct ActionRow: Sendable, Equatable, Codable {
        public var ref: String
        public var title: String
        public var owner: String
        public var due: String
        /// Due before the window ended.
        public var overdue: Bool
    }

    public struct LoadRow: Sendable, Equatable, Codable {
        public var user: String
        /// "12 pages (previous window 4), 3 at night, 5 out of hours (Europe/Berlin); 2 incidents owned (previous 1); longest stretch on call 117 h; 1 back-to-back shift"
        public var text: String
        public var flagged: Bool
        /// "3 night interruptions (limit 2)"
        public var crossed: String?
    }

    public struct Cover: Sendable, Equatable, Codable {
        public var user: String
        public var from: String
        public var to: String
        public var override: Bool
    }

    public var rotation: String
    public var timeZone: String
    public var from: String
    public var to: String
    public var onCall: [Cover]
    public var opened: [Row]
    /// "3 opened in this window: 1 still open, 2 resolved" (each incident is listed once,
    /// under still open or resolved).
    public var openedSummary: String?
    public var resolved: [Row]
    public var stillOpen: [Row]
    public var decisionsMade: [DecisionRow]
    public var awaitingOutcome: [DecisionRow]
    public var gaps: [GapRow]
    public var withoutRunbook: [AlertNoise]
    public var noisiest: [AlertNoise]
    public var measures: [Measure]
    public var actionItems: [ActionRow]
    /// On-call load per person (members first), the rotation's average and its limits.
    public var load: [LoadRow]
    public var loadAverage: String
    public var loadLimits: String
    /// The outgoing on-call's note ("watch for…"), with who wrote it and when.
    public var note: String?
    public var noteBy: String?
    /// The next shifts after the window, and overrides starting in the two weeks after it.
    public var nextShifts: [String]
    public var upcomingOverrides: [String]
    /// Incidents resolved in the window that still need a postmortem.
    public var postmortemsNeeded: [NeededRow]

    public struct NeededRow: Sendable, Equatable, Codable {
        public var ref: String
        public var link: String
        public var title: String
        public var why: String
    }
    /// Decisions at canary gates in the window, and gates still waiting at its end.
    public var rolloutsDecided: [RolloutRow]
    public var rolloutsWaiting: [RolloutRow]
    public var noRollouts: Bool

    public struct RolloutRow: Sendable, Equatable, Codable {
        public var target: String
        public var checksum: String
        public var stage: String
        public var link: String
        /// Decided: go, hold or rollback, by whom, when, why. Waiting: since when.
        public var decision: String?
        public var by: String?
        public var at: String
        public var rationale: String?
    }
    /// Nothing opened, resolved, stayed open or was decided in the window.
    public var quiet: Bool
    /// No skipped or failed steps and no alert without a runbook.
    public var gapFree: Bool

    /// Builds the document from the log, at `now`: an incident still open is open until the
    /// window's end, or until now when the window has not ended yet.
    /// - Parameter links: the address people open Handrail at (`HANDRAIL_PUBLIC_URL`), for
    ///   links to incidents; empty: links relative to the server.
    public static func build(_ log: HandoffLog, now: Date = Date(), links: String = "") -> HandoffDocument {
        let zone = log.rotation.timeZone
        let w = log.window
        let fmt = TimeFormatter(zone: zone)
        func ref(_ n: Int64) -> String { IncidentRef.display(n) }
        func row(_ i: HandoffIncident) -> Row {
            let end = i.resolvedAt ?? min(w.to, now)
            return Row(
                ref: ref(i.number),
                title: i.title,
                severity: i.severity.rawValue,
                state: i.state.rawValue,
                owner: i.owner.map { $0 + (i.ownerPending ? " (awaiting acceptance)" : "") } ?? "nobody",
                opened: fmt.string(i.openedAt),
                resolved: i.resolvedAt.map(fmt.string),
                duration: OutcomeProposal.duration(max(0, Int(end.timeIntervalSince(i.openedAt)))),
                runbook: i.runbookId.map { "\($0) v\(i.runbookVersion ?? 0)" } ?? "no runbook",
                nextStep: i.nextStep,
                new: i.openedAt >= w.from && i.openedAt < w.to,
                link: "\(links)/incidents/\(i.number)"
            )
        }
        let byNumber = log.incidents.sorted { $0.number < $1.number }
        let inWindow = { (d: Date?) in d.map { $0 >= w.from && $0 < w.to } ?? false }
        let opened = byNumber.filter { inWindow($0.openedAt) }
        let resolved = byNumber.filter { inWindow($0.resolvedAt) }
        let openAtEnd = { (i: HandoffIncident) in i.openedAt < w.to && (i.resolvedAt.map { $0 >= w.to } ?? true) }
        let stillOpen = byNumber.filter(openAtEnd)
        let openedStill = opened.filter(openAtEnd).count
        let openedSummary =
            opened.isEmpty
            ? "None opened in this window."
            : "\(NumberText.count(opened.count, "incident")) opened in this window: \(openedStill) still open, \(opened.count - openedStill) resolved."
        func decisionRow(_ d: HandoffDecision) -> DecisionRow {
            DecisionRow(
                ref: ref(d.incident),
                id: d.id,
                kind: d.kind.rawValue,
                target: d.target,
                decidedBy: d.decidedBy,
                decided: fmt.string(d.decidedAt),
                rationale: d.rationale,
                status: d.status,
                statusText: d.status.replacingOccurrences(of: "_", with: " ")
            )
        }
        let decisions = log.decisions.sorted { ($0.decidedAt, $0.id) < ($1.decidedAt, $1.id) }
        let gaps = byNumber.filter { $0.listed(in: w) }.flatMap { i in
            i.gaps.sorted { $0.step < $1.step }.map {
                GapRow(ref: ref(i.number), step: $0.step, title: $0.title, outcome: $0.outcome.rawValue, note: $0.note, by: $0.by)
            }
        }
        let previous = w.previous
        func mean(_ values: [TimeInterval]) -> TimeInterval? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        func mtta(_ window: HandoffWindow) -> TimeInterval? {
            mean(
                byNumber.filter { $0.openedAt >= window.from && $0.openedAt < window.to }.compactMap { i in
                    i.acknowledgedAt.map { $0.timeIntervalSince(i.openedAt) }
                }
            )
        }
        func mttr(_ window: HandoffWindow) -> TimeInterval? {
            mean(byNumber.compactMap { i in i.resolvedAt.flatMap { $0 >= window.from && $0 < window.to ? $0.timeIntervalSince(i.openedAt) : nil } })
        }
        func measure(_ name: String, _ now: TimeInterval?, _ before: TimeInterval?) -> Measure {
            let show = { (t: TimeInterval?) in t.map { OutcomeProposal.duration(Int($0.rounded())) } ?? "n/a" }
            var change = "n/a"
            if let now, let before, before > 0 {
                // Within a factor of two as a percentage; beyond it as a factor ("100 %
                // faster" would mean no time at all). Capped so it fits an Int.
                let ratio = now / before
                if ratio >= 2 {
                    change = "\(Int(min(ratio.rounded(), 1e12)))× slower"
                } else if ratio > 0, ratio <= 0.5 {
                    change = "\(Int(min((1 / ratio).rounded(), 1e12)))× faster"
                } else if ratio == 0 {
                    change = "faster (no time at all)"
                } else {
                    let pct = Int(((ratio - 1) * 100).rounded())
                    change = pct == 0 ? "the same" : pct > 0 ? "\(pct) % slower" : "\(-pct) % faster"
                }
            }
            return Measure(name: name, current: show(now), previous: show(before), change: change)
        }
        let noisy = log.noise.filter { $0.deliveries > 0 }.sorted { ($1.deliveries, $0.alertname) < ($0.deliveries, $1.alertname) }
        let unrouted = log.withoutRunbook.map { AlertNoise(alertname: $0.key, alerts: $0.value, deliveries: 0) }.sorted {
            $0.alertname < $1.alertname
        }
        let cover = log.rotation.coverage(from: w.from, to: w.to).map {
            Cover(user: $0.user, from: fmt.string($0.start), to: fmt.string($0.end), override: $0.override != nil)
        }
        let made = decisions.filter { inWindow($0.decidedAt) }.map(decisionRow)
        let endDay = { () -> LocalDate in
            var c = Calendar(identifier: .gregorian)
            c.timeZone = TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")!
            let d = c.dateComponents([.year, .month, .day], from: w.to)
            return LocalDate(year: d.year ?? 1970, month: d.month ?? 1, day: d.day ?? 1) ?? LocalDate(dayNumber: 0)
        }()
        let items = log.actionItems.sorted { ($0.due, $0.incident, $0.title) < ($1.due, $1.incident, $1.title) }.map {
            ActionRow(ref: ref($0.incident), title: $0.title, owner: $0.owner, due: $0.due.description, overdue: $0.due < endDay)
        }
        // Incidents a person owned: those the window lists (opened or resolved in it, or open
        // at its end) that they own now.
        func owners(_ window: HandoffWindow) -> [String: Int] {
            var result: [String: Int] = [:]
            for i in byNumber where i.listed(in: window) {
                if let owner = i.owner { result[owner, default: 0] += 1 }
            }
            return result
        }
        let loadRows = OnCallLoad.rows(log, owners: owners)
        let load = loadRows.map { r in
            LoadRow(
                user: r.user,
                text:
                    "\(NumberText.count(r.pages, "page")) (previous window \(r.pagesBefore)), \(r.nights) at night, \(r.outOfHours) out of hours (\(r.zone)); "
                    + "\(NumberText.count(r.owned, "incident")) owned (previous \(r.ownedBefore)); longest stretch on call \(r.longestStretch); "
                    + NumberText.count(r.backToBack, "back-to-back shift"),
                flagged: r.flagged,
                crossed: r.crossed.isEmpty ? nil : r.crossed.joined(separator: ", ")
            )
        }
        // Who is on call after the window: the next two hands.
        let nextShifts = log.rotation.coverage(from: w.to, to: w.to.addingTimeInterval(14 * 86400)).prefix(2).map { c in
            "\(c.user)\(c.override != nil ? " (override)" : "") from \(fmt.string(c.start)) to \(fmt.string(c.end))"
        }
        let upcoming = log.rotation.overrides.filter { $0.start >= w.to && $0.start < w.to.addingTimeInterval(14 * 86400) }.sorted {
            $0.start < $1.start
        }
        .map { o in "\(o.user) covers \(fmt.string(o.start)) – \(fmt.string(o.end))" + (o.reason.map { " (\($0))" } ?? "") }
        // Rollouts: each decision in the window; each gate whose newest go/hold before the
        // window's end is not a go, and whose release was not rolled back, still waits.
        let gates = log.rollouts.sorted { ($0.openedAt, $0.gate) < ($1.openedAt, $1.gate) }
        let rolloutsDecided = gates.flatMap { g in
            g.decisions.filter { inWindow($0.at) && $0.gate == g.gate }.map { d in
                RolloutRow(
                    target: g.release.target,
                    checksum: g.release.checksum,
                    stage: g.stage,
                    link: "\(links)/gates/\(g.gate)",
                    decision: d.kind.rawValue,
                    by: d.by,
                    at: fmt.string(d.at),
                    rationale: d.rationale
                )
            }
        }
        let rolloutsWaiting = gates.filter { g in
            !g.decisions.contains { $0.kind == .rollback } && g.decisions.last { $0.gate == g.gate }?.kind != .go
        }.map { g in
            RolloutRow(
                target: g.release.target,
                checksum: g.release.checksum,
                stage: g.stage,
                link: "\(links)/gates/\(g.gate)",
                at: fmt.string(g.openedAt)
            )
        }
        return HandoffDocument(
            rotation: log.rotation.name,
            timeZone: zone,
            from: fmt.string(w.from),
            to: fmt.string(w.to),
            onCall: cover,
            opened: opened.map(row),
            openedSummary: openedSummary,
            resolved: resolved.map(row),
            stillOpen: stillOpen.map(row),
            decisionsMade: made,
            awaitingOutcome: decisions.filter { $0.status == "awaiting_execution" || $0.status == "awaiting_outcome" }.map(decisionRow),
            gaps: gaps,
            withoutRunbook: unrouted,
            noisiest: Array(noisy.prefix(5)),
            measures: [
                measure("MTTA (opened → acknowledged)", mtta(w), mtta(previous)), measure("MTTR (opened → resolved)", mttr(w), mttr(previous)),
            ],
            actionItems: items,
            load: load,
            loadAverage: OnCallLoad.average(loadRows, members: log.rotation.members),
            loadLimits:
                "\(NumberText.count(log.load.nightPageLimit, "night interruption")) or \(NumberText.count(log.load.pageLimit, "page")) a window",
            note: log.note?.text,
            noteBy: log.note.map { "\($0.by), \(fmt.string($0.at))" },
            nextShifts: nextShifts,
            upcomingOverrides: upcoming,
            postmortemsNeeded: log.postmortemsNeeded.map {
                NeededRow(ref: ref($0.incident), link: "\(links)/incidents/\($0.incident)", title: $0.title, why: $0.why)
            },
            rolloutsDecided: rolloutsDecided,
            rolloutsWaiting: rolloutsWaiting,
            noRollouts: rolloutsDecided.isEmpty && rolloutsWaiting.isEmpty,
            quiet: opened.isEmpty && resolved.isEmpty && stillOpen.isEmpty && made.isEmpty && rolloutsDecided.isEmpty,
            gapFree: gaps.isEmpty && unrouted.isEmpty
        )
    }
}

/// `Mon 2026-11-16 09:00 +01:00`: one format for every time in a document, in one zone,
/// with the offset as a number (zone abbreviations differ between systems' time data).
public struct TimeFormatter: Sendable {
    let zone: TimeZone

    public init(zone: String) {
        self.zone = TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")!
    }

    public init(zone: TimeZone) { self.zone = zone }

    static let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    public func string(_ date: Date) -> String {
        let offset = zone.secondsFromGMT(for: date)
        let local = Int((date.timeIntervalSince1970).rounded(.down)) + offset
        let days = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let seconds = local - days * 86400
        let d = LocalDate(dayNumber: days)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return
            "\(Self.days[d.weekday - 1]) \(d) \(two(seconds / 3600)):\(two(seconds % 3600 / 60)) \(offset < 0 ? "-" : "+")\(two(abs(offset) / 3600)):\(two(abs(offset) % 3600 / 60))"
    }
}
