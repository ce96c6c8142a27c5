import Foundation
public import HandrailCore
public import HandrailStore
public import Postgres

/// A postmortem draft's factual sections, built from one resolved incident's log: summary,
/// impact window, detection, timeline, ownership changes, runbook steps with their gaps,
/// decisions and resolution. A pure function of its inputs, rendered from
/// `templates/postmortem.md.mustache`. The sections only people can write come with it as
/// headings to fill in.
public struct PostmortemDocument: Sendable, Equatable, Codable {
    public struct Line: Sendable, Equatable, Codable {
        public var at: String
        public var text: String
    }

    public struct StepRow: Sendable, Equatable, Codable {
        public var index: Int
        public var title: String
        public var outcome: String
        public var detail: String?
        public var gap: Bool
    }

    public struct DecisionRow: Sendable, Equatable, Codable {
        public var id: Int64
        public var kind: String
        public var target: String
        public var decidedBy: String
        public var decided: String
        public var rationale: String
        public var customerImpact: String?
        public var alternatives: String?
        public var execution: String?
        public var outcome: String
    }

    public var ref: String
    public var title: String
    /// Who owned the incident when the facts were generated (nil: nobody, or older facts).
    public var owner: String?
    public var severity: String
    /// The rule that decided the severity ("critical: the value 0.31 reaches …").
    public var severityRule: String?
    public var state: String
    public var draft: Bool
    public var timeZone: String
    public var summary: String
    public var impactFrom: String
    public var impactTo: String
    public var impactDuration: String
    public var detection: [String]
    public var timeline: [Line]
    public var ownership: [Line]
    public var steps: [StepRow]
    public var gapCount: Int
    public var decisions: [DecisionRow]
    public var resolution: String
    /// What the record says about customer impact: how long, and the decisions' impact fields.
    public var customerImpact: [String]?
    /// Time to detect (the monitor's start → first seen), acknowledge, mitigate, resolve.
    public var response: [String]?
    /// Everyone who acted, with what they did ("ana: acknowledged, 2 steps, 1 decision").
    public var participants: [String]?
    /// Earlier incidents of the same runbook or alert ("FeatureDriftHigh has fired 14 times in
    /// 30 days"), with links.
    public var related: RelatedIncidents?

    /// Decisions at the canary gates of releases linked to the incident (a guard breach
    /// during a rollout); nil when none were.
    public var rollouts: Rollouts?

    public struct Rollouts: Sendable, Equatable, Codable {
        public var rows: [RolloutRow]
    }

    public struct RolloutRow: Sendable, Equatable, Codable {
        public var kind: String
        public var target: String
        public var checksum: String
        public var stage: String
        public var decidedBy: String
        public var role: String
        public var decided: String
        public var rationale: String
        public var guards: String?
        public var alternatives: String?
    }

    public struct RelatedIncidents: Sendable, Equatable, Codable {
        public var summary: String
        public var refs: [RelatedRef]
    }

    public struct RelatedRef: Sendable, Equatable, Codable {
        public var at: String
        public var ref: String
        public var link: String
        public var title: String
    }

    // What people write, and the review: filled in from the stored postmortem.
    public var impact: String?
    public var rootCause: String?
    public var contributingFactors: String?
    public var wentWell: String?
    public var wentBadly: String?
    public var actionItems: [ActionItemRow] = []
    /// draft, in_review, approved or published (a generated draft: draft).
    public var review: String = "draft"
    /// "Draft", or "Draft, in review".
    public var draftLabel: String = "Draft"
    public var approval: String?
    /// The incident reopened after the facts were generated or the postmortem published.
    public var revision: String?

    public struct ActionItemRow: Sendable, Equatable, Codable {
        public var id: Int64
        public var title: String
        public var owner: String
        public var due: String
        public var status: String
    }

    /// Builds the draft. `thresholds` are the pinned runbook version's.
    public static func build(
        _ d: IncidentDetail,
        decisions: [Decision],
        thresholds: [Threshold],
        timeZone: String,
        severityRule: String? = nil
    ) -> PostmortemDocument {
        let fmt = TimeFormatter(zone: timeZone)
        let i = d.incident
        let resolvedEvent = d.timeline.last { $0.type == .resolved }
        let end = i.resolvedAt ?? d.alerts.compactMap(\.clearedAt).max() ?? i.openedAt
        let start = min(i.openedAt, d.alerts.compactMap(\.startsAt).min() ?? i.openedAt)
        let duration = OutcomeProposal.duration(max(0, Int(end.timeIntervalSince(start))))
        let runbook = d.runbook.map { "runbook \($0.id) v\($0.version) (\($0.title))" } ?? "no runbook"
        let summary =
            "\(i.ref) \(i.title): \(i.severity.rawValue), opened \(fmt.string(i.openedAt))"
            + (i.resolvedAt.map { ", resolved \(fmt.string($0)) after \(OutcomeProposal.duration(max(0, Int($0.timeIntervalSince(i.openedAt)))))" }
                ?? ", not resolved")
            + "; \(NumberText.count(i.alertCount, "alert")), \(NumberText.count(i.deliveryCount, "delivery", plural: "deliveries")); \(runbook); owner \(i.owner ?? "nobody")."
        var detection: [String] = []
        for a in d.alerts.sorted(by: { ($0.firstSeenAt, $0.fingerprint) < ($1.firstSeenAt, $1.fingerprint) }) {
            var line = "\(a.alertname) from \(a.integration) (\(a.source)), first seen \(fmt.string(a.firstSeenAt))"
            let labels = a.labels.filter { $0.key != "alertname" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            if !labels.isEmpty { line += ", labels " + labels.joined(separator: ", ") }
            if let value = a.value {
                line += ", value \(NumberText.value(value, against: Threshold.applicable(thresholds, labels: a.labels)))"
                if let t = Self.thresholds(for: a.labels, thresholds) { line += " against \(t)" }
            }
            detection.append(line)
        }
        let timeline = d.timeline.map { Line(at: fmt.string($0.at), text: Self.describe($0)) }
        let ownership = d.timeline.filter { $0.type == .roleChanged || $0.type == .roleAccepted }.map {
            Line(at: fmt.string($0.at), text: Self.describe($0))
        }
        let steps = d.steps.map { s -> StepRow in
            let outcome = s.outcome?.rawValue ?? "not marked"
            var detail: String?
            if let by = s.by, s.outcome != nil {
                detail = "by \(by)" + (s.at.map { " at \(fmt.string($0))" } ?? "") + (s.note.map { ": \($0)" } ?? "")
            }
            // Placeholders read the incident's labels (the template escapes the values as text).
            let title = Placeholders.fillText(s.title, labels: d.incident.labels)
            return StepRow(index: s.index, title: title, outcome: outcome, detail: detail, gap: s.outcome == .skipped || s.outcome == .failed)
        }
        let decisionRows = decisions.map { x -> DecisionRow in
            var outcome = x.status.replacingOccurrences(of: "_", with: " ")
            if let o = x.outcome { outcome = o.summary } else if let s = x.supersededBy { outcome = "superseded by decision \(s)" }
            return DecisionRow(
                id: x.id,
                kind: x.kind.rawValue,
                target: x.target.description,
                decidedBy: "\(x.decidedBy) (\(x.decidedByRole.rawValue))" + (x.proposedBy.map { ", proposed by \($0)" } ?? "")
                    + (x.late ? " (late entry, recorded after the incident was resolved)" : ""),
                decided: fmt.string(x.decidedAt),
                rationale: x.rationale,
                customerImpact: x.customerImpact,
                alternatives: x.alternativesConsidered,
                execution: x.execution.map { "executed by \($0.by) at \(fmt.string($0.at))" + ($0.note.map { ": \($0)" } ?? "") },
                outcome: outcome
            )
        }
        // Response times, each from the opening (detection: from when the monitor saw it start).
        func took(_ from: Date, _ to: Date?) -> String {
            to.map { OutcomeProposal.duration(max(0, Int($0.timeIntervalSince(from)))) } ?? "not yet"
        }
        var response: [String] = []
        if let started = d.alerts.compactMap(\.startsAt).min() {
            response.append("Time to detect (the monitor's start → Handrail opened it): \(took(started, i.openedAt))")
        } else {
            response.append("Time to detect: unknown (the alerts carry no start time)")
        }
        response.append("Time to acknowledge: \(took(i.openedAt, i.acknowledgedAt))")
        response.append("Time to mitigate: \(took(i.openedAt, i.mitigatedAt ?? i.resolvedAt))")
        response.append("Time to resolve: \(took(i.openedAt, i.resolvedAt))")
        var impact = ["Impact lasted \(duration) (\(fmt.string(start)) → \(fmt.string(end)))."]
        impact += decisions.compactMap { x in x.customerImpact.map { "Decision \(x.id) (\(x.kind.rawValue)) recorded: \($0)" } }
        // People who acted, in the order they first did, with what they did.
        var order: [String] = []
        var did: [String: [String: Int]] = [:]
        for e in d.timeline where e.actorKind == .user {
            let what: String? =
                switch e.type {
                case .acknowledged, .mitigated, .resolved, .reopened: e.type.rawValue
                case .stepMarked: "step"
                case .roleChanged, .roleAccepted: "ownership change"
                case .decisionRecorded: "decision"
                case .decisionExecuted: "execution"
                case .decisionOutcome: "outcome"
                case .decisionProposed: "proposal"
                case .decisionProposalRejected: "rejected proposal"
                case .note: "note"
                default: nil
                }
            guard let what else { continue }
            if did[e.actor] == nil { order.append(e.actor) }
            did[e.actor, default: [:]][what, default: 0] += 1
        }
        let participants = order.map { who in
            let acts = (did[who] ?? [:]).sorted { $0.key < $1.key }.map { what, n in
                ["acknowledged", "mitigated", "resolved", "reopened"].contains(what) ? what : NumberText.count(n, what)
            }
            return "\(who): \(acts.joined(separator: ", "))"
        }
        var resolution = "Not resolved yet."
        if let e = resolvedEvent {
            let note = e.data["note"]?.stringValue
            let automatic = e.data["automatic"] == .bool(true)
            resolution =
                automatic
                ? "Resolved automatically at \(fmt.string(e.at)): every alert cleared."
                : "Resolved by \(e.actor) at \(fmt.string(e.at))" + (note.map { ": \($0)" } ?? ".")
        }
        return PostmortemDocument(
            ref: i.ref,
            title: i.title,
            owner: i.owner,
            severity: i.severity.rawValue,
            severityRule: severityRule,
            state: i.state.rawValue,
            draft: true,
            timeZone: timeZone,
            summary: summary,
            impactFrom: fmt.string(start),
            impactTo: fmt.string(end),
            impactDuration: duration,
            detection: detection,
            timeline: timeline,
            ownership: ownership,
            steps: steps,
            gapCount: steps.filter { $0.gap }.count,
            decisions: decisionRows,
            resolution: resolution,
            customerImpact: impact,
            response: response,
            participants: participants,
            rootCause: nil,
            contributingFactors: nil,
            wentWell: nil,
            wentBadly: nil
        )
    }

    /// The runbook thresholds an alert is measured against, in words ("gpu_util thresholds
    /// warning 0.8, critical 0.9 (higher is worse)"), or nil when none applies.
    static func thresholds(for labels: [String: String], _ thresholds: [Threshold]) -> String? {
        guard let t = Threshold.applicable(thresholds, labels: labels) else {
            return nil
        }
        let limits = [t.warning.map { "warning \(NumberText.plain($0))" }, t.critical.map { "critical \(NumberText.plain($0))" }].compactMap { $0 }
        return "\(t.metric) thresholds \(limits.joined(separator: ", ")) (\(t.direction == .higher ? "higher" : "lower") is worse)"
    }

    /// The first five of `names`, and how many more.
    static func listed(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }

    /// One timeline entry in words.
    static func describe(_ e: IncidentEvent) -> String {
        let data = e.data
        func s(_ key: String) -> String? { data[key]?.stringValue }
        // A number, also as the text older rows (and the demo's history) wrote; " 3" or "".
        func n(_ key: String) -> String {
            switch data[key] {
            case .number(let v)?: return " " + NumberText.plain(v)
            case .string(let text)?: return Int(text).map { " \($0)" } ?? ""
            default: return ""
            }
        }
        switch e.type {
        case .opened: return "opened by \(e.actor)" + (s("owner_reason").map { "; \($0)" } ?? "")
        case .alertAdded:
            // One entry per delivery: {"count", "alerts": […]}; older entries are one alert each.
            guard case .array(let alerts)? = data["alerts"] else { return "alert \(s("alertname") ?? "?") (\(s("fingerprint") ?? "?")) added" }
            let named = alerts.map { "\($0["alertname"]?.stringValue ?? "?") (\($0["fingerprint"]?.stringValue ?? "?"))" }
            return (named.count == 1 ? "alert " : "\(named.count) alerts ") + listed(named) + " added"
        case .alertCleared:
            guard case .array(let prints)? = data["fingerprints"] else { return "alert \(s("fingerprint") ?? "?") cleared by \(e.actor)" }
            let named = prints.map { $0.stringValue ?? "?" }
            return (named.count == 1 ? "alert " : "\(named.count) alerts ") + listed(named) + " cleared by \(e.actor)"
        case .allAlertsCleared: return "every alert cleared; waiting for a person to resolve"
        case .stepMarked:
            let note = s("note").map { ": \($0)" } ?? ""
            let title = s("title").map { " (\(RunbookStep.title(of: $0)))" } ?? ""
            return "step\(n("step"))\(title) \(s("outcome") ?? "marked") by \(e.actor)" + note
        case .roleChanged:
            let action = s("action") ?? "change"
            let reason = s("reason").map { " (\($0))" } ?? ""
            if action == "rotation" {
                return "\(s("role") ?? "role"): \(s("to") ?? "nobody") assigned by rotation \(s("rotation") ?? "?")\(reason)"
            }
            return
                "\(s("role") ?? "role"): \(action.replacingOccurrences(of: "_", with: " ")) \(s("from") ?? "nobody") → \(s("to") ?? "nobody") by \(e.actor)\(reason)"
        case .roleAccepted: return "\(s("role") ?? "role"): \(s("user") ?? e.actor) accepted"
        case .decisionRecorded:
            let proposal = s("proposed_by").map { ", proposed by \($0)" } ?? ""
            let late = data["late"] == .bool(true) ? " (late entry, after the incident was resolved)" : ""
            return "decision\(n("decision")): \(s("kind") ?? "") recorded by \(e.actor)\(proposal)\(late)"
        case .decisionProposed: return "decision proposed by \(e.actor) (proposal\(n("proposal"))): \(s("kind") ?? "")"
        case .decisionProposalRejected: return "proposal\(n("proposal")) rejected by \(e.actor): \(s("reason") ?? "")"
        case .decisionExecuted: return "decision\(n("decision")) executed by \(e.actor)"
        case .decisionOutcome: return "decision\(n("decision")) outcome \(s("outcome") ?? "") by \(e.actor)"
        case .note: return "note by \(e.actor): \(s("text") ?? "")"
        case .change: return "change from \(e.actor): \(s("summary") ?? "")"
        case .acknowledged, .mitigated, .resolved, .reopened: return "\(e.type.rawValue) by \(e.actor)" + (s("note").map { ": \($0)" } ?? "")
        }
    }
}

extension DocumentRenderer {
    public func postmortem(_ document: PostmortemDocument) throws -> String {
        try markdown("postmortem.md", document)
    }
}

/// Reads what a postmortem is built from, and puts stored postmortems back together.
public struct PostmortemGenerator: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// The generated draft of an incident, in `timeZone` (default: the owning rotation's
    /// zone, else UTC); nil when there is no such incident.
    public func facts(number: Int64, timeZone: String? = nil) async throws -> PostmortemDocument? {
        guard let detail = try await IncidentStore(pool: pool).detail(number: number) else { return nil }
        let decisions = try await DecisionStore(pool: pool).list(number: number) ?? []
        var thresholds: [Threshold] = []
        var runbook: Runbook?
        if let r = detail.runbook, let version = try await RunbookStore(pool: pool).version(id: r.id, r.version) {
            thresholds = version.runbook.thresholds
            runbook = version.runbook
        }
        var zone = timeZone ?? "UTC"
        if timeZone == nil, let name = detail.ownersRotation, let rotation = try await RotationStore(pool: pool).find(name: name) {
            zone = rotation.timeZone
        }
        let rule = IncidentPage.severityRule(detail.incident.severity, alerts: detail.alerts, runbook: runbook, labels: detail.incident.labels)
        var doc = PostmortemDocument.build(detail, decisions: decisions, thresholds: thresholds, timeZone: zone, severityRule: rule)
        let gateDecisions = try await GateStore(pool: pool).decisions(incident: number)
        if !gateDecisions.isEmpty {
            let fmt = TimeFormatter(zone: zone)
            doc.rollouts = .init(
                rows: gateDecisions.map { r in
                    .init(
                        kind: r.decision.kind.rawValue,
                        target: r.release.target,
                        checksum: r.release.checksum,
                        stage: r.stage,
                        decidedBy: r.decision.decidedBy,
                        role: r.decision.decidedByRole.rawValue,
                        decided: fmt.string(r.decision.decidedAt),
                        rationale: r.decision.rationale,
                        guards: r.decision.guards.isEmpty
                            ? nil : r.decision.guards.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
                        alternatives: r.decision.alternativesConsidered
                    )
                }
            )
        }
        if let related = try await IncidentStore(pool: pool).related(number: number) {
            let fmt = TimeFormatter(zone: zone)
            let what = detail.runbook != nil ? "Runbook \(related.key)" : "\(related.key)"
            doc.related = .init(
                summary: "\(what) has fired \(NumberText.count(related.count, "time")) in the 30 days before this incident.",
                refs: related.newest.map {
                    .init(at: fmt.string($0.openedAt), ref: IncidentRef.display($0.number), link: "/incidents/\($0.number)", title: $0.title)
                }
            )
        }
        return doc
    }

    /// The stored facts with what people wrote, the action items and the review. Stored facts
    /// that do not decode as today's document (an older shape, or `handrail demo`'s history,
    /// which stores none) are read again from the incident's log: a document never fails on
    /// rows Handrail wrote itself.
    public func view(_ stored: StoredPostmortem, number: Int64) async throws -> PostmortemDocument {
        let facts: PostmortemDocument
        if let decoded = try? JSONDecoder().decode(PostmortemDocument.self, from: Data(stored.factsJSON.utf8)) {
            facts = decoded
        } else {
            guard let fresh = try await self.facts(number: number) else { throw IncidentController.notFound(number) }
            facts = fresh
        }
        return Self.view(stored, facts: facts)
    }

    /// `stored`'s sections, action items and review over `doc`, its facts.
    static func view(_ stored: StoredPostmortem, facts doc: PostmortemDocument) -> PostmortemDocument {
        var doc = doc
        let text = { (s: PostmortemSection) in stored.sections.first { $0.section == s }?.markdown }
        doc.impact = text(.impact)
        doc.rootCause = text(.rootCause)
        doc.contributingFactors = text(.contributingFactors)
        doc.wentWell = text(.wentWell)
        doc.wentBadly = text(.wentBadly)
        doc.actionItems = stored.actionItems.map { .init(id: $0.id, title: $0.title, owner: $0.owner, due: $0.dueDate, status: $0.status) }
        doc.review = stored.state.rawValue
        doc.draft = stored.state < .approved
        doc.draftLabel = stored.state == .inReview ? "Draft, in review" : "Draft"
        if stored.needsRevision {
            doc.revision =
                stored.state == .published
                ? "Needs revision: the incident reopened after this postmortem was published."
                : "Needs revision: the incident reopened after these facts were generated."
        }
        if let by = stored.approvedBy, let at = stored.approvedAt {
            doc.approval =
                "Approved by \(by) at \(TimeFormatter(zone: doc.timeZone).string(at))"
                + (stored.approvalOverrideReason.map { " (who submitted it; an administrator's override: \($0))" } ?? "")
                + (stored.publishedAt.map { "; published \(TimeFormatter(zone: doc.timeZone).string($0))" } ?? "")
        }
        return doc
    }
}
