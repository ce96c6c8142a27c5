public import Foundation
public import HandrailCore
public import Postgres

/// A person's way to be reached, as pages and answers show it (the address only as `hint`).
public struct ContactMethod: Sendable, Equatable, Codable {
    public var id: Int64
    public var user: String
    public var kind: DestinationKind
    public var label: String
    public var hint: String
    public var verified: Bool
    public var createdAt: Date
}

/// A rotation's team destination, as pages and answers show it.
public struct RotationChannel: Sendable, Equatable, Codable {
    public var id: Int64
    public var rotation: String
    public var kind: DestinationKind
    public var label: String
    public var hint: String
    public var createdAt: Date
}

/// One step of a rotation's chain: after `delaySeconds` without acknowledgement (from the
/// opening or reopening), notify `target`.
public struct EscalationStep: Sendable, Equatable, Codable {
    public enum Target: String, Sendable, Codable, CaseIterable {
        /// Who is on call when the step fires.
        case onCall = "on_call"
        /// Whoever has the shift after the on-call's.
        case next
        /// A named person.
        case user
        /// The rotation's members who are leads (or managers or admins).
        case leads
    }

    public var delaySeconds: Int
    public var target: Target
    /// The person, for `user`.
    public var user: String?

    public init(delaySeconds: Int, target: Target, user: String? = nil) {
        self.delaySeconds = delaySeconds
        self.target = target
        self.user = user
    }
}

extension EscalationStep {
    /// Who this step reaches at `t`: the on-call, whoever has the shift after theirs, the
    /// named person, or `leads` (the rotation's members who are leads and up, read by the caller).
    public func people(_ rotation: Rotation, at t: Date, leads: [String]) -> [String] {
        switch target {
        case .onCall: return rotation.onCall(at: t).user.map { [$0] } ?? []
        case .next:
            let k = rotation.shiftIndex(at: t) ?? -1
            return rotation.onCall(at: rotation.shiftStart(k + 1)).user.map { [$0] } ?? []
        case .user: return user.map { [$0] } ?? []
        case .leads: return leads
        }
    }
}

/// A rotation's escalation: its steps in order, and the reminder interval for acknowledged
/// incidents that stay unresolved (nil: none).
public struct EscalationPolicy: Sendable, Equatable, Codable {
    public var steps: [EscalationStep]
    public var renotifySeconds: Int?

    public init(steps: [EscalationStep], renotifySeconds: Int?) {
        self.steps = steps
        self.renotifySeconds = renotifySeconds
    }

    /// No steps configured: the on-call, at once.
    public var effectiveSteps: [EscalationStep] { steps.isEmpty ? [EscalationStep(delaySeconds: 0, target: .onCall)] : steps }
}

/// A message to send, claimed by one worker until `leaseUntil`.
public struct ClaimedNotification: Sendable {
    public var id: Int64
    public var event: NotificationEvent
    public var kind: DestinationKind
    public var address: String?
    public var secret: String?
    public var recipient: String
    /// To a person's contact method (else a rotation's channel).
    public var toPerson: Bool
    public var incidentNumber: Int64?
    public var handoffID: Int64?
    /// The causing timeline event's data, with its actor.
    public var eventData: [String: String]
    public var detail: [String: String]
    public var attempts: Int
    public var createdAt: Date
    /// Made at the first attempt; the same bytes at every retry.
    public var payload: String?
    /// What the message says about its incident, read with the claim (only while there is
    /// no payload yet): one statement per batch instead of one more per message.
    public var facts: NotificationStore.IncidentFacts?
}

/// A due step of an incident's chain, claimed by one worker.
public struct ClaimedEscalation: Sendable {
    public var id: Int64
    public var incidentID: Int64
    public var incidentNumber: Int64
    public var rotation: String?
    public var kind: EscalationKind
    public var position: Int
    public var chainStartedAt: Date
    /// Still unacknowledged (for steps) or still unresolved (for reminders).
    public var live: Bool
    public var owner: String?
}

/// A notification as an incident's timeline and the admins' list show it.
public struct NotificationRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var event: NotificationEvent
    public var incident: Int64?
    public var recipient: String
    public var kind: DestinationKind
    public var hint: String
    public var state: NotificationState
    public var attempts: Int
    public var createdAt: Date
    public var finishedAt: Date?
    public var lastError: String?
}

/// How one attempt went.
public struct DeliveryAttempt: Sendable {
    public enum Outcome: String, Sendable { case delivered, retry, failed }
    public var outcome: Outcome
    public var status: Int?
    public var reply: String?
    public var error: String?
    public var latencyMS: Int
    /// For `retry`: when to try again.
    public var retryAt: Date?

    public init(outcome: Outcome, status: Int?, reply: String?, error: String?, latencyMS: Int, retryAt: Date?) {
        self.outcome = outcome
        self.status = status
        self.reply = reply
        self.error = error
        self.latencyMS = latencyMS
        self.retryAt = retryAt
    }
}

/// All SQL of reaching people: contact methods, channels, escalation policies, the outbox
/// and its attempts, escalation rows. Notifications of incident events are written by the
/// database itself, in the event's transaction (`handrail_notify_event`, migration 0011).
public struct NotificationStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    // MARK: contact methods

    static let methodColumns: StaticString = """
        c.id, u.username, c.kind::text AS kind, c.label, c.hint, c.verified_at IS NOT NULL AS verified, c.created_at
        """

    /// contact.add — a person's new contact method. E-mail waits for its code (`codeHash`),
    /// and the code goes out at once, in the same statement; webhooks are usable at once.
    public func addContactMethod(
        username: String,
        destination: Destination,
        label: String,
        secret: String?,
        codeHash: String?,
        code: String?
    ) async throws -> ContactMethod? {
        try await pool.query(
            """
            WITH added AS (
                INSERT INTO contact_methods (user_id, kind, label, address, secret, hint, verified_at, verify_code_hash, verify_expires_at)
                SELECT u.id, \(destination.kind)::destination_kind, \(label), \(destination.address), \(secret), \(destination.hint),
                       CASE WHEN \(codeHash)::text IS NULL THEN now() END, \(codeHash), CASE WHEN \(codeHash)::text IS NOT NULL THEN now() + interval '1 day' END
                FROM users u WHERE u.username = \(username) AND u.disabled_at IS NULL
                RETURNING *
            ), code AS (
                INSERT INTO notifications (event, contact_method_id, recipient, kind, hint, detail)
                SELECT 'verify', a.id, \(username), a.kind, a.hint, jsonb_build_object('code', \(code)::text) FROM added a
                WHERE \(code)::text IS NOT NULL
            )
            SELECT \(sql: Self.methodColumns) FROM added c JOIN users u ON u.id = c.user_id
            """
        ).first.map(ContactMethod.init(row:))
    }

    public func contactMethods(username: String) async throws -> [ContactMethod] {
        try await pool.query(
            """
            SELECT \(sql: Self.methodColumns) FROM contact_methods c JOIN users u ON u.id = c.user_id
            WHERE u.username = \(username) ORDER BY c.id
            """
        ).map(ContactMethod.init(row:))
    }

    /// contact.remove — true when the person had it.
    public func removeContactMethod(username: String, id: Int64) async throws -> Bool {
        try await pool.execute(
            "DELETE FROM contact_methods c USING users u WHERE c.id = \(id) AND c.user_id = u.id AND u.username = \(username)"
        ) > 0
    }

    public enum VerifyResult: Sendable, Equatable { case verified, wrongCode, expired, notFound, alreadyVerified }

    /// contact.verify — the code e-mailed at creation, within a day; five wrong codes end it
    /// (a six-digit code is not to be found by trying).
    public func verifyContactMethod(username: String, id: Int64, codeHash: String) async throws -> VerifyResult {
        guard
            let row = try await pool.query(
                """
                WITH target AS (
                    SELECT c.id, c.verified_at, c.verify_code_hash, c.verify_expires_at, c.verify_failures
                    FROM contact_methods c JOIN users u ON u.id = c.user_id
                    WHERE c.id = \(id) AND u.username = \(username) FOR UPDATE OF c
                ), judged AS (
                    SELECT t.*, t.verified_at IS NULL AND t.verify_expires_at > now() AND t.verify_failures < 5 AS usable,
                           t.verify_code_hash = \(codeHash) AS right_code
                    FROM target t
                ), done AS (
                    UPDATE contact_methods c
                    SET verified_at = CASE WHEN j.right_code THEN now() END,
                        verify_code_hash = CASE WHEN j.right_code THEN NULL ELSE c.verify_code_hash END,
                        verify_expires_at = CASE WHEN j.right_code THEN NULL ELSE c.verify_expires_at END,
                        verify_failures = c.verify_failures + CASE WHEN j.right_code THEN 0 ELSE 1 END
                    FROM judged j WHERE c.id = j.id AND j.usable
                    RETURNING c.verified_at IS NOT NULL AS verified
                )
                SELECT j.verified_at IS NOT NULL AS already, NOT j.usable AS expired, coalesce((SELECT verified FROM done), false) AS verified
                FROM judged j
                """
            ).first
        else { return .notFound }
        if try row.decode("already", as: Bool.self) { return .alreadyVerified }
        if try row.decode("verified", as: Bool.self) { return .verified }
        if try row.decode("expired", as: Bool.self) { return .expired }
        return .wrongCode
    }

    /// contact.test — a test message to one of the person's methods; nil when they have no
    /// such method. Unverified e-mail gets no test (the code is what it gets).
    public func testContactMethod(username: String, id: Int64) async throws -> Int64? {
        try await pool.query(
            """
            INSERT INTO notifications (event, contact_method_id, recipient, kind, hint)
            SELECT 'test', c.id, u.username, c.kind, c.hint FROM contact_methods c JOIN users u ON u.id = c.user_id
            WHERE c.id = \(id) AND u.username = \(username) AND c.verified_at IS NOT NULL
            RETURNING id
            """
        ).first?.decode("id")
    }

    // MARK: channels

    static let channelColumns: StaticString = "c.id, r.name AS rotation, c.kind::text AS kind, c.label, c.hint, c.created_at"

    /// channel.add — nil when there is no such rotation.
    public func addChannel(rotation: String, destination: Destination, label: String, secret: String?) async throws -> RotationChannel? {
        try await pool.query(
            """
            WITH added AS (
                INSERT INTO rotation_channels (rotation_id, kind, label, address, secret, hint)
                SELECT r.id, \(destination.kind)::destination_kind, \(label), \(destination.address), \(secret), \(destination.hint)
                FROM rotations r WHERE r.name = \(rotation)
                RETURNING *
            )
            SELECT \(sql: Self.channelColumns) FROM added c JOIN rotations r ON r.id = c.rotation_id
            """
        ).first.map(RotationChannel.init(row:))
    }

    public func channels(rotation: String) async throws -> [RotationChannel] {
        try await pool.query(
            """
            SELECT \(sql: Self.channelColumns) FROM rotation_channels c JOIN rotations r ON r.id = c.rotation_id
            WHERE r.name = \(rotation) ORDER BY c.id
            """
        ).map(RotationChannel.init(row:))
    }

    public func removeChannel(rotation: String, id: Int64) async throws -> Bool {
        try await pool.execute(
            "DELETE FROM rotation_channels c USING rotations r WHERE c.id = \(id) AND c.rotation_id = r.id AND r.name = \(rotation)"
        ) > 0
    }

    /// channel.test — nil when the rotation has no such channel.
    public func testChannel(rotation: String, id: Int64) async throws -> Int64? {
        try await pool.query(
            """
            INSERT INTO notifications (event, channel_id, recipient, kind, hint)
            SELECT 'test', c.id, c.label, c.kind, c.hint FROM rotation_channels c JOIN rotations r ON r.id = c.rotation_id
            WHERE c.id = \(id) AND r.name = \(rotation)
            RETURNING id
            """
        ).first?.decode("id")
    }

    // MARK: escalation policies

    /// escalation.show — nil when there is no such rotation.
    public func escalation(rotation: String) async throws -> EscalationPolicy? {
        guard let row = try await pool.query("SELECT id, renotify_seconds FROM rotations WHERE name = \(rotation)").first else { return nil }
        let id: Int64 = try row.decode("id")
        let steps = try await pool.query(
            """
            SELECT s.delay_seconds, s.target::text AS target, u.username FROM escalation_steps s LEFT JOIN users u ON u.id = s.user_id
            WHERE s.rotation_id = \(id) ORDER BY s.position
            """
        ).map { row in
            EscalationStep(delaySeconds: try row.decode("delay_seconds"), target: try row.decode("target"), user: try row.decode("username"))
        }
        return EscalationPolicy(steps: steps, renotifySeconds: try row.decode("renotify_seconds"))
    }

    /// escalation.set — replaces the steps and the reminder interval in one transaction; nil
    /// when there is no such rotation.
    /// - Throws: `ValidationError` naming `steps[i].user` for a person who is not an enabled user.
    public func setEscalation(rotation: String, _ policy: EscalationPolicy) async throws -> EscalationPolicy? {
        try await pool.withTransaction { tx -> EscalationPolicy? in
            guard
                let row = try await tx.query(
                    "UPDATE rotations SET renotify_seconds = \(policy.renotifySeconds), updated_at = now() WHERE name = \(rotation) RETURNING id"
                ).first
            else { return nil }
            let id: Int64 = try row.decode("id")
            _ = try await tx.execute("DELETE FROM escalation_steps WHERE rotation_id = \(id)")
            for (n, step) in policy.steps.enumerated() {
                let inserted = try await tx.execute(
                    """
                    INSERT INTO escalation_steps (rotation_id, position, delay_seconds, target, user_id)
                    SELECT \(id), \(n), \(step.delaySeconds), \(step.target.rawValue)::escalation_target, u.id
                    FROM (SELECT 1) one LEFT JOIN users u ON u.username = \(step.user) AND u.disabled_at IS NULL
                    WHERE \(step.user)::text IS NULL OR u.id IS NOT NULL
                    """
                )
                if inserted == 0 {
                    throw ValidationError(field: "steps[\(n)].user", message: "no enabled user \((step.user ?? "").debugDescription)")
                }
            }
            return policy
        }
    }

    /// The step an open, unacknowledged incident escalates by next, and when.
    public func pendingEscalation(incident number: Int64) async throws -> (position: Int, kind: EscalationKind, due: Date)? {
        guard
            let row = try await pool.query(
                """
                SELECT e.position, e.kind, e.due_at FROM escalations e JOIN incidents i ON i.id = e.incident_id
                WHERE i.number = \(number) AND e.state = 'pending'
                """
            ).first
        else { return nil }
        return (try row.decode("position"), try row.decode("kind"), try row.decode("due_at"))
    }

    // MARK: the workers

    /// Claims up to `limit` due notifications for `lease` seconds: no other worker on any
    /// replica gets them meanwhile (SKIP LOCKED), and one whose worker died is due again
    /// when its lease ends.
    public func claimNotifications(limit: Int, lease: Int) async throws -> [ClaimedNotification] {
        try await pool.query(
            """
            WITH claimed AS (
                UPDATE notifications n SET lease_until = clock_timestamp() + make_interval(secs => \(lease))
                WHERE n.id IN (SELECT id FROM notifications
                               WHERE state = 'pending' AND due_at <= clock_timestamp() AND (lease_until IS NULL OR lease_until < clock_timestamp())
                               ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING n.*
            )
            SELECT n.id, n.event, n.kind::text AS kind, coalesce(m.address, c.address) AS address, coalesce(m.secret, c.secret) AS secret,
                   n.recipient, n.contact_method_id IS NOT NULL AS to_person, i.number, n.handoff_id, n.attempts, n.created_at, n.payload::text AS payload, n.detail::text AS detail,
                   CASE WHEN e.id IS NULL THEN '{}' ELSE (e.data || jsonb_build_object('actor', e.actor))::text END AS event_data,
                   f.title, f.severity, f.state, f.owner, f.value, f.labels, f.runbook_id, f.runbook_version, f.marked
            FROM claimed n
            LEFT JOIN contact_methods m ON m.id = n.contact_method_id
            LEFT JOIN rotation_channels c ON c.id = n.channel_id
            LEFT JOIN incidents i ON i.id = n.incident_id
            LEFT JOIN incident_events e ON e.id = n.incident_event_id
            LEFT JOIN LATERAL (
                -- What the message says about the incident (only until the payload is made): title,
                -- severity, state, owner, the first firing alert's value and labels, the pinned
                -- runbook version, and the steps whose latest mark stands (not undone).
                SELECT i.title, i.severity, i.state::text AS state, i.runbook_id, i.runbook_version,
                       (SELECT u.username FROM incident_roles r JOIN users u ON u.id = r.user_id
                        WHERE r.incident_id = i.id AND r.role = 'owner') AS owner,
                       a.value, coalesce(a.labels, i.labels)::text AS labels,
                       ARRAY(SELECT s.step FROM (SELECT DISTINCT ON (step) step, outcome FROM incident_step_marks
                                                 WHERE incident_id = i.id ORDER BY step, id DESC) s WHERE s.outcome <> 'undone') AS marked
                FROM (SELECT) one
                LEFT JOIN LATERAL (SELECT value, labels FROM alerts WHERE incident_id = i.id ORDER BY (status = 'firing') DESC, id LIMIT 1) a ON true
                WHERE n.payload IS NULL AND i.id IS NOT NULL
            ) f ON true
            ORDER BY n.id
            """
        ).map { row in
            ClaimedNotification(
                id: try row.decode("id"),
                event: try row.decode("event"),
                kind: try row.decode("kind"),
                address: try row.decode("address"),
                secret: try row.decode("secret"),
                recipient: try row.decode("recipient"),
                toPerson: try row.decode("to_person"),
                incidentNumber: try row.decode("number"),
                handoffID: try row.decode("handoff_id"),
                eventData: Self.strings(try row.decode("event_data")),
                detail: Self.strings(try row.decode("detail")),
                attempts: try row.decode("attempts"),
                createdAt: try row.decode("created_at"),
                payload: try row.decode("payload"),
                facts: try Self.facts(row)
            )
        }
    }

    /// A JSON object's members as text (numbers and booleans written as JSON writes them).
    static func strings(_ json: String) -> [String: String] {
        guard case .object(let members) = try? JSONParser.parse(Data(json.utf8)) else { return [:] }
        var out: [String: String] = [:]
        for (key, value) in members {
            switch value {
            case .string(let s): out[key] = s
            case .number(let n): out[key] = n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
            case .bool(let b): out[key] = String(b)
            default: break
            }
        }
        return out
    }

    /// Records one attempt and its consequence in one statement: delivered, failed, or due
    /// again at `retryAt`, the payload kept for the next try; the lease ends.
    ///
    /// "Still pending" is written `finished_at IS NULL` (the same thing, by the table's CHECK)
    /// here and in `settle`: with `state = 'pending'` the planner may read the row
    /// through the partial due-index instead of the primary key, and as statistics are mostly
    /// gathered while the queue is empty, it does, filtering every pending row on each update.
    /// A storm's 2,000 notifications then cost 400 buffer reads each to record (BENCH_STATEMENTS=1
    /// script/bench notifications), against 25 this way.
    public func record(_ id: Int64, payload: String?, attempt: DeliveryAttempt) async throws {
        // Text PostgreSQL cannot hold (NUL) is dropped from what a receiver answered.
        func clean(_ text: String?, _ limit: Int) -> String? { text.map { String($0.replacingOccurrences(of: "\u{0}", with: "").prefix(limit)) } }
        let reply = clean(attempt.reply, 200)
        let error = clean(attempt.error, 500)
        _ = try await pool.execute(
            """
            WITH attempt AS (
                INSERT INTO notification_attempts (notification_id, latency_ms, status, reply, error, outcome)
                VALUES (\(id), \(attempt.latencyMS), \(attempt.status), \(reply), \(error), \(attempt.outcome.rawValue))
            )
            UPDATE notifications SET attempts = attempts + 1, lease_until = NULL, payload = coalesce(payload, \(payload)::jsonb),
                   state = CASE \(attempt.outcome.rawValue)::text WHEN 'retry' THEN 'pending' ELSE \(attempt.outcome.rawValue)::text END,
                   finished_at = CASE WHEN \(attempt.outcome.rawValue)::text = 'retry' THEN NULL ELSE clock_timestamp() END,
                   due_at = coalesce(\(attempt.retryAt)::timestamptz, due_at),
                   last_error = \(error ?? reply)
            WHERE id = \(id) AND finished_at IS NULL
            """
        )
    }

    /// Claims up to `limit` due escalation rows for `lease` seconds, with what deciding
    /// needs: is the incident still unacknowledged (a step) or unresolved (a reminder)?
    public func claimEscalations(limit: Int, lease: Int) async throws -> [ClaimedEscalation] {
        try await pool.query(
            """
            WITH claimed AS (
                UPDATE escalations e SET lease_until = clock_timestamp() + make_interval(secs => \(lease))
                WHERE e.id IN (SELECT id FROM escalations
                               WHERE state = 'pending' AND due_at <= clock_timestamp() AND (lease_until IS NULL OR lease_until < clock_timestamp())
                               ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING e.*
            )
            SELECT e.id, e.incident_id, i.number, i.owners_rotation, e.kind, e.position, e.chain_started_at,
                   CASE WHEN e.kind = 'step' THEN i.state IN ('triggered', 'reopened') AND NOT EXISTS (
                            SELECT 1 FROM incident_roles r WHERE r.incident_id = i.id AND r.role = 'owner' AND r.accepted_at > e.chain_started_at)
                        ELSE i.state <> 'resolved' END AS live,
                   (SELECT u.username FROM incident_roles r JOIN users u ON u.id = r.user_id WHERE r.incident_id = i.id AND r.role = 'owner') AS owner
            FROM claimed e JOIN incidents i ON i.id = e.incident_id
            """
        ).map { row in
            ClaimedEscalation(
                id: try row.decode("id"),
                incidentID: try row.decode("incident_id"),
                incidentNumber: try row.decode("number"),
                rotation: try row.decode("owners_rotation"),
                kind: try row.decode("kind"),
                position: try row.decode("position"),
                chainStartedAt: try row.decode("chain_started_at"),
                live: try row.decode("live"),
                owner: try row.decode("owner")
            )
        }
    }

    /// The members of a rotation who are leads, managers or admins (enabled).
    public func leads(rotation: String) async throws -> [String] {
        try await pool.query(
            """
            SELECT u.username FROM rotation_members m JOIN rotations r ON r.id = m.rotation_id JOIN users u ON u.id = m.user_id
            WHERE r.name = \(rotation) AND u.role >= 'lead' AND u.disabled_at IS NULL ORDER BY m.position
            """
        ).map { try $0.decode("username") }
    }

    /// What the escalation worker decided for one claimed row: notify `usernames` (every
    /// verified contact method of each) and schedule `next` (its position and due time), or
    /// end the row without firing it (`usernames` nil: acknowledged, resolved, or past the
    /// last step).
    public struct EscalationOutcome: Sendable {
        public var escalation: ClaimedEscalation
        public var usernames: [String]?
        public var next: (position: Int, due: Date)?

        public static func fire(_ e: ClaimedEscalation, usernames: [String], next: (position: Int, due: Date)?) -> Self {
            Self(escalation: e, usernames: usernames, next: next)
        }

        public static func cancel(_ e: ClaimedEscalation) -> Self { Self(escalation: e, usernames: nil, next: nil) }
    }

    /// Settles a batch of claimed escalation rows in one statement, each once (only while it
    /// is still pending): a fired row is done, its notifications and the chain's next row
    /// written; a cancelled one ends. Returns the ids of the rows that fired (a row no longer
    /// pending, because another worker settled it or the chain stopped, is not among them).
    /// One statement per batch, not one per row: in a storm every new incident's first step
    /// fires at once (`script/bench storm`). The rows are found by primary key (`= ANY(ARRAY(…))`):
    /// joined to the input alone (estimated at 100 rows), the planner read every escalation
    /// ever written up to some 20,000 of them, where that costs less than 100 probes: 3 ms
    /// a batch in a storm on a fresh database, against 0.1 ms.
    public func settle(_ outcomes: [EscalationOutcome]) async throws -> Set<Int64> {
        guard !outcomes.isEmpty else { return [] }
        let rows = try await pool.query(Self.settleStatement(outcomes))
        return Set(try rows.map { try $0.decode("id", as: Int64.self) })
    }

    /// The statement `settle` runs (its plan is checked in a test).
    package static func settleStatement(_ outcomes: [EscalationOutcome]) -> PostgresQuery {
        var w = JSONText()
        w.array(outcomes) { w, o in
            w.object { w in
                w.field("id", o.escalation.id)
                w.field("fire", o.usernames != nil)
                w.field("usernames", o.usernames ?? []) { w, name in w.string(name) }
                w.field("event", (o.escalation.kind == .step ? NotificationEvent.escalation : .reminder).rawValue)
                w.field("step", o.escalation.position + 1)
                w.field("next_position", o.next?.position)
                w.field("next_due", o.next?.due.timeIntervalSince1970)
            }
        }
        return """
            WITH input AS (
                SELECT * FROM jsonb_to_recordset(\(w.text)::jsonb)
                    AS x(id bigint, fire boolean, usernames text[], event text, step int, next_position int, next_due double precision)
            ), done AS (
                UPDATE escalations e
                SET state = CASE WHEN i.fire THEN 'done' ELSE 'cancelled' END, finished_at = clock_timestamp(), lease_until = NULL,
                    notified = CASE WHEN i.fire THEN i.usernames ELSE e.notified END
                FROM input i
                WHERE e.id = ANY(ARRAY(SELECT id FROM input)) AND e.id = i.id AND e.finished_at IS NULL
                RETURNING e.id, e.incident_id, e.kind, e.chain_started_at, i.fire, i.usernames, i.event, i.step, i.next_position, i.next_due
            ), sent AS (
                INSERT INTO notifications (event, incident_id, contact_method_id, recipient, kind, hint, detail)
                SELECT d.event, d.incident_id, c.id, u.username, c.kind, c.hint, jsonb_build_object('step', d.step)
                FROM done d JOIN users u ON u.username = ANY(d.usernames) AND u.disabled_at IS NULL
                JOIN contact_methods c ON c.user_id = u.id AND c.verified_at IS NOT NULL
                WHERE d.fire
            ), following AS (
                INSERT INTO escalations (incident_id, kind, position, chain_started_at, due_at)
                SELECT d.incident_id, d.kind, d.next_position, d.chain_started_at, to_timestamp(d.next_due) FROM done d
                WHERE d.fire AND d.next_due IS NOT NULL
            )
            SELECT id FROM done WHERE fire
            """
    }

    /// What a message says about an incident, read with the claim.
    public struct IncidentFacts: Sendable {
        public var title: String
        public var severity: Severity
        public var state: IncidentState
        public var owner: String?
        public var value: Double?
        public var labels: [String: String]
        public var runbookID: String?
        public var runbookVersion: Int?
        public var markedSteps: Set<Int>
    }

    static func facts(_ row: PostgresRow) throws -> IncidentFacts? {
        guard let title = try row.decode("title", as: String?.self) else { return nil }
        var labels: [String: String] = [:]
        if case .object(let members) = try JSONParser.parse(Data(try row.decode("labels", as: String.self).utf8)) {
            for (key, value) in members { if case .string(let s) = value { labels[key] = s } }
        }
        return IncidentFacts(
            title: title,
            severity: try row.decode("severity"),
            state: try row.decode("state"),
            owner: try row.decode("owner"),
            value: try row.decode("value"),
            labels: labels,
            runbookID: try row.decode("runbook_id"),
            runbookVersion: try row.decode("runbook_version"),
            markedSteps: Set(try row.decode("marked", as: [Int].self))
        )
    }

    /// The server's own secret of that name, made (32 random bytes) at first use; every
    /// replica reads the same one.
    public func serverKey(_ name: String) async throws -> Data {
        var generator = SystemRandomNumberGenerator()
        let fresh = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
        for _ in 0..<2 {
            let rows = try await pool.query(
                """
                WITH made AS (INSERT INTO server_secrets (name, value) VALUES (\(name), \(fresh)) ON CONFLICT (name) DO NOTHING RETURNING value)
                SELECT value FROM made UNION ALL SELECT value FROM server_secrets WHERE name = \(name)
                """
            )
            // Empty only when another replica made it at the same moment: read it again.
            if let value = try rows.first?.decode("value", as: String.self), let key = Data(base64Encoded: value) { return key }
        }
        throw PostgresError(kind: .decoding, message: "the server secret \(name) could not be read")
    }

    // MARK: what people see

    static let recordColumns: StaticString = """
        n.id, n.event, i.number, n.recipient, n.kind::text AS kind, n.hint, n.state, n.attempts, n.created_at, n.finished_at, n.last_error
        """

    /// An incident's notifications, oldest first.
    /// An incident's notifications, oldest first; nil when there is no such incident.
    public func notifications(incident number: Int64) async throws -> [NotificationRecord]? {
        let rows = try await pool.query(
            """
            SELECT \(sql: Self.recordColumns) FROM incidents i LEFT JOIN notifications n ON n.incident_id = i.id
            WHERE i.number = \(number) ORDER BY n.id
            """
        )
        guard !rows.isEmpty else { return nil }
        return try rows.filter { try $0.decode("id", as: Int64?.self) != nil }.map(NotificationRecord.init(row:))
    }

    /// The latest notifications of one contact method (its page shows how the test went).
    public func notifications(contactMethod id: Int64, username: String, limit: Int = 10) async throws -> [NotificationRecord] {
        try await pool.query(
            """
            SELECT \(sql: Self.recordColumns) FROM notifications n LEFT JOIN incidents i ON i.id = n.incident_id
            JOIN contact_methods c ON c.id = n.contact_method_id JOIN users u ON u.id = c.user_id
            WHERE c.id = \(id) AND u.username = \(username) ORDER BY n.id DESC LIMIT \(limit)
            """
        ).map(NotificationRecord.init(row:))
    }

    /// Notifications that failed for good, newest first (admins').
    public func failed(limit: Int = 100) async throws -> [NotificationRecord] {
        try await pool.query(
            """
            SELECT \(sql: Self.recordColumns) FROM notifications n LEFT JOIN incidents i ON i.id = n.incident_id
            WHERE n.state = 'failed' ORDER BY n.id DESC LIMIT \(limit)
            """
        ).map(NotificationRecord.init(row:))
    }

    /// How long the oldest due notification has waited, in seconds (0 when none waits).
    public func oldestDueAge() async throws -> Double {
        try await pool.query(
            """
            SELECT coalesce(extract(epoch FROM clock_timestamp() - min(due_at)), 0)::float8 AS age FROM notifications
            WHERE state = 'pending' AND due_at <= clock_timestamp()
            """
        )[0].decode("age")
    }
}

extension ContactMethod {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            user: try row.decode("username"),
            kind: try row.decode("kind"),
            label: try row.decode("label"),
            hint: try row.decode("hint"),
            verified: try row.decode("verified"),
            createdAt: try row.decode("created_at")
        )
    }
}

extension RotationChannel {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            rotation: try row.decode("rotation"),
            kind: try row.decode("kind"),
            label: try row.decode("label"),
            hint: try row.decode("hint"),
            createdAt: try row.decode("created_at")
        )
    }
}

extension NotificationRecord {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            event: try row.decode("event"),
            incident: try row.decode("number"),
            recipient: try row.decode("recipient"),
            kind: try row.decode("kind"),
            hint: try row.decode("hint"),
            state: try row.decode("state"),
            attempts: try row.decode("attempts"),
            createdAt: try row.decode("created_at"),
            finishedAt: try row.decode("finished_at"),
            lastError: try row.decode("last_error")
        )
    }
}
