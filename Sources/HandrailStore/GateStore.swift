public import Foundation
public import HandrailCore
public import Postgres

/// A person's decision at a gate (or on its release, for a rollback).
public struct GateDecision: Sendable, Equatable, Codable {
    public var id: Int64
    public var gate: Int64?
    public var kind: GateDecisionKind
    public var decidedBy: String
    public var decidedByRole: Role
    public var rationale: String
    /// What the controller had last sent about the release when the person decided.
    public var guards: [String: String]
    public var alternativesConsidered: String?
    public var decidedAt: Date
}

/// What a canary controller said happened to a release (Flagger's event hook).
public struct ReleaseEvent: Sendable, Equatable, Codable {
    public var at: Date
    public var phase: String?
    public var eventType: String?
    public var message: String
}

/// An incident on a release's target (see `release_incidents`).
public struct LinkedIncident: Sendable, Equatable, Codable {
    public var number: Int64
    public var ref: String
    public var title: String
    public var state: String
    public var severity: String
}

/// One stage of a release that a controller asked about, and what Handrail answers.
public struct Gate: Sendable, Equatable, Codable {
    public var id: Int64
    public var release: ReleaseRef
    public var controller: String
    public var stage: GateStage
    /// Which traffic increase (1, 2, …); 1 for the other stages.
    public var step: Int
    public var openedAt: Date
    public var lastAskedAt: Date
    public var timesAsked: Int
    /// When the controller was first told "go".
    public var passedAt: Date?
    /// The controller's latest metadata about the release (the guards' values).
    public var metadata: [String: String]
    /// The runbook whose `rollback.decided_by` says who may decide.
    public var runbook: String?
    public var answer: GateAnswer
    public var decisions: [GateDecision] = []
    public var events: [ReleaseEvent] = []
    /// Incidents on the same target while the release was asked about (guard breaches).
    public var incidents: [LinkedIncident] = []
}

/// Canary gates: what controllers ask, what people decide, what Handrail answers. Every
/// answer is read from the database (`handrail_gate_answer`), so every replica answers a
/// gate the same way.
public struct GateStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    public typealias Person = DecisionStore.Person

    /// Who asks: the controller and its integration key, or a person (`manual`, no key).
    public struct Asker: Sendable {
        public var controller: String
        public var integration: Int?
        /// The key's name (the actor of what the controller puts on incidents' timelines),
        /// or the person's username.
        public var name: String
        public init(controller: String, integration: Int?, name: String) {
            self.controller = controller
            self.integration = integration
            self.name = name
        }
    }

    public enum AskResult: Sendable, Equatable {
        case answered(Gate)
        /// The runbook named for the release is not known (field `runbook`).
        case unknownRunbook(String)
    }

    /// gate.ask — records that the controller asked about `stage` of `release` (the gate
    /// is created by its first question; a traffic increase already answered "go" makes
    /// the next question the next increase's gate) and answers it. A "go" answered is
    /// remembered as the gate's `passed_at`.
    public func ask(
        _ release: ReleaseRef,
        stage: GateStage,
        metadata: [String: String],
        runbook: String?,
        waitLimit: Int? = nil,
        by asker: Asker
    ) async throws
        -> AskResult
    {
        let meta = try PostgresJSON(encoding: metadata)
        let id: Int64? = try await pool.withTransaction { tx in
            guard let releaseID = try await Self.release(release, runbook: runbook, by: asker, tx) else { return nil }
            try await Self.link(releaseID, tx)
            let gate: Int64 = try await tx.query(
                """
                WITH latest AS (
                    SELECT step, passed_at FROM gates WHERE release_id = \(releaseID) AND stage = \(stage.rawValue)::gate_stage
                    ORDER BY step DESC LIMIT 1
                )
                INSERT INTO gates (release_id, stage, step, metadata, wait_limit_seconds)
                SELECT \(releaseID), \(stage.rawValue)::gate_stage, coalesce((
                        SELECT CASE WHEN passed_at IS NOT NULL AND \(stage.rawValue) = 'confirm-traffic-increase' THEN step + 1 ELSE step END
                        FROM latest), 1), \(meta)::jsonb, coalesce(\(waitLimit)::integer, 7200)
                ON CONFLICT (release_id, stage, step) DO UPDATE
                    SET times_asked = gates.times_asked + 1, last_asked_at = now(), metadata = excluded.metadata,
                        wait_limit_seconds = excluded.wait_limit_seconds
                RETURNING id
                """
            )[0].decode("id")
            try await tx.execute(
                "UPDATE gates SET passed_at = now() WHERE id = \(gate) AND passed_at IS NULL AND handrail_gate_answer(id) = 'go'"
            )
            return gate
        }
        guard let id else { return .unknownRunbook(runbook ?? "") }
        guard let gate = try await gates(id: id).first else { throw PostgresError(kind: .decoding, message: "gate \(id) vanished") }
        return .answered(gate)
    }

    /// The release's id, made by its first call (pinning the runbook's current version);
    /// nil when the named runbook is not known.
    static func release(_ r: ReleaseRef, runbook: String?, by asker: Asker, _ tx: PostgresConnection) async throws -> Int64? {
        for _ in 0..<2 {
            let rows = try await tx.query(
                """
                WITH adopted AS (
                    -- A release a person opened: the controller that asks about it takes it over.
                    UPDATE releases SET created_by_integration_id = \(asker.integration)::bigint, controller = \(asker.controller)
                    WHERE namespace = \(r.namespace) AND name = \(r.name) AND checksum = \(r.checksum)
                      AND created_by_integration_id IS NULL AND \(asker.integration)::bigint IS NOT NULL
                ), found AS (
                    SELECT id FROM releases WHERE namespace = \(r.namespace) AND name = \(r.name) AND checksum = \(r.checksum)
                ), book AS (
                    SELECT id, current_version FROM runbooks WHERE id = \(runbook)
                ), made AS (
                    INSERT INTO releases (namespace, name, checksum, controller, runbook_id, runbook_version, created_by_integration_id, created_by)
                    SELECT \(r.namespace), \(r.name), \(r.checksum), \(asker.controller), b.id, b.current_version, \(asker.integration)::bigint,
                           \(asker.name)
                    FROM (SELECT 1) one LEFT JOIN book b ON true
                    WHERE NOT EXISTS (SELECT 1 FROM found) AND (\(runbook)::text IS NULL OR EXISTS (SELECT 1 FROM book))
                    ON CONFLICT (namespace, name, checksum) DO NOTHING
                    RETURNING id
                )
                SELECT id, \(runbook)::text IS NULL OR EXISTS (SELECT 1 FROM book) AS known FROM found UNION ALL SELECT id, true FROM made
                UNION ALL SELECT NULL, false WHERE \(runbook)::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM book)
                """
            )
            if let row = rows.first {
                guard try row.decode("known", as: Bool.self) else { return nil }
                return try row.decode("id", as: Int64.self)
            }
            // Another replica made it between our look and our insert: look again.
        }
        throw PostgresError(kind: .decoding, message: "release \(r.target)@\(r.checksum) could not be made")
    }

    /// Whether someone decided to roll the release back, at a gate or on an incident on its
    /// target (the rollback hook's question); links the target's open incidents first.
    public func rollbackDecided(_ r: ReleaseRef) async throws -> Bool {
        try await pool.withTransaction { tx in
            guard
                let id = try await tx.query(
                    "SELECT id FROM releases WHERE namespace = \(r.namespace) AND name = \(r.name) AND checksum = \(r.checksum)"
                ).first?.decode("id", as: Int64.self)
            else { return false }
            try await Self.link(id, tx)
            return try await tx.query("SELECT handrail_release_rolled_back(\(id)) AS rolled_back")[0].decode("rolled_back")
        }
    }

    /// Links the open incidents on the release's target: their labels name it as rollout,
    /// canary, model or service, in its namespace when they name one. Reads open incidents
    /// only (`incidents_open_newest`), once per controller call.
    static func link(_ release: Int64, _ tx: PostgresConnection) async throws {
        try await tx.execute(
            """
            INSERT INTO release_incidents (release_id, incident_id)
            SELECT r.id, i.id FROM releases r JOIN incidents i ON i.state <> 'resolved'
                AND r.name IN (i.labels->>'rollout', i.labels->>'canary', i.labels->>'model', i.labels->>'service')
                AND coalesce(i.labels->>'namespace', r.namespace) = r.namespace
            WHERE r.id = \(release)
            ON CONFLICT DO NOTHING
            """
        )
    }

    /// release.event — what the controller said happened, on the release's timeline and,
    /// as a change, on the timeline of every open incident on its target.
    /// - Returns: false when the named runbook is not known (nothing is stored).
    public func event(
        _ r: ReleaseRef,
        phase: String?,
        type: String?,
        message: String,
        sentAt: Date?,
        runbook: String?,
        by asker: Asker
    )
        async throws -> Bool
    {
        let summary = "\(asker.controller == "argo" ? "Argo Rollouts" : "Flagger"): \(message) (\(r.target) at \(r.checksum))"
        return try await pool.withTransaction { tx in
            guard let id = try await Self.release(r, runbook: runbook, by: asker, tx) else { return false }
            try await Self.link(id, tx)
            try await tx.execute(
                """
                WITH stored AS (
                    INSERT INTO release_events (release_id, phase, event_type, message, sent_at)
                    VALUES (\(id), \(phase), \(type), \(message), \(sentAt))
                ), event AS (
                    INSERT INTO incident_events (incident_id, type, actor, actor_integration_id, data)
                    SELECT i.id, 'change', \(asker.name), \(asker.integration)::bigint,
                           jsonb_build_object('summary', \(summary)::text, 'release', \(id)::bigint, 'phase', \(phase)::text)
                    FROM release_incidents ri JOIN incidents i ON i.id = ri.incident_id AND i.state <> 'resolved'
                    WHERE ri.release_id = \(id)
                    RETURNING incident_id
                )
                SELECT count(*) FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
                """
            )
            return true
        }
    }

    public enum DecideResult: Sendable, Equatable {
        case recorded(Gate)
        case notFound
        /// The release's runbook does not let this person decide (why).
        case refused(String)
    }

    /// gate.decide — checks the release's runbook (`rollback.decided_by`; `rollback.allowed`
    /// for a rollback) for this person, then records the decision with the guards' values
    /// the gate last had.
    public func decide(
        gate id: Int64,
        kind: GateDecisionKind,
        rationale: String,
        alternatives: String?,
        by person: Person
    ) async throws
        -> DecideResult
    {
        guard let (policy, runbook) = try await policy(gate: id) else { return .notFound }
        let whose = runbook.map { "runbook \($0)" } ?? "the default policy (no runbook named for this release)"
        if kind == .rollback && !policy.allowed { return .refused("\(whose) does not allow rollback") }
        if person.role < policy.minimumRole {
            return .refused("\(whose) lets \(policy.minimumRole.rawValue) and up decide at this gate; you are \(person.role.rawValue)")
        }
        try await pool.execute(
            """
            INSERT INTO gate_decisions (release_id, gate_id, kind, decided_by, decided_by_role, rationale, guards, alternatives_considered)
            SELECT release_id, id, \(kind.rawValue)::gate_decision_kind, \(person.id), \(person.role.rawValue)::user_role, \(rationale), metadata,
                   \(alternatives)
            FROM gates WHERE id = \(id)
            """
        )
        guard let gate = try await gates(id: id).first else { return .notFound }
        return .recorded(gate)
    }

    /// A gate that waited past its limit with nobody deciding, or one whose overdue alert
    /// can clear: what the alert about it says, and the key it comes from.
    public struct Overdue: Sendable, Equatable {
        public var gate: Int64
        public var release: ReleaseRef
        public var stage: GateStage
        public var step: Int
        public var waited: Int
        public var integration: Integration
    }

    /// Gates to raise an overdue alert for (waiting past their limit, no decision on them,
    /// not raised yet) and gates whose alert may clear (someone decided, or the release
    /// was rolled back). The controller's key must still be live.
    public func overdue(limit: Int = 20) async throws -> (raise: [Overdue], clear: [Overdue]) {
        let rows = try await pool.query(
            """
            SELECT g.id, g.stage::text AS stage, g.step, r.namespace, r.name, r.checksum, k.id AS key_id, k.name AS key_name,
                   extract(epoch FROM now() - g.opened_at)::bigint AS waited, g.overdue_raised_at IS NULL AS raise
            FROM gates g JOIN releases r ON r.id = g.release_id
            JOIN integration_keys k ON k.id = r.created_by_integration_id AND k.revoked_at IS NULL
            WHERE (g.passed_at IS NULL AND g.overdue_raised_at IS NULL
                   AND g.opened_at + make_interval(secs => g.wait_limit_seconds) <= now()
                   AND NOT EXISTS (SELECT 1 FROM gate_decisions d WHERE d.gate_id = g.id)
                   AND handrail_gate_answer(g.id) = 'wait')
               OR (g.overdue_raised_at IS NOT NULL AND g.overdue_cleared_at IS NULL
                   AND (EXISTS (SELECT 1 FROM gate_decisions d WHERE d.gate_id = g.id) OR handrail_gate_answer(g.id) <> 'wait'))
            ORDER BY g.id LIMIT \(limit)
            """
        )
        var raise: [Overdue] = []
        var clear: [Overdue] = []
        for row in rows {
            let o = Overdue(
                gate: try row.decode("id"),
                release: ReleaseRef(namespace: try row.decode("namespace"), name: try row.decode("name"), checksum: try row.decode("checksum")),
                stage: try GateStage.parse(try row.decode("stage")),
                step: try row.decode("step"),
                waited: Int(try row.decode("waited", as: Int64.self)),
                integration: Integration(id: try row.decode("key_id"), name: try row.decode("key_name"), kind: .canary, requireSignature: false)
            )
            if try row.decode("raise", as: Bool.self) { raise.append(o) } else { clear.append(o) }
        }
        return (raise, clear)
    }

    /// Remembers that the gate's overdue alert was raised (`cleared` false) or cleared.
    public func markOverdue(gate id: Int64, cleared: Bool) async throws {
        try await pool.execute(
            """
            UPDATE gates SET overdue_raised_at = CASE WHEN \(cleared) THEN overdue_raised_at ELSE coalesce(overdue_raised_at, now()) END,
                             overdue_cleared_at = CASE WHEN \(cleared) THEN coalesce(overdue_cleared_at, now()) END
            WHERE id = \(id)
            """
        )
    }

    /// Who may decide at a gate: its release's runbook's `rollback` policy (the pinned
    /// version), and the runbook's id; nil when there is no such gate.
    public func policy(gate id: Int64) async throws -> (RollbackPolicy, String?)? {
        guard
            let row = try await pool.query(
                """
                SELECT r.runbook_id, v.definition->'rollback' AS rollback
                FROM gates g JOIN releases r ON r.id = g.release_id
                LEFT JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.runbook_version
                WHERE g.id = \(id)
                """
            ).first
        else { return nil }
        let policy = try row.decode("rollback", as: PostgresJSON?.self)?.decode(as: RollbackPolicy.self) ?? RollbackPolicy()
        return (policy, try row.decode("runbook_id", as: String?.self))
    }

    /// Gates with their releases: one (`id`), or the ones still waiting for a person (no
    /// go and no rollback; oldest first), or the newest gate of each release linked to an
    /// incident (by number), or all, newest first (at most 100).
    public func gates(id: Int64? = nil, waitingOnly: Bool = false, incident number: Int64? = nil) async throws -> [Gate] {
        let rows = try await pool.query(
            """
            SELECT g.id, r.namespace, r.name, r.checksum, r.controller, g.stage::text AS stage, g.step, g.opened_at, g.last_asked_at,
                   g.times_asked, g.passed_at, g.metadata, r.runbook_id, handrail_gate_answer(g.id) AS answer, g.release_id
            FROM gates g JOIN releases r ON r.id = g.release_id
            WHERE (\(id)::bigint IS NULL OR g.id = \(id))
              AND (\(number)::bigint IS NULL OR g.id = (SELECT max(l.id) FROM gates l WHERE l.release_id = g.release_id)
                   AND g.release_id IN (SELECT ri.release_id FROM release_incidents ri JOIN incidents i ON i.id = ri.incident_id
                                        WHERE i.number = \(number)))
              AND (NOT \(waitingOnly) OR (g.passed_at IS NULL AND handrail_gate_answer(g.id) = 'wait'))
            ORDER BY CASE WHEN \(waitingOnly) THEN g.opened_at END, g.id DESC
            LIMIT 100
            """
        )
        var gates: [Gate] = []
        for row in rows {
            var gate = Gate(
                id: try row.decode("id"),
                release: ReleaseRef(namespace: try row.decode("namespace"), name: try row.decode("name"), checksum: try row.decode("checksum")),
                controller: try row.decode("controller"),
                stage: try GateStage.parse(try row.decode("stage")),
                step: try row.decode("step"),
                openedAt: try row.decode("opened_at"),
                lastAskedAt: try row.decode("last_asked_at"),
                timesAsked: try row.decode("times_asked"),
                passedAt: try row.decode("passed_at"),
                metadata: try row.decode("metadata", as: PostgresJSON.self).decode(as: [String: String].self),
                runbook: try row.decode("runbook_id"),
                answer: GateAnswer(rawValue: try row.decode("answer")) ?? .wait
            )
            if id != nil {
                let release: Int64 = try row.decode("release_id")
                gate.decisions = try await decisions(release: release)
                gate.events = try await events(release: release)
                gate.incidents = try await incidents(release: release)
            }
            gates.append(gate)
        }
        return gates
    }

    /// A decision at a gate of a release linked to an incident, for its postmortem.
    public struct RolloutDecision: Sendable, Equatable {
        public var release: ReleaseRef
        /// "confirm-traffic-increase #2".
        public var stage: String
        public var decision: GateDecision
    }

    /// Every gate decision on the releases linked to the incident (by number), oldest first.
    public func decisions(incident number: Int64) async throws -> [RolloutDecision] {
        try await pool.query(
            """
            SELECT r.namespace, r.name, r.checksum, g.stage::text AS stage, g.step,
                   d.id, d.gate_id, d.kind::text AS kind, u.username, d.decided_by_role::text AS role, d.rationale, d.guards,
                   d.alternatives_considered, d.decided_at
            FROM incidents i JOIN release_incidents ri ON ri.incident_id = i.id
            JOIN releases r ON r.id = ri.release_id
            JOIN gate_decisions d ON d.release_id = r.id
            JOIN gates g ON g.id = d.gate_id
            JOIN users u ON u.id = d.decided_by
            WHERE i.number = \(number)
            ORDER BY d.decided_at, d.id
            LIMIT 200
            """
        ).map { row in
            let stage = try GateStage.parse(try row.decode("stage"))
            let step: Int = try row.decode("step")
            return RolloutDecision(
                release: ReleaseRef(namespace: try row.decode("namespace"), name: try row.decode("name"), checksum: try row.decode("checksum")),
                stage: stage.rawValue + (stage == .confirmTrafficIncrease ? " #\(step)" : ""),
                decision: try Self.decision(row)
            )
        }
    }

    static func decision(_ row: PostgresRow) throws -> GateDecision {
        GateDecision(
            id: try row.decode("id"),
            gate: try row.decode("gate_id"),
            kind: try GateDecisionKind.parse(try row.decode("kind")),
            decidedBy: try row.decode("username"),
            decidedByRole: try Role.parse(try row.decode("role")),
            rationale: try row.decode("rationale"),
            guards: try row.decode("guards", as: PostgresJSON.self).decode(as: [String: String].self),
            alternativesConsidered: try row.decode("alternatives_considered"),
            decidedAt: try row.decode("decided_at")
        )
    }

    /// Every decision on a release, oldest first.
    func decisions(release: Int64) async throws -> [GateDecision] {
        try await pool.query(
            """
            SELECT d.id, d.gate_id, d.kind::text AS kind, u.username, d.decided_by_role::text AS role, d.rationale, d.guards,
                   d.alternatives_considered, d.decided_at
            FROM gate_decisions d JOIN users u ON u.id = d.decided_by WHERE d.release_id = \(release) ORDER BY d.id
            """
        ).map(Self.decision)
    }

    /// The incidents linked to a release, newest first.
    func incidents(release: Int64) async throws -> [LinkedIncident] {
        try await pool.query(
            """
            SELECT i.number, i.title, i.state::text AS state, i.severity FROM release_incidents ri JOIN incidents i ON i.id = ri.incident_id
            WHERE ri.release_id = \(release) ORDER BY i.number DESC LIMIT 20
            """
        ).map { row in
            let number: Int64 = try row.decode("number")
            return LinkedIncident(
                number: number,
                ref: IncidentRef.display(number),
                title: try row.decode("title"),
                state: try row.decode("state"),
                severity: try row.decode("severity")
            )
        }
    }

    /// The release's newest 100 events, newest first.
    func events(release: Int64) async throws -> [ReleaseEvent] {
        try await pool.query(
            """
            SELECT coalesce(sent_at, at) AS at, phase, event_type, message FROM release_events
            WHERE release_id = \(release) ORDER BY id DESC LIMIT 100
            """
        ).map { row in
            ReleaseEvent(
                at: try row.decode("at"),
                phase: try row.decode("phase"),
                eventType: try row.decode("event_type"),
                message: try row.decode("message")
            )
        }
    }
}
