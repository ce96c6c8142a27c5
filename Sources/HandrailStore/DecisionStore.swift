public import Foundation
public import HandrailCore
public import Postgres

/// What a decision is about.
public struct DecisionTarget: Sendable, Equatable, Codable {
    public var service: String?
    public var model: String?
    public var fromVersion: String?
    public var toVersion: String?

    public init(service: String? = nil, model: String? = nil, fromVersion: String? = nil, toVersion: String? = nil) {
        self.service = service
        self.model = model
        self.fromVersion = fromVersion
        self.toVersion = toVersion
    }

    /// What the decision is about, in words: "api/ranker v42 → v41".
    public var description: String {
        [service, model].compactMap { $0 }.joined(separator: "/") + (fromVersion.map { " \($0)" } ?? "") + (toVersion.map { " → \($0)" } ?? "")
    }
}

/// A decision as a person records it.
public struct NewDecision: Sendable, Equatable {
    public var kind: DecisionKind
    public var target: DecisionTarget
    public var rationale: String
    public var customerImpact: String?
    public var alternativesConsidered: String?
    /// The decision this one replaces (a change of mind), by id.
    public var supersedes: Int64?

    public init(
        kind: DecisionKind,
        target: DecisionTarget,
        rationale: String,
        customerImpact: String? = nil,
        alternativesConsidered: String? = nil,
        supersedes: Int64? = nil
    ) {
        self.kind = kind
        self.target = target
        self.rationale = rationale
        self.customerImpact = customerImpact
        self.alternativesConsidered = alternativesConsidered
        self.supersedes = supersedes
    }
}

/// A rollback decision with everything that followed it.
public struct Decision: Sendable, Equatable, Encodable {
    public struct Execution: Sendable, Equatable, Codable {
        public var by: String
        public var at: Date
        public var note: String?
    }

    public struct Outcome: Sendable, Equatable, Codable {
        public var outcome: DecisionOutcome
        /// What Handrail proposed when the person recorded it.
        public var proposed: DecisionOutcome?
        public var check: String
        public var confirmedBy: String
        public var confirmedAt: Date
        public var note: String?
        /// The person chose other than the proposal.
        public var overridden: Bool { proposed != outcome }
        /// "not effective (the check; confirmed by lena): note".
        public var summary: String {
            "\(outcome.rawValue.replacingOccurrences(of: "_", with: " ")) (\(check); confirmed by \(confirmedBy))" + (note.map { ": \($0)" } ?? "")
        }
    }

    public var id: Int64
    public var incident: String
    public var kind: DecisionKind
    public var target: DecisionTarget
    public var rationale: String
    public var customerImpact: String?
    public var alternativesConsidered: String?
    public var decidedBy: String
    public var decidedByRole: Role
    public var decidedAt: Date
    public var verificationWindow: Int
    public var supersedes: Int64?
    public var supersededBy: Int64?
    /// The responder's proposal this decision confirmed, and who proposed it.
    public var proposalId: Int64?
    public var proposedBy: String?
    /// Recorded after the incident was resolved.
    public var late: Bool = false
    public var execution: Execution?
    public var outcome: Outcome?
    /// Handrail's proposal, while an executed decision has no outcome yet.
    public var proposal: OutcomeProposal?

    /// superseded, awaiting_execution, awaiting_outcome, or the outcome.
    public var status: String {
        if let outcome { return outcome.outcome.rawValue }
        if supersededBy != nil { return "superseded" }
        return execution == nil ? "awaiting_execution" : "awaiting_outcome"
    }

    enum CodingKeys: String, CodingKey {
        case id, incident, kind, target, rationale, customerImpact, alternativesConsidered, decidedBy, decidedByRole, decidedAt
        case verificationWindow, supersedes, supersededBy, proposalId, proposedBy, late, execution, outcome, proposal, status
    }

    /// The stored fields and `status`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(incident, forKey: .incident)
        try c.encode(kind, forKey: .kind)
        try c.encode(target, forKey: .target)
        try c.encode(rationale, forKey: .rationale)
        try c.encodeIfPresent(customerImpact, forKey: .customerImpact)
        try c.encodeIfPresent(alternativesConsidered, forKey: .alternativesConsidered)
        try c.encode(decidedBy, forKey: .decidedBy)
        try c.encode(decidedByRole, forKey: .decidedByRole)
        try c.encode(decidedAt, forKey: .decidedAt)
        try c.encode(verificationWindow, forKey: .verificationWindow)
        try c.encodeIfPresent(supersedes, forKey: .supersedes)
        try c.encodeIfPresent(supersededBy, forKey: .supersededBy)
        try c.encodeIfPresent(proposalId, forKey: .proposalId)
        try c.encodeIfPresent(proposedBy, forKey: .proposedBy)
        try c.encode(late, forKey: .late)
        try c.encodeIfPresent(execution, forKey: .execution)
        try c.encodeIfPresent(outcome, forKey: .outcome)
        try c.encodeIfPresent(proposal, forKey: .proposal)
        try c.encode(status, forKey: .status)
    }
}

/// A decision a responder proposed, and its answer: confirmed (as a decision) or rejected.
public struct DecisionProposal: Sendable, Equatable, Encodable {
    public var id: Int64
    public var incident: String
    public var kind: DecisionKind
    public var target: DecisionTarget
    public var rationale: String
    public var customerImpact: String?
    public var alternativesConsidered: String?
    public var proposedBy: String
    public var proposedAt: Date
    /// The decision that confirmed it, and who decided.
    public var confirmedAs: Int64?
    public var confirmedBy: String?
    public var rejectedBy: String?
    public var rejectedAt: Date?
    public var rejectionReason: String?

    /// open, confirmed or rejected.
    public var status: String { confirmedAs != nil ? "confirmed" : rejectedBy != nil ? "rejected" : "open" }

    enum CodingKeys: String, CodingKey {
        case id, incident, kind, target, rationale, customerImpact, alternativesConsidered, proposedBy, proposedAt
        case confirmedAs, confirmedBy, rejectedBy, rejectedAt, rejectionReason, status
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(incident, forKey: .incident)
        try c.encode(kind, forKey: .kind)
        try c.encode(target, forKey: .target)
        try c.encode(rationale, forKey: .rationale)
        try c.encodeIfPresent(customerImpact, forKey: .customerImpact)
        try c.encodeIfPresent(alternativesConsidered, forKey: .alternativesConsidered)
        try c.encode(proposedBy, forKey: .proposedBy)
        try c.encode(proposedAt, forKey: .proposedAt)
        try c.encodeIfPresent(confirmedAs, forKey: .confirmedAs)
        try c.encodeIfPresent(confirmedBy, forKey: .confirmedBy)
        try c.encodeIfPresent(rejectedBy, forKey: .rejectedBy)
        try c.encodeIfPresent(rejectedAt, forKey: .rejectedAt)
        try c.encodeIfPresent(rejectionReason, forKey: .rejectionReason)
        try c.encode(status, forKey: .status)
    }
}

/// All SQL about rollback decisions. Decisions, executions and outcomes are append-only
/// (the database refuses UPDATE and DELETE); each is written with its timeline event in
/// one statement.
public struct DecisionStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Who is deciding: a signed-in person, never an integration.
    public typealias Person = (id: Int, username: String, role: Role)

    public enum RecordResult: Sendable, Equatable {
        case recorded(Decision)
        case notFound
        /// The runbook does not let this person decide (the reason, for the 403).
        case refused(String)
        /// `supersedes` names no decision of this incident.
        case unknownSuperseded
        /// `supersedes` names a decision that another one already superseded.
        case alreadySuperseded(by: Int64?)
        /// The proposal being confirmed was confirmed or rejected already (what happened).
        case answered(String)
    }

    /// The incident's id and state and the rollback policy of its pinned runbook version.
    func policy(number: Int64) async throws -> (id: Int64, state: IncidentState, runbook: String?, policy: RollbackPolicy)? {
        guard
            let row = try await pool.query(
                """
                SELECT i.id, i.state::text AS state, i.runbook_id, v.definition->'rollback' AS rollback
                FROM incidents i LEFT JOIN runbook_versions v ON v.runbook_id = i.runbook_id AND v.version = i.runbook_version
                WHERE i.number = \(number)
                """
            ).first
        else { return nil }
        let policy = try row.decode("rollback", as: PostgresJSON?.self)?.decode(as: RollbackPolicy.self) ?? RollbackPolicy()
        return (try row.decode("id"), try row.decode("state"), try row.decode("runbook_id"), policy)
    }

    /// decision.record — checks the runbook's policy for this person, then stores the decision
    /// and its timeline event. On a resolved incident only a lead or above records, and the
    /// decision is marked late.
    public func record(number: Int64, _ d: NewDecision, by person: Person) async throws -> RecordResult {
        try await record(number: number, d, by: person, proposal: nil)
    }

    func record(number: Int64, _ d: NewDecision, by person: Person, proposal: (id: Int64, by: String)?) async throws -> RecordResult {
        guard let incident = try await policy(number: number) else { return .notFound }
        if let reason = incident.policy.refusal(role: person.role, kind: d.kind, runbook: incident.runbook) { return .refused(reason) }
        let late = incident.state == .resolved
        if late, person.role < .lead {
            return .refused("\(IncidentRef.display(number)) is resolved; a lead or above records a late decision (propose it instead)")
        }
        let rows: PostgresRows
        do {
            rows = try await pool.query(
                """
                WITH locked AS (
                    -- The proposal being confirmed, locked: a concurrent rejection waits for this answer.
                    SELECT id FROM decision_proposals WHERE id = \(proposal?.id) AND incident_id = \(incident.id) FOR UPDATE
                ), decided AS (
                    INSERT INTO decisions (incident_id, kind, target_service, target_model, from_version, to_version, rationale,
                                           customer_impact, alternatives_considered, decided_by, decided_by_role, verification_window, supersedes,
                                           proposal_id, late)
                    SELECT \(incident.id), \(d.kind.rawValue)::decision_kind, \(d.target.service), \(d.target.model), \(d.target.fromVersion),
                           \(d.target.toVersion), \(d.rationale), \(d.customerImpact), \(d.alternativesConsidered), \(person.id),
                           \(person.role.rawValue)::user_role, \(incident.policy.verificationWindow), \(d.supersedes), \(proposal?.id), \(late)
                    WHERE \(proposal?.id)::bigint IS NULL OR EXISTS (SELECT 1 FROM locked)
                    RETURNING id, incident_id
                ), event AS (
                    INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                    SELECT incident_id, 'decision_recorded', \(person.username), \(person.id)::bigint, jsonb_strip_nulls(jsonb_build_object(
                        'decision', id, 'kind', \(d.kind.rawValue)::text, 'service', \(d.target.service)::text, 'model', \(d.target.model)::text,
                        'from_version', \(d.target.fromVersion)::text, 'to_version', \(d.target.toVersion)::text,
                        'rationale', \(d.rationale)::text, 'supersedes', \(d.supersedes)::bigint,
                        'proposal', \(proposal?.id)::bigint, 'proposed_by', \(proposal?.by)::text, 'late', CASE WHEN \(late) THEN true END))
                    FROM decided
                    RETURNING incident_id
                ), notified AS (
                    SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
                )
                SELECT id, (SELECT n FROM notified) AS notified FROM decided
                """
            )
        } catch let error as PostgresError where error.sqlState == "23503" && error.constraint?.contains("supersedes") == true {
            return .unknownSuperseded
        } catch let error as PostgresError where error.isUniqueViolation && error.constraint == "decisions_confirm_once" {
            return .answered("proposal \(proposal?.id ?? 0) was already confirmed")
        } catch let error as PostgresError where error.isRestrictViolation {
            return .answered("proposal \(proposal?.id ?? 0) was rejected")
        } catch let error as PostgresError where error.isUniqueViolation {
            let by = try await pool.query("SELECT id FROM decisions WHERE supersedes = \(d.supersedes)").first?.decode("id", as: Int64.self)
            return .alreadySuperseded(by: by)
        }
        guard !rows.isEmpty else { return .notFound }
        let id: Int64 = try rows[0].decode("id")
        guard let decision = try await list(number: number, id: id)?.first else { return .notFound }
        return .recorded(decision)
    }

    public enum ExecuteResult: Sendable, Equatable {
        case executed(Decision)
        case notFound
        /// A decision that was superseded is not carried out.
        case superseded(by: Int64)
        case alreadyExecuted(by: String, at: Date)
        /// `at` is before the decision or in the future.
        case badTime(String)
        /// The pinned runbook's policy does not let this person's role act on decisions.
        case refused(String)
    }

    /// decision.execute — who carried the decision out, and when (default now). The same
    /// roles that may record the decision may record its execution.
    public func execute(number: Int64, id: Int64, at: Date?, note: String?, by person: Person) async throws -> ExecuteResult {
        guard let incident = try await policy(number: number) else { return .notFound }
        if let reason = incident.policy.refusal(role: person.role, kind: .hold, runbook: incident.runbook) { return .refused(reason) }
        let rows = try await pool.query(
            """
            WITH d AS (
                SELECT d.id, d.incident_id, d.decided_at, (SELECT s.id FROM decisions s WHERE s.supersedes = d.id) AS superseded_by,
                       coalesce(\(at)::timestamptz, clock_timestamp()) AS executed_at
                FROM decisions d JOIN incidents i ON i.id = d.incident_id
                WHERE i.number = \(number) AND d.id = \(id)
            ), done AS (
                INSERT INTO decision_executions (decision_id, executed_by, executed_at, note)
                SELECT id, \(person.id), executed_at, \(note) FROM d
                WHERE superseded_by IS NULL AND executed_at >= decided_at AND executed_at <= clock_timestamp() + interval '1 minute'
                ON CONFLICT (decision_id) DO NOTHING
                RETURNING decision_id, executed_at
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                SELECT d.incident_id, 'decision_executed', \(person.username), \(person.id)::bigint, jsonb_strip_nulls(jsonb_build_object(
                    'decision', d.id, 'executed_at', done.executed_at, 'note', \(note)::text))
                FROM done JOIN d ON d.id = done.decision_id
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT d.superseded_by, d.decided_at, d.executed_at, (SELECT count(*) FROM done) AS done, (SELECT n FROM notified) AS notified,
                   (SELECT u.username FROM decision_executions e JOIN users u ON u.id = e.executed_by WHERE e.decision_id = d.id) AS executed_by,
                   (SELECT e.executed_at FROM decision_executions e WHERE e.decision_id = d.id) AS previous_at
            FROM d
            """
        )
        guard let row = rows.first else { return .notFound }
        if try row.decode("done", as: Int.self) == 1 {
            guard let decision = try await list(number: number, id: id)?.first else { return .notFound }
            return .executed(decision)
        }
        if let by = try row.decode("superseded_by", as: Int64?.self) { return .superseded(by: by) }
        if let who = try row.decode("executed_by", as: String?.self) { return .alreadyExecuted(by: who, at: try row.decode("previous_at")) }
        let decided: Date = try row.decode("decided_at")
        return .badTime("must be between the decision (\(RFC3339.format(decided))) and now")
    }

    public enum OutcomeResult: Sendable, Equatable {
        case recorded(Decision)
        case notFound
        case notExecuted
        case alreadyRecorded(Decision.Outcome)
        case refused(String)
        /// Choosing other than Handrail's proposal needs a note saying why.
        case noteRequired(proposed: DecisionOutcome?)
    }

    /// decision.outcome — a person confirms Handrail's proposal or overrides it (with a note).
    public func recordOutcome(number: Int64, id: Int64, outcome: DecisionOutcome, note: String?, by person: Person) async throws -> OutcomeResult {
        guard let incident = try await policy(number: number) else { return .notFound }
        guard let decision = try await list(number: number, id: id)?.first else { return .notFound }
        if let existing = decision.outcome { return .alreadyRecorded(existing) }
        guard decision.execution != nil, let proposal = decision.proposal else { return .notExecuted }
        if let reason = incident.policy.refusal(role: person.role, kind: .hold, runbook: incident.runbook) { return .refused(reason) }
        let trimmed = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if proposal.outcome != outcome, trimmed?.isEmpty ?? true { return .noteRequired(proposed: proposal.outcome) }
        let rows = try await pool.query(
            """
            WITH recorded AS (
                INSERT INTO decision_outcomes (decision_id, outcome, proposed, check_text, confirmed_by, note)
                VALUES (\(id), \(outcome.rawValue), \(proposal.outcome?.rawValue), \(proposal.check), \(person.id), \(trimmed))
                ON CONFLICT (decision_id) DO NOTHING
                RETURNING decision_id
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                SELECT \(incident.id), 'decision_outcome', \(person.username), \(person.id)::bigint, jsonb_strip_nulls(jsonb_build_object(
                    'decision', decision_id, 'outcome', \(outcome.rawValue)::text, 'proposed', \(proposal.outcome?.rawValue)::text,
                    'check', \(proposal.check)::text, 'note', \(trimmed)::text))
                FROM recorded
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT (SELECT count(*) FROM recorded) AS n, (SELECT n FROM notified) AS notified
            """
        )
        guard let updated = try await list(number: number, id: id)?.first else { return .notFound }
        if try rows[0].decode("n", as: Int.self) == 0, let existing = updated.outcome { return .alreadyRecorded(existing) }
        return .recorded(updated)
    }

    /// decision.list — an incident's decisions, oldest first (or the one with `id`); nil when
    /// there is no such incident. Executed decisions without an outcome carry a proposal
    /// computed from the incident's alerts as of `now`.
    public func list(number: Int64, id: Int64? = nil, now: Date = Date()) async throws -> [Decision]? {
        try await pool.withConnection { db in
            guard let incident = try await db.query("SELECT id FROM incidents WHERE number = \(number)").first?.decode("id", as: Int64.self) else {
                return nil
            }
            let rows = try await db.query(
                """
                SELECT d.*, d.kind::text AS kind_text, d.decided_by_role::text AS role_text, u.username AS decided_by_name,
                       (SELECT s.id FROM decisions s WHERE s.supersedes = d.id) AS superseded_by,
                       e.executed_at, e.note AS execution_note, eu.username AS executed_by_name,
                       o.outcome, o.proposed, o.check_text, o.confirmed_at, o.note AS outcome_note, ou.username AS confirmed_by_name,
                       pu.username AS proposed_by_name
                FROM decisions d JOIN users u ON u.id = d.decided_by
                LEFT JOIN decision_proposals p ON p.id = d.proposal_id LEFT JOIN users pu ON pu.id = p.proposed_by
                LEFT JOIN decision_executions e ON e.decision_id = d.id LEFT JOIN users eu ON eu.id = e.executed_by
                LEFT JOIN decision_outcomes o ON o.decision_id = d.id LEFT JOIN users ou ON ou.id = o.confirmed_by
                WHERE d.incident_id = \(incident) AND (\(id)::bigint IS NULL OR d.id = \(id))
                ORDER BY d.id
                """
            )
            var alerts: [OutcomeProposal.Alert]?
            var result: [Decision] = []
            for row in rows {
                var d = try Decision(row: row, incident: IncidentRef.display(number))
                if let execution = d.execution, d.outcome == nil {
                    if alerts == nil {
                        alerts = try await db.query(
                            """
                            SELECT first_seen_at, CASE WHEN cleared_by = 'source' THEN cleared_at END AS cleared
                            FROM alerts WHERE incident_id = \(incident)
                            """
                        ).map { OutcomeProposal.Alert(firstSeen: try $0.decode("first_seen_at"), clearedBySource: try $0.decode("cleared")) }
                    }
                    d.proposal = OutcomeProposal.propose(executedAt: execution.at, window: d.verificationWindow, alerts: alerts ?? [], now: now)
                }
                result.append(d)
            }
            return result
        }
    }

    // MARK: Proposals

    public enum ProposeResult: Sendable, Equatable {
        case proposed(DecisionProposal)
        case notFound
    }

    /// decision.propose — a responder's proposal, on the record, for a person the runbook
    /// lets decide to confirm or reject.
    public func propose(number: Int64, _ d: NewDecision, by person: Person) async throws -> ProposeResult {
        let rows = try await pool.query(
            """
            WITH proposed AS (
                INSERT INTO decision_proposals (incident_id, kind, target_service, target_model, from_version, to_version, rationale,
                                                customer_impact, alternatives_considered, proposed_by)
                SELECT i.id, \(d.kind.rawValue)::decision_kind, \(d.target.service), \(d.target.model), \(d.target.fromVersion),
                       \(d.target.toVersion), \(d.rationale), \(d.customerImpact), \(d.alternativesConsidered), \(person.id)
                FROM incidents i WHERE i.number = \(number)
                RETURNING id, incident_id
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                SELECT incident_id, 'decision_proposed', \(person.username), \(person.id)::bigint, jsonb_strip_nulls(jsonb_build_object(
                    'proposal', id, 'kind', \(d.kind.rawValue)::text, 'service', \(d.target.service)::text, 'model', \(d.target.model)::text,
                    'rationale', \(d.rationale)::text))
                FROM proposed
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT id, (SELECT n FROM notified) AS notified FROM proposed
            """
        )
        guard let id = try rows.first?.decode("id", as: Int64.self), let p = try await proposals(number: number, id: id)?.first else {
            return .notFound
        }
        return .proposed(p)
    }

    /// decision.confirm — records the proposed decision as this person's (the runbook's policy
    /// applies as to any decision), naming the proposal and who proposed it.
    public func confirm(number: Int64, proposal id: Int64, by person: Person) async throws -> RecordResult {
        guard let p = try await proposals(number: number, id: id)?.first else { return .notFound }
        if let by = p.confirmedAs { return .answered("proposal \(id) was confirmed as decision \(by)") }
        if let by = p.rejectedBy { return .answered("proposal \(id) was rejected by \(by)") }
        let decision = NewDecision(
            kind: p.kind,
            target: p.target,
            rationale: p.rationale,
            customerImpact: p.customerImpact,
            alternativesConsidered: p.alternativesConsidered
        )
        return try await record(number: number, decision, by: person, proposal: (id, p.proposedBy))
    }

    public enum RejectResult: Sendable, Equatable {
        case rejected(DecisionProposal)
        case notFound
        case refused(String)
        case answered(String)
    }

    /// decision.reject — a person the runbook lets decide turns a proposal down, saying why.
    public func reject(number: Int64, proposal id: Int64, reason: String, by person: Person) async throws -> RejectResult {
        guard let incident = try await policy(number: number) else { return .notFound }
        guard let p = try await proposals(number: number, id: id)?.first else { return .notFound }
        if let reason = incident.policy.refusal(role: person.role, kind: p.kind, runbook: incident.runbook) { return .refused(reason) }
        do {
            _ = try await pool.query(
                """
                WITH locked AS (
                    SELECT id, incident_id FROM decision_proposals WHERE id = \(id) AND incident_id = \(incident.id) FOR UPDATE
                ), rejected AS (
                    INSERT INTO decision_proposal_rejections (proposal_id, rejected_by, reason)
                    SELECT id, \(person.id), \(reason) FROM locked
                    RETURNING proposal_id
                ), event AS (
                    INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                    SELECT l.incident_id, 'decision_proposal_rejected', \(person.username), \(person.id)::bigint,
                           jsonb_build_object('proposal', l.id, 'reason', \(reason)::text)
                    FROM rejected r JOIN locked l ON l.id = r.proposal_id
                    RETURNING incident_id
                )
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
                """
            )
        } catch let error as PostgresError where error.isRestrictViolation {
            return .answered("proposal \(id) was confirmed")
        } catch let error as PostgresError where error.isUniqueViolation {
            return .answered("proposal \(id) was rejected")
        }
        guard let updated = try await proposals(number: number, id: id)?.first else { return .notFound }
        return .rejected(updated)
    }

    /// decision.proposals — an incident's proposals, oldest first (or the one with `id`), each
    /// with its answer; nil when there is no such incident.
    public func proposals(number: Int64, id: Int64? = nil) async throws -> [DecisionProposal]? {
        try await pool.withConnection { db in
            guard let incident = try await db.query("SELECT id FROM incidents WHERE number = \(number)").first?.decode("id", as: Int64.self) else {
                return nil
            }
            return try await db.query(
                """
                SELECT p.id, p.kind::text AS kind, p.target_service, p.target_model, p.from_version, p.to_version, p.rationale,
                       p.customer_impact, p.alternatives_considered, u.username AS proposed_by, p.proposed_at,
                       d.id AS decision_id, du.username AS confirmed_by, r.rejected_at, ru.username AS rejected_by, r.reason
                FROM decision_proposals p JOIN users u ON u.id = p.proposed_by
                LEFT JOIN decisions d ON d.proposal_id = p.id LEFT JOIN users du ON du.id = d.decided_by
                LEFT JOIN decision_proposal_rejections r ON r.proposal_id = p.id LEFT JOIN users ru ON ru.id = r.rejected_by
                WHERE p.incident_id = \(incident) AND (\(id)::bigint IS NULL OR p.id = \(id))
                ORDER BY p.id
                """
            ).map { row in
                DecisionProposal(
                    id: try row.decode("id"),
                    incident: IncidentRef.display(number),
                    kind: try row.decode("kind"),
                    target: DecisionTarget(
                        service: try row.decode("target_service"),
                        model: try row.decode("target_model"),
                        fromVersion: try row.decode("from_version"),
                        toVersion: try row.decode("to_version")
                    ),
                    rationale: try row.decode("rationale"),
                    customerImpact: try row.decode("customer_impact"),
                    alternativesConsidered: try row.decode("alternatives_considered"),
                    proposedBy: try row.decode("proposed_by"),
                    proposedAt: try row.decode("proposed_at"),
                    confirmedAs: try row.decode("decision_id"),
                    confirmedBy: try row.decode("confirmed_by"),
                    rejectedBy: try row.decode("rejected_by"),
                    rejectedAt: try row.decode("rejected_at"),
                    rejectionReason: try row.decode("reason")
                )
            }
        }
    }
}

extension Decision {
    init(row: PostgresRow, incident: String) throws {
        var execution: Execution?
        if let at = try row.decode("executed_at", as: Date?.self) {
            execution = Execution(by: try row.decode("executed_by_name"), at: at, note: try row.decode("execution_note"))
        }
        var outcome: Outcome?
        if let text = try row.decode("outcome", as: String?.self), let value = DecisionOutcome(rawValue: text) {
            outcome = Outcome(
                outcome: value,
                proposed: try row.decode("proposed", as: String?.self).flatMap(DecisionOutcome.init(rawValue:)),
                check: try row.decode("check_text"),
                confirmedBy: try row.decode("confirmed_by_name"),
                confirmedAt: try row.decode("confirmed_at"),
                note: try row.decode("outcome_note")
            )
        }
        self.init(
            id: try row.decode("id"),
            incident: incident,
            kind: try row.decode("kind_text"),
            target: DecisionTarget(
                service: try row.decode("target_service"),
                model: try row.decode("target_model"),
                fromVersion: try row.decode("from_version"),
                toVersion: try row.decode("to_version")
            ),
            rationale: try row.decode("rationale"),
            customerImpact: try row.decode("customer_impact"),
            alternativesConsidered: try row.decode("alternatives_considered"),
            decidedBy: try row.decode("decided_by_name"),
            decidedByRole: try row.decode("role_text"),
            decidedAt: try row.decode("decided_at"),
            verificationWindow: try row.decode("verification_window"),
            supersedes: try row.decode("supersedes"),
            supersededBy: try row.decode("superseded_by"),
            proposalId: try row.decode("proposal_id"),
            proposedBy: try row.decode("proposed_by_name"),
            late: try row.decode("late"),
            execution: execution,
            outcome: outcome,
            proposal: nil
        )
    }
}
