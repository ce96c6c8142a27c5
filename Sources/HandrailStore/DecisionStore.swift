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
        case verificationWindow, supersedes, supersededBy, execution, outcome, proposal, status
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
        try c.encodeIfPresent(execution, forKey: .execution)
        try c.encodeIfPresent(outcome, forKey: .outcome)
        try c.encodeIfPresent(proposal, forKey: .proposal)
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
    }

    /// The incident's id and the rollback policy of its pinned runbook version.
    func policy(number: Int64) async throws -> (id: Int64, runbook: String?, policy: RollbackPolicy)? {
        guard
            let row = try await pool.query(
                """
                SELECT i.id, i.runbook_id, v.definition->'rollback' AS rollback
                FROM incidents i LEFT JOIN runbook_versions v ON v.runbook_id = i.runbook_id AND v.version = i.runbook_version
                WHERE i.number = \(number)
                """
            ).first
        else { return nil }
        let policy = try row.decode("rollback", as: PostgresJSON?.self)?.decode(as: RollbackPolicy.self) ?? RollbackPolicy()
        return (try row.decode("id"), try row.decode("runbook_id"), policy)
    }

    /// decision.record — checks the runbook's policy for this person, then stores the decision
    /// and its timeline event.
    public func record(number: Int64, _ d: NewDecision, by person: Person) async throws -> RecordResult {
        guard let incident = try await policy(number: number) else { return .notFound }
        if let reason = incident.policy.refusal(role: person.role, kind: d.kind, runbook: incident.runbook) { return .refused(reason) }
        let rows: PostgresRows
        do {
            rows = try await pool.query(
                """
                WITH decided AS (
                    INSERT INTO decisions (incident_id, kind, target_service, target_model, from_version, to_version, rationale,
                                           customer_impact, alternatives_considered, decided_by, decided_by_role, verification_window, supersedes)
                    VALUES (\(incident.id), \(d.kind.rawValue)::decision_kind, \(d.target.service), \(d.target.model), \(d.target.fromVersion),
                            \(d.target.toVersion), \(d.rationale), \(d.customerImpact), \(d.alternativesConsidered), \(person.id),
                            \(person.role.rawValue)::user_role, \(incident.policy.verificationWindow), \(d.supersedes))
                    RETURNING id, incident_id
                ), event AS (
                    INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                    SELECT incident_id, 'decision_recorded', \(person.username), \(person.id)::bigint, jsonb_strip_nulls(jsonb_build_object(
                        'decision', id, 'kind', \(d.kind.rawValue)::text, 'service', \(d.target.service)::text, 'model', \(d.target.model)::text,
                        'from_version', \(d.target.fromVersion)::text, 'to_version', \(d.target.toVersion)::text,
                        'rationale', \(d.rationale)::text, 'supersedes', \(d.supersedes)::bigint))
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
        } catch let error as PostgresError where error.isUniqueViolation {
            let by = try await pool.query("SELECT id FROM decisions WHERE supersedes = \(d.supersedes)").first?.decode("id", as: Int64.self)
            return .alreadySuperseded(by: by)
        }
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
                       o.outcome, o.proposed, o.check_text, o.confirmed_at, o.note AS outcome_note, ou.username AS confirmed_by_name
                FROM decisions d JOIN users u ON u.id = d.decided_by
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
            execution: execution,
            outcome: outcome,
            proposal: nil
        )
    }
}
