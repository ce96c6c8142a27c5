public import Foundation

/// What was decided about a change during an incident.
public enum DecisionKind: String, CaseIterable, Sendable, Codable {
    case rollback
    case rollForward = "roll_forward"
    case hold
    case trafficShift = "traffic_shift"
    case flagOff = "flag_off"

    public static func parse(_ text: String, field: String = "kind") throws(ValidationError) -> DecisionKind {
        guard let kind = DecisionKind(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return kind
    }
}

/// Whether an executed decision did what it was for.
public enum DecisionOutcome: String, CaseIterable, Sendable, Codable {
    case effective
    case notEffective = "not_effective"
    case reverted

    public static func parse(_ text: String, field: String = "outcome") throws(ValidationError) -> DecisionOutcome {
        guard let outcome = DecisionOutcome(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return outcome
    }
}

/// The roles people hold on an incident. The owner is the incident commander.
public enum IncidentRole: String, CaseIterable, Sendable, Codable {
    case owner, scribe, communications

    public static func parse(_ text: String, field: String = "role") throws(ValidationError) -> IncidentRole {
        guard let role = IncidentRole(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return role
    }
}

/// How a role changes hands: someone takes it for themselves, assigns it to another
/// person, or the holder hands it over.
public enum RoleChange: String, CaseIterable, Sendable, Codable {
    case take, assign
    case handOver = "hand_over"

    public static func parse(_ text: String, field: String = "action") throws(ValidationError) -> RoleChange {
        guard let change = RoleChange(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return change
    }
}

/// Handrail's proposal for an executed decision's outcome, read from the incident's log.
public struct OutcomeProposal: Sendable, Equatable, Codable {
    /// nil while the verification window is still open and alerts still fire.
    public var outcome: DecisionOutcome?
    /// The check, in words: what was looked at and what it showed.
    public var check: String
    /// When the window closes (execution + verification window).
    public var windowEnds: Date

    /// One alert of the incident as the proposal sees it.
    public struct Alert: Sendable, Equatable {
        public var firstSeen: Date
        /// When the monitor said it cleared; nil while firing, or when it was closed by a
        /// person resolving the incident (that is not the monitor's word).
        public var clearedBySource: Date?

        public init(firstSeen: Date, clearedBySource: Date?) {
            self.firstSeen = firstSeen
            self.clearedBySource = clearedBySource
        }
    }

    /// "effective" when every alert of the incident that fired before the window closed had
    /// cleared (by its monitor) by the time it closed; "not effective" once the window has
    /// closed with one still firing; no proposal while the window is open and some fire.
    public static func propose(executedAt: Date, window: Int, alerts: [Alert], now: Date) -> OutcomeProposal {
        let ends = executedAt.addingTimeInterval(Double(window))
        let span = OutcomeProposal.duration(window)
        let relevant = alerts.filter { $0.firstSeen < ends }
        let open = relevant.filter { a in a.clearedBySource.map { $0 > ends } ?? true }
        if relevant.isEmpty {
            return OutcomeProposal(outcome: .effective, check: "no alert fired within \(span) of execution", windowEnds: ends)
        }
        if open.isEmpty {
            let last = relevant.compactMap(\.clearedBySource).max() ?? executedAt
            let after = max(0, Int(last.timeIntervalSince(executedAt)))
            let when = last <= executedAt ? "before execution" : "\(OutcomeProposal.duration(after)) after execution"
            return OutcomeProposal(
                outcome: .effective,
                check: "all \(relevant.count) alert\(relevant.count == 1 ? "" : "s") cleared within \(span) of execution (the last \(when))",
                windowEnds: ends
            )
        }
        if now < ends {
            return OutcomeProposal(
                outcome: nil,
                check:
                    "\(open.count) of \(relevant.count) alert\(relevant.count == 1 ? "" : "s") still firing; the \(span) window ends at \(RFC3339.format(ends))",
                windowEnds: ends
            )
        }
        return OutcomeProposal(
            outcome: .notEffective,
            check: "\(open.count) of \(relevant.count) alert\(relevant.count == 1 ? "" : "s") still firing \(span) after execution",
            windowEnds: ends
        )
    }

    /// `30 min`, `2 h`, `1 h 30 min`, `45 s` (to the nearest minute from one minute up).
    public static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds) s" }
        let minutes = (seconds + 30) / 60
        let h = minutes / 60
        let m = minutes % 60
        if h == 0 { return "\(m) min" }
        return m == 0 ? "\(h) h" : "\(h) h \(m) min"
    }
}
