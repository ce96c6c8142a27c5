import Foundation
import HandrailCore
import HandrailStore
import Markdown

/// What `incident.html` shows: one incident with what the visitor may do to it.
/// `IncidentPage.init` is the one function that decides it, from what the stores read.
struct IncidentPage: PageModel {
    struct Holder: PageModel {
        var user: String
        var displayName: String
        var pending: Bool
        var assignedBy: String
    }

    struct RoleRow: PageModel {
        var role: String
        var label: String
        var holder: Holder?
        var canTake: Bool
        var canAccept: Bool
        var canHandOver: Bool
    }

    struct Person: PageModel {
        var username: String
        var displayName: String
    }

    struct RunbookRow: PageModel {
        var id: String
        var version: Int
        var title: String
        var currentVersion: Int
        var outdated: Bool
    }

    struct Step: PageModel {
        var index: Int
        var title: String
        var html: String
        var outcome: String?
        var done: Bool
        var skipped: Bool
        var failed: Bool
        var marked: Bool
        var note: String?
        var by: String?
        var at: String?
        /// The first step without a mark: where the responder is.
        var next: Bool
        var canMark: Bool
    }

    struct Label: PageModel {
        var key: String
        var value: String
    }

    struct Alert: PageModel {
        var alertname: String
        var status: String
        var firing: Bool
        var integration: String
        var source: String
        var labels: [Label]
        var summary: String?
        /// The `description` annotation, when it says more than the summary.
        var description: String?
        /// Where the monitor shows the alert (Alertmanager's `generatorURL`), http(s) only.
        var generatorUrl: String?
        var value: String?
        /// The runbook's thresholds for the alert's metric, to read the value against.
        var threshold: String?
        var firstSeen: String
        var deliveries: Int
        var cleared: String?
    }

    /// `text` when it is an http or https URL (a link people can follow), else nil.
    static func webLink(_ text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            return nil
        }
        return text
    }

    struct Choice: PageModel {
        var value: String
        var label: String
        var selected: Bool
    }

    struct Proposal: PageModel {
        var outcome: String
        var check: String
    }

    struct DecisionRow: PageModel {
        var id: Int64
        var kind: String
        var target: String
        var rationale: String
        var customerImpact: String?
        var alternatives: String?
        var decidedBy: String
        var decidedByRole: String
        var decidedAt: String
        var status: String
        var supersededBy: Int64?
        var execution: String?
        var outcome: String?
        var proposal: Proposal?
        var proposed: String?
        /// "proposed by rhea (proposal 2)", when it confirmed a responder's proposal.
        var proposedBy: String?
        /// Recorded after the incident was resolved.
        var late: Bool
        var canExecute: Bool
        var canOutcome: Bool
        var outcomes: [Choice]
    }

    struct ProposalRow: PageModel {
        var id: Int64
        var kind: String
        var target: String
        var rationale: String
        var customerImpact: String?
        var alternatives: String?
        var proposedBy: String
        var proposedAt: String
        /// "open", "confirmed as decision 3 by lena", "rejected by lena: reason".
        var status: String
        var canAnswer: Bool
    }

    struct ActiveDecision: PageModel {
        var id: Int64
        var kind: String
    }

    struct DecisionForm: PageModel {
        /// `decisions` or `proposals`.
        var action: String
        var summary: String
        var button: String
        /// A change of mind replaces one of the active decisions (not for proposals).
        var canSupersede: Bool
    }

    struct Event: PageModel {
        var at: String
        var iso: String
        var type: String
        var text: String
        var note: Bool
    }

    struct Transition: PageModel {
        var action: String
        var label: String
        var withNote: Bool
        /// The next expected action (acknowledge, then mitigate, then resolve): the primary button.
        var primary: Bool
    }

    var title: String
    var navNow = true
    var live: String
    /// Where the live page fetches what it lacks (`WebController.incidentUpdates`), and the
    /// newest timeline event it shows.
    var updates: String
    var after: Int64
    var number: Int64
    var ref: String
    var incidentTitle: String
    var state: String
    var severity: String
    /// Why the incident has its severity: the rule that decided it, in words.
    var severityRule: String?
    var opened: String
    var openedIso: String
    var age: String
    var resolved: Bool
    var open: Bool
    var owner: String?
    var ownerPending: Bool
    var roles: [RoleRow]
    var people: [Person]
    var runbook: RunbookRow?
    var runbookReason: String
    var steps: [Step]
    var hasSteps: Bool
    var alerts: [Alert]
    var alertCount: Int
    var decisions: [DecisionRow]
    var activeDecisions: [ActiveDecision]
    var proposals: [ProposalRow]
    var canDecide: Bool
    /// The decision form: recording (late, on a resolved incident) or proposing.
    var decisionForm: DecisionForm?
    /// Why the visitor may not record a decision (shown to responders and up).
    var decideRefusal: String?
    var decisionKinds: [Choice]
    var service: String?
    var model: String?
    var timeline: [Event]
    /// "Showing the newest 100 of 612 entries.", when the page shows part of the timeline.
    var timelineMore: String?
    /// The escalation in force: "Escalates to lena at 10:42 UTC unless acknowledged."
    var escalation: String?
    var transitions: [Transition]
    var canChange: Bool
    var postmortemExists: Bool
    var canPostmortem: Bool
    /// Canary rollouts on this incident's target (`release_incidents`), their newest gate.
    var rollouts: [GateRow]
    var hasRollouts: Bool
    var error: String?

    static func event(_ e: IncidentEvent) -> Event {
        Event(
            at: WebController.time(e.at),
            iso: RFC3339.format(e.at),
            type: e.type.rawValue,
            text: PostmortemDocument.describe(e),
            note: e.type == .note
        )
    }

    static func alertRows(_ alerts: [IncidentAlert], thresholds: [Threshold]) -> [Alert] {
        let time = WebController.time
        return alerts.map { a in
            Alert(
                alertname: a.alertname,
                status: a.status.rawValue,
                firing: a.status == .firing,
                integration: a.integration,
                source: a.source.rawValue,
                labels: a.labels.sorted { $0.key < $1.key }.map { Label(key: $0.key, value: $0.value) },
                summary: a.annotations["summary"] ?? a.annotations["description"],
                description: a.annotations["summary"] != nil ? a.annotations["description"] : nil,
                generatorUrl: a.generatorUrl.flatMap(Self.webLink),
                value: a.value.map { NumberText.value($0, against: Threshold.applicable(thresholds, labels: a.labels)) },
                threshold: a.value != nil ? PostmortemDocument.thresholds(for: a.labels, thresholds) : nil,
                firstSeen: time(a.firstSeenAt),
                deliveries: a.deliveryCount,
                cleared: a.clearedAt.map { "cleared " + time($0) + (a.clearedBy.map { " by \($0)" } ?? "") }
            )
        }
    }

    /// - Parameters:
    ///   - people: who may be given a role (enabled responders and up); read only when the
    ///     visitor can change the incident.
    ///   - watermark: the newest timeline event id when the page was read (its live stream
    ///     says `changed` at once if anything is newer).
    init(
        _ d: IncidentDetail,
        decisions decisionList: [Decision],
        proposals proposalList: [DecisionProposal] = [],
        pinned: RunbookVersion?,
        user: User?,
        people: [User],
        watermark: Int64,
        postmortemExists: Bool,
        now: Date,
        notifications: [NotificationRecord] = [],
        escalation: String? = nil,
        rollouts: [Gate] = [],
        error: String? = nil
    ) {
        self.rollouts = rollouts.map { GateRow($0, now: now) }
        hasRollouts = !rollouts.isEmpty
        let time = WebController.time
        let me = user?.username
        let canChange = (user?.role ?? .viewer) >= .responder
        let i = d.incident
        let open = i.state != .resolved
        let policy = pinned?.runbook.rollback ?? RollbackPolicy()
        let decideRefusal = user.map { policy.refusal(role: $0.role, kind: .hold, runbook: pinned?.id) } ?? "sign in"
        let thresholds = pinned?.runbook.thresholds ?? []
        func words(_ raw: String) -> String { raw.replacingOccurrences(of: "_", with: " ") }

        title = "\(i.ref) \(i.title)"
        live = "/live?incident=\(i.number)&since=\(watermark)"
        updates = "/incidents/\(i.number)/updates"
        after = d.timeline.map(\.id).max() ?? watermark
        number = i.number
        ref = i.ref
        incidentTitle = i.title
        state = i.state.rawValue
        severity = i.severity.rawValue
        severityRule = Self.severityRule(i.severity, alerts: d.alerts, runbook: pinned?.runbook, labels: i.labels)
        opened = time(i.openedAt)
        openedIso = RFC3339.format(i.openedAt)
        age = OutcomeProposal.duration(max(0, Int((i.resolvedAt ?? now).timeIntervalSince(i.openedAt))))
        resolved = i.state == .resolved
        self.open = open
        owner = i.owner
        ownerPending = i.ownerPending
        roles = IncidentRole.allCases.map { role in
            let holder = d.roles.first { $0.role == role }
            return RoleRow(
                role: role.rawValue,
                label: role.rawValue.capitalized,
                holder: holder.map { Holder(user: $0.user, displayName: $0.displayName, pending: $0.pending, assignedBy: $0.assignedBy) },
                canTake: canChange && open && holder?.user != me,
                canAccept: canChange && open && holder?.user == me && holder?.pending == true,
                canHandOver: canChange && open && holder?.user == me
            )
        }
        self.people =
            canChange && open
            ? people.filter { !$0.disabled && $0.role >= .responder }.map { Person(username: $0.username, displayName: $0.displayName) } : []
        runbook = d.runbook.map {
            RunbookRow(id: $0.id, version: $0.version, title: $0.title, currentVersion: $0.currentVersion, outdated: $0.version != $0.currentVersion)
        }
        runbookReason = d.runbookReason
        let firstOpen = d.steps.first { $0.outcome == nil }?.index
        steps = d.steps.map { s in
            Step(
                index: s.index,
                // `$model`, `${model}`, `:model` read the incident's labels, as text.
                title: Placeholders.fillText(s.title, labels: i.labels),
                html: Placeholders.fillHTML(Markdown.html(s.markdown), labels: i.labels),
                outcome: s.outcome?.rawValue,
                done: s.outcome == .done,
                skipped: s.outcome == .skipped,
                failed: s.outcome == .failed,
                marked: s.outcome != nil,
                note: s.note,
                by: s.by,
                at: s.at.map(time),
                next: s.index == firstOpen,
                canMark: canChange
            )
        }
        hasSteps = !steps.isEmpty
        alerts = Self.alertRows(d.alerts, thresholds: thresholds)
        alertCount = alerts.count
        decisions = decisionList.map { x in
            DecisionRow(
                id: x.id,
                kind: x.kind.rawValue,
                target: x.target.description,
                rationale: x.rationale,
                customerImpact: x.customerImpact,
                alternatives: x.alternativesConsidered,
                decidedBy: x.decidedBy,
                decidedByRole: x.decidedByRole.rawValue,
                decidedAt: time(x.decidedAt),
                status: words(x.status),
                supersededBy: x.supersededBy,
                execution: x.execution.map { "executed by \($0.by) at \(time($0.at))" + ($0.note.map { ": \($0)" } ?? "") },
                outcome: x.outcome?.summary,
                proposal: x.proposal.map {
                    Proposal(outcome: $0.outcome.map { words($0.rawValue) } ?? "none yet (the verification window is open)", check: $0.check)
                },
                proposed: x.proposal?.outcome?.rawValue,
                proposedBy: x.proposedBy.map { "proposed by \($0)" + (x.proposalId.map { " (proposal \($0))" } ?? "") },
                late: x.late,
                canExecute: canChange && decideRefusal == nil && x.execution == nil && x.supersededBy == nil,
                canOutcome: canChange && decideRefusal == nil && x.execution != nil && x.outcome == nil,
                outcomes: DecisionOutcome.allCases.map { Choice(value: $0.rawValue, label: words($0.rawValue), selected: $0 == x.proposal?.outcome) }
            )
        }
        activeDecisions = decisionList.filter { $0.supersededBy == nil }.map { ActiveDecision(id: $0.id, kind: $0.kind.rawValue) }
        // On a resolved incident only leads and up record (late entries); whoever may not
        // decide proposes, for someone who may to confirm or reject.
        let role = user?.role ?? .viewer
        let canDecide = canChange && decideRefusal == nil && (open || role >= .lead)
        self.canDecide = canDecide
        if canDecide {
            decisionForm = DecisionForm(
                action: "decisions",
                summary: open ? "Record a decision" : "Record a late decision (the incident is resolved; it is marked as a late entry)",
                button: open ? "Record decision" : "Record late decision",
                canSupersede: true
            )
        } else if canChange {
            decisionForm = DecisionForm(
                action: "proposals",
                summary: "Propose a decision (someone the runbook lets decide confirms or rejects it)",
                button: "Propose decision",
                canSupersede: false
            )
        } else {
            decisionForm = nil
        }
        self.decideRefusal =
            canChange && !canDecide
            ? (decideRefusal ?? "\(i.ref) is resolved; a lead or above records a late decision") + "; propose one instead" : nil
        proposals = proposalList.map { p in
            let status: String
            if let decision = p.confirmedAs {
                status = "confirmed as decision \(decision) by \(p.confirmedBy ?? "someone")"
            } else if let by = p.rejectedBy {
                status = "rejected by \(by)" + (p.rejectedAt.map { " at \(time($0))" } ?? "") + (p.rejectionReason.map { ": \($0)" } ?? "")
            } else {
                status = "open: waiting for someone the runbook lets decide"
            }
            return ProposalRow(
                id: p.id,
                kind: words(p.kind.rawValue),
                target: p.target.description,
                rationale: p.rationale,
                customerImpact: p.customerImpact,
                alternatives: p.alternativesConsidered,
                proposedBy: p.proposedBy,
                proposedAt: time(p.proposedAt),
                status: status,
                canAnswer: canDecide && p.status == "open"
            )
        }
        decisionKinds = DecisionKind.allCases.filter { $0 != .rollback || policy.allowed }.map {
            Choice(value: $0.rawValue, label: words($0.rawValue), selected: false)
        }
        service = i.labels["service"]
        model = i.labels["model"]
        let events = d.timeline.map { e in (e.at, Self.event(e)) }
        // A timeline shown in part: the notifications of the part shown.
        let shownFrom = d.timeline.count < d.timelineCount ? d.timeline.first?.at : nil
        if d.timeline.count < d.timelineCount {
            timelineMore = "Showing the newest \(d.timeline.count) of \(d.timelineCount) entries."
        }
        let sent = notifications.filter { n in shownFrom.map { n.createdAt >= $0 } ?? true }.map { n in
            (n.createdAt, Event(at: time(n.createdAt), iso: RFC3339.format(n.createdAt), type: "notification", text: Self.describe(n), note: false))
        }
        // Newest first; an event and the notifications it caused share a time, the event shown below them.
        timeline = (events + sent).enumerated().sorted { a, b in
            a.element.0 != b.element.0 ? a.element.0 > b.element.0 : a.offset > b.offset
        }.map(\.element.1)
        self.escalation = escalation
        transitions =
            canChange
            ? IncidentTransition.allCases.filter { $0.from.contains(i.state) }.enumerated().map { n, t in
                // The allowed transitions come in order; the first is what is expected next.
                Transition(action: t.rawValue, label: t.rawValue.capitalized, withNote: t == .resolve, primary: n == 0)
            } : []
        self.canChange = canChange
        self.postmortemExists = postmortemExists
        canPostmortem = canChange && i.state == .resolved && !postmortemExists
        self.error = error
    }

    /// "notified lena by webhook (http://127.0.0.1:…/…ana): delivered, 1 attempt"
    /// The rule behind `severity`: the runbook's, read against the first alert it explains
    /// (the incident takes its most severe alert's), else the alert's label or the default.
    static func severityRule(_ severity: Severity, alerts: [IncidentAlert], runbook: Runbook?, labels: [String: String]) -> String? {
        if let runbook {
            for a in alerts {
                let (reached, rule) = runbook.severityRule(value: a.value, labels: a.labels)
                if reached == severity { return rule }
            }
            let (reached, rule) = runbook.severityRule(value: nil, labels: labels)
            return reached == severity ? rule : nil
        }
        if labels["severity"].flatMap({ Severity(rawValue: $0.lowercased()) }) == severity {
            return "\(severity.rawValue): the alert's severity label (no runbook matched)"
        }
        return nil
    }

    static func describe(_ n: NotificationRecord) -> String {
        let what = n.event.rawValue.replacingOccurrences(of: "_", with: " ")
        let outcome: String
        switch n.state {
        case .delivered: outcome = "delivered" + (n.attempts > 1 ? " after \(n.attempts) attempts" : "")
        case .failed: outcome = "failed after \(n.attempts) attempt\(n.attempts == 1 ? "" : "s")" + (n.lastError.map { ": \($0)" } ?? "")
        case .pending: outcome = n.attempts == 0 ? "sending" : "retrying (\(n.attempts) attempt\(n.attempts == 1 ? "" : "s") so far)"
        }
        return "\(what) sent to \(n.recipient) by \(n.kind.rawValue) (\(n.hint)): \(outcome)"
    }
}

/// `incident-update.html`, what a live incident page fetches when its incident changed: the
/// new timeline entries and, when alerts changed, the alerts; or "reload" when the change
/// touched more of the page (a state, an owner, a step, a decision) or is too long to patch.
struct IncidentUpdatePage: PageModel {
    var reload: Bool
    /// The newest timeline event the page will show.
    var after: Int64
    /// Newest first, as the page's timeline.
    var timeline: [IncidentPage.Event]
    var alerts: [IncidentPage.Alert]
    var alertCount: Int
    var alertsChanged: Bool

    /// What a page patches in place: notes and alerts coming and going.
    static let patched: Set<IncidentEventType> = [.note, .alertAdded, .alertCleared, .allAlertsCleared]

    init(_ u: IncidentUpdates, after: Int64, limit: Int) {
        reload = u.events.count >= limit || u.events.contains { !Self.patched.contains($0.type) }
        self.after = u.events.map(\.id).max() ?? after
        timeline = u.events.reversed().map(IncidentPage.event)
        alerts = IncidentPage.alertRows(u.alerts ?? [], thresholds: u.runbook?.thresholds ?? [])
        alertCount = alerts.count
        alertsChanged = u.alerts != nil
    }
}
