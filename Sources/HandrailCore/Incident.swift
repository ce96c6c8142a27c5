import Foundation

/// Where an incident is in its life.
public enum IncidentState: String, CaseIterable, Sendable, Codable {
    case triggered, acknowledged, mitigated, resolved, reopened

    public var isOpen: Bool { self != .resolved }

    public static func parse(_ text: String, field: String = "state") throws(ValidationError) -> IncidentState {
        guard let state = IncidentState(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return state
    }
}

/// What a person does to an incident's state, and from which states it is allowed.
public enum IncidentTransition: String, Sendable, CaseIterable {
    case acknowledge, mitigate, resolve

    public var target: IncidentState {
        switch self {
        case .acknowledge: .acknowledged
        case .mitigate: .mitigated
        case .resolve: .resolved
        }
    }

    /// States the transition may start from.
    public var from: [IncidentState] {
        switch self {
        case .acknowledge: [.triggered, .reopened]
        case .mitigate: [.triggered, .acknowledged, .reopened]
        case .resolve: [.triggered, .acknowledged, .mitigated, .reopened]
        }
    }
}

/// An incident as people refer to it: `42` or `INC-42`.
public enum IncidentRef {
    public static func number(_ text: String) -> Int64? {
        var t = Substring(text.trimmingCharacters(in: .whitespaces))
        if t.uppercased().hasPrefix("INC-") { t = t.dropFirst(4) }
        guard let n = Int64(t), n > 0 else { return nil }
        return n
    }

    public static func display(_ number: Int64) -> String { "INC-\(number)" }
}

/// What an entry of an incident's log records.
public enum IncidentEventType: String, Sendable, Codable, CaseIterable {
    case opened, acknowledged, mitigated, resolved, reopened
    case alertAdded = "alert_added"
    case alertCleared = "alert_cleared"
    /// Every alert cleared, and the runbook wants a person to resolve it.
    case allAlertsCleared = "all_alerts_cleared"
    case stepMarked = "step_marked"
    case roleChanged = "role_changed"
    case roleAccepted = "role_accepted"
    case decisionRecorded = "decision_recorded"
    case decisionExecuted = "decision_executed"
    case decisionOutcome = "decision_outcome"
    /// A responder proposed a decision, for a person allowed to decide to confirm or reject.
    case decisionProposed = "decision_proposed"
    case decisionProposalRejected = "decision_proposal_rejected"
    case note
    /// A change event (PagerDuty's change API) sent to the incident.
    case change
}

/// Who wrote an entry of an incident's log.
public enum ActorKind: String, Sendable, Codable, CaseIterable {
    case user, integration, system
}

/// The outcome a person records for one runbook step of one incident.
public enum StepOutcome: String, Sendable, Codable, CaseIterable {
    case done, skipped, failed
    /// Takes back the previous mark (a new mark, never an edit).
    case undone

    /// Skipped steps need a reason and failed ones a note: they are runbook gaps.
    public static func validate(_ outcome: String, note: String?) throws(ValidationError) -> (StepOutcome, String?) {
        guard let value = StepOutcome(rawValue: outcome.lowercased()) else {
            throw ValidationError(field: "outcome", message: "must be one of done, skipped, failed, undone, not \(outcome.debugDescription)")
        }
        let trimmed = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        let text = (trimmed?.isEmpty ?? true) ? nil : trimmed
        if value == .skipped, text == nil { throw ValidationError(field: "note", message: "a skipped step needs a reason") }
        if value == .failed, text == nil { throw ValidationError(field: "note", message: "a failed step needs a note saying what happened") }
        if let text, text.count > 4000 { throw ValidationError(field: "note", message: "must be at most 4000 characters") }
        return (value, text)
    }
}
