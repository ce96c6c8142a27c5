public import Foundation
public import HandrailCore
public import Postgres

/// All SQL of handoffs: reading a rotation's incident log for a window.
public struct HandoffStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// handoff.collect — as `collect(_:window:)` for the rotation of that name; nil when
    /// there is no such rotation.
    public func collect(rotation name: String, window: HandoffWindow) async throws -> HandoffLog? {
        guard let rotation = try await RotationStore(pool: pool).find(name: name) else { return nil }
        return try await collect(rotation, window: window)
    }

    /// handoff.collect — the rotation's incidents that touch the window or the one before it
    /// (for MTTA and MTTR), their step gaps and next steps, decisions made in the window or
    /// still awaiting an outcome, alert noise, and alert types that opened incidents without
    /// a runbook. One transaction, one snapshot.
    public func collect(_ rotation: Rotation, window: HandoffWindow) async throws -> HandoffLog {
        let name = rotation.name
        let previous = window.previous
        // The parts come out of the transaction as a class instance and the log is made
        // here: a large struct returned through the generic async closure was corrupted
        // (a crash copying it, in Swift 6.3 debug builds).
        let parts = try await pool.withTransaction { db -> Parts in
            // Every statement is planned for this window: a cached generic plan does not know
            // the window is one week, and scanned every incident of the rotation (a cost that
            // grew with history).
            try await db.executeScript(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL plan_cache_mode = force_custom_plan"
            )
            // Plain columns only: marks and step titles are read below for just the
            // incidents that need them (the previous window's are there for MTTA and MTTR).
            let rows = try await db.query(
                """
                SELECT i.id, i.number, i.title, i.severity, i.state::text AS state, i.opened_at, i.acknowledged_at, i.resolved_at,
                       i.runbook_id, i.runbook_version, o.username AS owner, coalesce(o.pending, false) AS owner_pending
                FROM incidents i
                -- OFFSET 0: one index lookup per incident, not a join with every owner ever assigned.
                LEFT JOIN LATERAL (SELECT u.username, r.accepted_at IS NULL AS pending FROM incident_roles r JOIN users u ON u.id = r.user_id
                                   WHERE r.incident_id = i.id AND r.role = 'owner' OFFSET 0) o ON true
                WHERE i.owners_rotation = \(name)
                  AND ((i.opened_at >= \(previous.from) AND i.opened_at < \(window.to))
                       OR (i.resolved_at >= \(previous.from) AND i.resolved_at < \(window.to))
                       OR (i.opened_at < \(window.to) AND (i.resolved_at IS NULL OR i.resolved_at >= \(window.to))))
                ORDER BY i.number
                """
            )
            var incidents: [HandoffIncident] = []
            incidents.reserveCapacity(rows.count)
            // The incidents the window lists (opened or resolved in it, or open at its end)
            // need their gaps; the open ones their next step.
            var listed: [Int64: Int] = [:]
            var open: [Int64] = []
            for row in rows {
                let id: Int64 = try row.decode("id")
                let state: IncidentState = try row.decode("state")
                let opened: Date = try row.decode("opened_at")
                let resolved: Date? = try row.decode("resolved_at")
                let inWindow = { (d: Date) in d >= window.from && d < window.to }
                let openAtEnd = opened < window.to && (resolved.map { $0 >= window.to } ?? true)
                if inWindow(opened) || resolved.map(inWindow) == true || openAtEnd {
                    listed[id] = incidents.count
                    if state != .resolved { open.append(id) }
                }
                incidents.append(
                    HandoffIncident(
                        number: try row.decode("number"),
                        title: try row.decode("title"),
                        severity: try row.decode("severity"),
                        state: state,
                        openedAt: opened,
                        acknowledgedAt: try row.decode("acknowledged_at"),
                        resolvedAt: resolved,
                        owner: try row.decode("owner"),
                        ownerPending: try row.decode("owner_pending"),
                        runbookId: try row.decode("runbook_id"),
                        runbookVersion: try row.decode("runbook_version")
                    )
                )
            }
            // Step titles of the runbook versions the listed incidents pinned, read once
            // per version (a definition holds every step's Markdown).
            var pinned: Set<RunbookKey> = []
            for n in listed.values {
                if let id = incidents[n].runbookId, let v = incidents[n].runbookVersion { pinned.insert(RunbookKey(id: id, version: v)) }
            }
            var titles: [RunbookKey: [(step: Int, title: String)]] = [:]
            for row in try await db.query(
                """
                SELECT v.runbook_id, v.version, (e->>'index')::int AS step, e->>'title' AS title
                FROM runbook_versions v, jsonb_array_elements(v.definition->'steps') e
                WHERE (v.runbook_id, v.version) IN (SELECT * FROM unnest(\(pinned.map(\.id))::text[], \(pinned.map(\.version))::int[]))
                ORDER BY 1, 2, 3
                """
            ) {
                titles[RunbookKey(id: try row.decode("runbook_id"), version: try row.decode("version")), default: []]
                    .append((try row.decode("step"), RunbookStep.title(of: try row.decode("title"))))
            }
            func title(_ n: Int, _ step: Int) -> String {
                let key = incidents[n].runbookId.flatMap { id in incidents[n].runbookVersion.map { RunbookKey(id: id, version: $0) } }
                return key.flatMap { titles[$0]?.first { $0.step == step }?.title } ?? "step \(step)"
            }
            // Gaps: steps whose latest mark is skipped or failed.
            for row in try await db.query(
                """
                SELECT m.incident_id, m.step, m.outcome, m.note, u.username
                FROM (SELECT DISTINCT ON (incident_id, step) incident_id, step, outcome, note, user_id FROM incident_step_marks
                      WHERE incident_id = ANY(\(Array(listed.keys))::bigint[]) ORDER BY incident_id, step, id DESC) m
                JOIN users u ON u.id = m.user_id
                WHERE m.outcome IN ('skipped', 'failed')
                ORDER BY m.incident_id, m.step
                """
            ) {
                guard let n = listed[try row.decode("incident_id")] else { continue }
                let step: Int = try row.decode("step")
                incidents[n].gaps.append(
                    HandoffIncident.Gap(
                        step: step,
                        title: title(n, step),
                        outcome: try row.decode("outcome"),
                        note: try row.decode("note", as: String?.self) ?? "",
                        by: try row.decode("username")
                    )
                )
            }
            // An open incident's next step: its pinned version's first step with no mark, or
            // whose latest mark is an undo.
            if !open.isEmpty {
                var marked: [Int64: Set<Int>] = [:]
                for row in try await db.query(
                    """
                    SELECT incident_id, step FROM (
                        SELECT DISTINCT ON (incident_id, step) incident_id, step, outcome FROM incident_step_marks
                        WHERE incident_id = ANY(\(open)::bigint[]) ORDER BY incident_id, step, id DESC) m
                    WHERE outcome <> 'undone'
                    """
                ) {
                    marked[try row.decode("incident_id"), default: []].insert(try row.decode("step"))
                }
                for id in open {
                    guard let n = listed[id], let runbook = incidents[n].runbookId, let version = incidents[n].runbookVersion else { continue }
                    let done = marked[id] ?? []
                    incidents[n].nextStep = titles[RunbookKey(id: runbook, version: version)]?.first { !done.contains($0.step) }?.title
                }
            }
            return Parts(incidents: incidents, others: try await Self.otherReads(db, rotation: name, window: window))
        }
        var log = HandoffLog(
            rotation: rotation,
            window: window,
            incidents: parts.incidents,
            decisions: parts.others.decisions,
            noise: parts.others.noise,
            withoutRunbook: parts.others.withoutRunbook,
            actionItems: parts.others.actionItems
        )
        log.load = parts.others.load
        log.note = parts.others.notes.last
        log.postmortemsNeeded = parts.others.postmortemsNeeded
        log.rollouts = parts.others.rollouts
        return log
    }

    /// The rotation's canary gates (their release's runbook names the rotation as owners)
    /// opened before the window's end and asked about or decided in it, with every decision
    /// on each gate (and rollback of its release) before the window's end.
    static func rollouts(_ db: PostgresConnection, rotation name: String, window: HandoffWindow) async throws -> [HandoffRollout] {
        let rows = try await db.query(
            """
            WITH g AS (
                SELECT g.id, g.release_id, r.namespace, r.name, r.checksum, g.stage::text AS stage, g.step, g.opened_at
                FROM gates g JOIN releases r ON r.id = g.release_id
                JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.runbook_version
                WHERE v.definition->>'owners' = \(name) AND g.opened_at < \(window.to)
                  AND (g.last_asked_at >= \(window.from)
                       OR EXISTS (SELECT 1 FROM gate_decisions d WHERE d.gate_id = g.id AND d.decided_at >= \(window.from) AND d.decided_at < \(window.to)))
                ORDER BY g.opened_at LIMIT 200
            )
            SELECT g.*, d.kind::text AS kind, u.username, d.decided_at, d.rationale, d.gate_id
            FROM g LEFT JOIN gate_decisions d ON (d.gate_id = g.id OR (d.release_id = g.release_id AND d.kind = 'rollback'))
                AND d.decided_at < \(window.to)
            LEFT JOIN users u ON u.id = d.decided_by
            ORDER BY g.opened_at, g.id, d.id
            """
        )
        var rollouts: [HandoffRollout] = []
        for row in rows {
            let id: Int64 = try row.decode("id")
            if rollouts.last?.gate != id {
                let stage = try GateStage.parse(try row.decode("stage"))
                let step: Int = try row.decode("step")
                rollouts.append(
                    HandoffRollout(
                        gate: id,
                        release: ReleaseRef(
                            namespace: try row.decode("namespace"),
                            name: try row.decode("name"),
                            checksum: try row.decode("checksum")
                        ),
                        stage: stage.rawValue + (stage == .confirmTrafficIncrease ? " #\(step)" : ""),
                        openedAt: try row.decode("opened_at"),
                        decisions: []
                    )
                )
            }
            if let kind: String = try row.decode("kind") {
                rollouts[rollouts.count - 1].decisions.append(
                    HandoffRollout.Decision(
                        kind: try GateDecisionKind.parse(kind),
                        by: try row.decode("username"),
                        at: try row.decode("decided_at"),
                        rationale: try row.decode("rationale"),
                        gate: try row.decode("gate_id")
                    )
                )
            }
        }
        return rollouts
    }

    /// Decisions made in the window or still awaiting an outcome, alert noise, alert types
    /// without a runbook, open action items: what a handoff reads beside its incidents.
    static func otherReads(_ db: PostgresConnection, rotation name: String, window: HandoffWindow) async throws -> OtherParts {
        let previous = window.previous
        let decisions = try await db.query(
            """
            SELECT d.id, i.number, d.kind::text AS kind, d.target_service, d.target_model, d.from_version, d.to_version,
                   u.username || CASE WHEN pu.username IS NOT NULL THEN ' (proposed by ' || pu.username || ')' ELSE '' END
                              || CASE WHEN d.late THEN ' (late entry, after the incident was resolved)' ELSE '' END AS username,
                   d.decided_at, d.rationale,
                   CASE WHEN o.outcome IS NOT NULL THEN o.outcome
                        WHEN EXISTS (SELECT 1 FROM decisions s WHERE s.supersedes = d.id) THEN 'superseded'
                        WHEN e.decision_id IS NOT NULL THEN 'awaiting_outcome' ELSE 'awaiting_execution' END AS status
            FROM decisions d JOIN incidents i ON i.id = d.incident_id JOIN users u ON u.id = d.decided_by
            LEFT JOIN decision_executions e ON e.decision_id = d.id LEFT JOIN decision_outcomes o ON o.decision_id = d.id
            LEFT JOIN decision_proposals p ON p.id = d.proposal_id LEFT JOIN users pu ON pu.id = p.proposed_by
            WHERE d.id = ANY(ARRAY(SELECT id FROM decisions WHERE decided_at >= \(window.from) AND decided_at < \(window.to)
                                   UNION SELECT decision_id FROM decisions_unsettled WHERE decided_at < \(window.to)))
              AND i.owners_rotation = \(name)
            ORDER BY d.decided_at, d.id
            """
        ).map { row in
            let target = DecisionTarget(
                service: try row.decode("target_service"),
                model: try row.decode("target_model"),
                fromVersion: try row.decode("from_version"),
                toVersion: try row.decode("to_version")
            ).description
            return HandoffDecision(
                id: try row.decode("id"),
                incident: try row.decode("number"),
                kind: try row.decode("kind"),
                target: target,
                decidedBy: try row.decode("username"),
                decidedAt: try row.decode("decided_at"),
                rationale: try row.decode("rationale"),
                status: try row.decode("status")
            )
        }
        let noise = try await db.query(
            """
            SELECT a.alertname, count(*) AS alerts, sum(a.delivery_count) AS deliveries
            FROM alerts a
            -- The incidents the incidents query reads (the rotation's, touching this window or
            -- the one before), planned for this window as that query is.
            WHERE a.incident_id = ANY(ARRAY(
                    SELECT i.id FROM incidents i
                    WHERE i.owners_rotation = \(name)
                      AND ((i.opened_at >= \(previous.from) AND i.opened_at < \(window.to))
                           OR (i.resolved_at >= \(previous.from) AND i.resolved_at < \(window.to))
                           OR (i.opened_at < \(window.to) AND (i.resolved_at IS NULL OR i.resolved_at >= \(window.to))))))
              AND a.last_seen_at >= \(window.from) AND a.first_seen_at < \(window.to)
            GROUP BY a.alertname
            """
        ).map { AlertNoise(alertname: try $0.decode("alertname"), alerts: try $0.decode("alerts"), deliveries: try $0.decode("deliveries")) }
        var withoutRunbook: [String: Int] = [:]
        for row in try await db.query(
            """
            SELECT coalesce(labels->>'alertname', title) AS alertname, count(*) AS n FROM incidents
            WHERE runbook_id IS NULL AND opened_at >= \(window.from) AND opened_at < \(window.to)
            GROUP BY 1
            """
        ) {
            withoutRunbook[try row.decode("alertname")] = try row.decode("n")
        }
        let items = try await db.query(
            """
            SELECT i.number, a.title, u.username, a.due_date::text AS due
            FROM action_items a
            -- One lookup per open item (OFFSET 0 keeps it a lookup), not a scan of every postmortem.
            JOIN LATERAL (SELECT i.number, i.owners_rotation FROM postmortems p JOIN incidents i ON i.id = p.incident_id
                          WHERE p.id = a.postmortem_id OFFSET 0) i ON true
            JOIN users u ON u.id = a.owner_user_id
            WHERE i.owners_rotation = \(name) AND a.status = 'open' AND a.created_at < \(window.to)
            ORDER BY a.due_date, i.number, a.id
            """
        ).compactMap { row -> OpenActionItem? in
            guard let due = LocalDate(try row.decode("due", as: String.self)) else { return nil }
            return OpenActionItem(incident: try row.decode("number"), title: try row.decode("title"), owner: try row.decode("username"), due: due)
        }
        return OtherParts(
            decisions: decisions,
            noise: noise,
            withoutRunbook: withoutRunbook,
            actionItems: items,
            load: try await loadReads(db, rotation: name, window: window),
            notes: try await notes(db, rotation: name, window: window),
            postmortemsNeeded: try await db.query(
                """
                SELECT i.number, i.title, \(sql: PostmortemStore.neededWhy) AS why
                FROM \(sql: PostmortemStore.neededFrom)
                WHERE \(sql: PostmortemStore.needed)
                  AND i.owners_rotation = \(name) AND i.resolved_at >= \(window.from) AND i.resolved_at < \(window.to)
                ORDER BY i.number
                """
            ).map { NeededPostmortem(incident: try $0.decode("number"), title: try $0.decode("title"), why: try $0.decode("why")) },
            rollouts: try await rollouts(db, rotation: name, window: window)
        )
    }

    /// handoff.note — a note from the outgoing on-call for the rotation's window (every
    /// version kept); nil when there is no such rotation.
    public func writeNote(rotation: String, window: HandoffWindow, text: String, by userID: Int) async throws -> HandoffNote? {
        try await pool.query(
            """
            WITH written AS (
                INSERT INTO handoff_notes (rotation_id, window_from, window_to, note, written_by)
                SELECT id, \(window.from), \(window.to), \(text), \(userID) FROM rotations WHERE name = \(rotation)
                RETURNING note, written_by, written_at
            )
            SELECT w.note, u.username, w.written_at FROM written w JOIN users u ON u.id = w.written_by
            """
        ).first.map { HandoffNote(text: try $0.decode("note"), by: try $0.decode("username"), at: try $0.decode("written_at")) }
    }

    /// The notes for a rotation's window, oldest first (the last one is the note).
    public func notes(rotation name: String, window: HandoffWindow) async throws -> [HandoffNote] {
        try await pool.withConnection { try await Self.notes($0, rotation: name, window: window) }
    }

    static func notes(_ db: PostgresConnection, rotation name: String, window: HandoffWindow) async throws -> [HandoffNote] {
        try await db.query(
            """
            SELECT n.note, u.username, n.written_at FROM handoff_notes n JOIN rotations r ON r.id = n.rotation_id JOIN users u ON u.id = n.written_by
            WHERE r.name = \(name) AND n.window_from = \(window.from) AND n.window_to = \(window.to)
            ORDER BY n.id
            """
        ).map { HandoffNote(text: try $0.decode("note"), by: try $0.decode("username"), at: try $0.decode("written_at")) }
    }

    /// The pages the rotation's people received in the window and the one before (one per
    /// incident event and person, however many contact methods it went to), their own time
    /// zones, and the rotation's load limits.
    static func loadReads(_ db: PostgresConnection, rotation name: String, window: HandoffWindow) async throws -> HandoffLoadInput {
        let previous = window.previous
        let pages = try await db.query(
            """
            SELECT n.recipient, i.number, min(n.created_at) AS at
            FROM notifications n JOIN incidents i ON i.id = n.incident_id
            -- The rotation's incidents that could have paged in these two windows, one index
            -- lookup each (as the noise query reads them).
            WHERE n.incident_id = ANY(ARRAY(
                    SELECT i.id FROM incidents i
                    WHERE i.owners_rotation = \(name) AND i.opened_at < \(window.to)
                      AND (i.resolved_at IS NULL OR i.resolved_at >= \(previous.from)::timestamptz - interval '1 day')))
              AND n.contact_method_id IS NOT NULL
              AND n.created_at >= \(previous.from) AND n.created_at < \(window.to)
            GROUP BY n.recipient, i.number, n.event, n.incident_event_id, n.detail->>'step', date_trunc('minute', n.created_at)
            ORDER BY at
            """
        ).map { HandoffLoadInput.Page(user: try $0.decode("recipient"), at: try $0.decode("at"), incident: try $0.decode("number")) }
        var zones: [String: String] = [:]
        for row in try await db.query(
            """
            SELECT username, time_zone FROM users
            WHERE time_zone IS NOT NULL
              AND (id IN (SELECT m.user_id FROM rotation_members m JOIN rotations r ON r.id = m.rotation_id WHERE r.name = \(name))
                   OR username = ANY(\(Array(Set(pages.map(\.user))))::text[]))
            """
        ) {
            zones[try row.decode("username")] = try row.decode("time_zone")
        }
        let limits = try await db.query("SELECT night_page_limit, page_limit FROM rotations WHERE name = \(name)").first
        return HandoffLoadInput(
            pages: pages,
            zones: zones,
            nightPageLimit: try limits?.decode("night_page_limit") ?? 2,
            pageLimit: try limits?.decode("page_limit") ?? 20
        )
    }

    struct RunbookKey: Hashable {
        let id: String
        let version: Int
    }

    final class Parts: Sendable {
        let incidents: [HandoffIncident]
        let others: OtherParts

        init(incidents: [HandoffIncident], others: OtherParts) {
            self.incidents = incidents
            self.others = others
        }
    }

    final class OtherParts: Sendable {
        let decisions: [HandoffDecision]
        let noise: [AlertNoise]
        let withoutRunbook: [String: Int]
        let actionItems: [OpenActionItem]
        let load: HandoffLoadInput
        let notes: [HandoffNote]
        let postmortemsNeeded: [NeededPostmortem]
        let rollouts: [HandoffRollout]

        init(
            decisions: [HandoffDecision],
            noise: [AlertNoise],
            withoutRunbook: [String: Int],
            actionItems: [OpenActionItem],
            load: HandoffLoadInput,
            notes: [HandoffNote],
            postmortemsNeeded: [NeededPostmortem],
            rollouts: [HandoffRollout]
        ) {
            self.rollouts = rollouts
            self.notes = notes
            self.postmortemsNeeded = postmortemsNeeded
            self.decisions = decisions
            self.noise = noise
            self.withoutRunbook = withoutRunbook
            self.actionItems = actionItems
            self.load = load
        }
    }

}

/// A handoff as stored: its window, who generated it, its hash, and the acknowledgement.
public struct StoredHandoff: Sendable, Equatable, Codable {
    public var id: Int64
    public var rotation: String
    public var from: Date
    public var to: Date
    public var generatedAt: Date
    public var generatedBy: String
    public var contentHash: String
    /// Who is on call as the window ends: the person who acknowledges it.
    public var incoming: String?
    public var acknowledgedBy: String?
    public var acknowledgedAt: Date?
    /// A lead acknowledged it for the incoming on-call (not the incoming person themselves).
    public var acknowledgedOnBehalf: Bool
    public var markdown: String?
    /// The document as stored: the API's JSON of `HandoffDocument` when it was generated.
    public var document: JSONValue?
}

extension HandoffStore {
    static let storedColumns: StaticString = """
        h.id, r.name AS rotation, h.window_from, h.window_to, h.generated_at, coalesce(g.username, 'handrail (on schedule)') AS generated_by,
        h.content_hash, h.incoming,
        a.username AS acknowledged_by, h.acknowledged_at, h.acknowledged_on_behalf
        """
    static let storedJoins: StaticString = """
        JOIN rotations r ON r.id = h.rotation_id LEFT JOIN users g ON g.id = h.generated_by LEFT JOIN users a ON a.id = h.acknowledged_by
        """

    /// The stored document's JSON: the API's spelling (snake_case keys, sorted).
    static func documentJSON(_ document: HandoffDocument) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    /// The stored JSON as a value. JSONParser, not JSONDecoder: JSONValue's Decodable tries
    /// each type in turn, 100 ms for a busy week's document against 6 ms (debug build).
    static func document(_ json: String) throws -> JSONValue {
        try JSONParser.parse(Data(json.utf8))
    }

    /// handoff.store — keeps a generated handoff; nil when the rotation is gone. The answer
    /// is made from what was stored, not read back.
    public func store(
        rotation: String,
        window: HandoffWindow,
        markdown: String,
        document: HandoffDocument,
        incoming: String?,
        by userID: Int
    ) async throws -> StoredHandoff? {
        let hash = Digest.sha256Hex(markdown)
        let json = try Self.documentJSON(document)
        let rows = try await pool.query(
            """
            WITH stored AS (
                INSERT INTO handoffs (rotation_id, window_from, window_to, generated_by, content_hash, markdown, document, incoming)
                SELECT id, \(window.from), \(window.to), \(userID), \(hash), \(markdown), \(json)::json, \(incoming)
                FROM rotations WHERE name = \(rotation)
                RETURNING id, generated_at
            )
            SELECT s.id, s.generated_at, u.username FROM stored s, users u WHERE u.id = \(userID)
            """
        )
        guard let row = rows.first else { return nil }
        return StoredHandoff(
            id: try row.decode("id"),
            rotation: rotation,
            from: window.from,
            to: window.to,
            generatedAt: try row.decode("generated_at"),
            generatedBy: try row.decode("username"),
            contentHash: hash,
            incoming: incoming,
            acknowledgedBy: nil,
            acknowledgedAt: nil,
            acknowledgedOnBehalf: false,
            markdown: markdown,
            document: try Self.document(json)
        )
    }

    /// handoff.schedule — the shift of `rotation` that ended at `shiftEnd` is due for its
    /// handoff (once per rotation and shift end, whoever asks first; none for shifts that
    /// ended before the rotation existed).
    public func schedule(rotation: String, shiftEnd: Date) async throws {
        _ = try await pool.execute(
            """
            INSERT INTO scheduled_handoffs (rotation_id, shift_end)
            SELECT id, \(shiftEnd) FROM rotations WHERE name = \(rotation) AND created_at < \(shiftEnd)
            ON CONFLICT DO NOTHING
            """
        )
    }

    /// A due scheduled handoff, claimed by one worker until its lease ends.
    public struct ScheduledHandoff: Sendable {
        public var id: Int64
        public var rotation: String
        public var shiftEnd: Date
    }

    public func claimScheduled(limit: Int, lease: Int) async throws -> [ScheduledHandoff] {
        try await pool.query(
            """
            WITH claimed AS (
                UPDATE scheduled_handoffs s SET lease_until = clock_timestamp() + make_interval(secs => \(lease))
                WHERE s.id IN (SELECT id FROM scheduled_handoffs WHERE done_at IS NULL AND (lease_until IS NULL OR lease_until < clock_timestamp())
                               ORDER BY shift_end LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING s.id, s.rotation_id, s.shift_end
            )
            SELECT c.id, r.name, c.shift_end FROM claimed c JOIN rotations r ON r.id = c.rotation_id
            """
        ).map { ScheduledHandoff(id: try $0.decode("id"), rotation: try $0.decode("name"), shiftEnd: try $0.decode("shift_end")) }
    }

    /// handoff.store-scheduled — in one transaction: the handoff (generated by nobody), the
    /// scheduled row done, and a notification to the outgoing and incoming on-call's
    /// confirmed contact methods and to the rotation's channels. Nil when the row was done
    /// already (another replica got there first): then nothing is stored.
    public func storeScheduled(
        _ scheduled: ScheduledHandoff,
        window: HandoffWindow,
        markdown: String,
        document: HandoffDocument,
        outgoing: String?,
        incoming: String?,
        detail: [String: String]
    ) async throws -> Int64? {
        let hash = Digest.sha256Hex(markdown)
        let json = try Self.documentJSON(document)
        let detailJSON = String(decoding: try JSONEncoder().encode(detail), as: UTF8.self)
        return try await pool.withTransaction { tx -> Int64? in
            guard
                try await tx.execute(
                    "UPDATE scheduled_handoffs SET done_at = clock_timestamp(), lease_until = NULL WHERE id = \(scheduled.id) AND done_at IS NULL"
                ) == 1
            else { return nil }
            let rows = try await tx.query(
                """
                WITH stored AS (
                    INSERT INTO handoffs (rotation_id, window_from, window_to, generated_by, content_hash, markdown, document, incoming)
                    SELECT id, \(window.from), \(window.to), NULL, \(hash), \(markdown), \(json)::json, \(incoming)
                    FROM rotations WHERE name = \(scheduled.rotation)
                    RETURNING id, rotation_id
                ), linked AS (
                    UPDATE scheduled_handoffs SET handoff_id = (SELECT id FROM stored) WHERE id = \(scheduled.id)
                ), people AS (
                    INSERT INTO notifications (event, handoff_id, contact_method_id, recipient, kind, hint, detail)
                    SELECT 'handoff', s.id, c.id, u.username, c.kind, c.hint, \(detailJSON)::jsonb
                    FROM stored s, contact_methods c JOIN users u ON u.id = c.user_id
                    WHERE u.username IN (\(outgoing), \(incoming)) AND u.disabled_at IS NULL AND c.verified_at IS NOT NULL
                ), channels AS (
                    INSERT INTO notifications (event, handoff_id, channel_id, recipient, kind, hint, detail)
                    SELECT 'handoff', s.id, c.id, c.label, c.kind, c.hint, \(detailJSON)::jsonb
                    FROM stored s JOIN rotation_channels c ON c.rotation_id = s.rotation_id
                )
                SELECT id FROM stored
                """
            )
            return try rows.first?.decode("id")
        }
    }

    /// handoff.list — a rotation's handoffs, newest first, without their content.
    public func list(rotation: String, limit: Int = 50) async throws -> [StoredHandoff] {
        try await pool.query(
            """
            SELECT \(sql: Self.storedColumns) FROM handoffs h \(sql: Self.storedJoins)
            WHERE r.name = \(rotation) ORDER BY h.id DESC LIMIT \(max(1, min(limit, 200)))
            """
        ).map { try StoredHandoff(row: $0, content: .facts) }
    }

    /// What `find` reads besides the handoff's facts.
    public enum Content: Sendable {
        /// Only the facts (window, who generated and acknowledged it).
        case facts
        /// The Markdown (pages and downloads).
        case markdown
        /// The Markdown and the stored document (the API's JSON). Reading a busy week's
        /// document is most of what showing it costs: read it only for the API.
        case document
    }

    /// handoff.show — one handoff of the rotation, with its Markdown and document when asked.
    public func find(rotation: String, id: Int64, content: Content) async throws -> StoredHandoff? {
        let columns: StaticString =
            switch content {
            case .facts: ""
            case .markdown: ", h.markdown"
            case .document: ", h.markdown, h.document::text AS document"
            }
        return try await pool.query(
            """
            SELECT \(sql: Self.storedColumns)\(sql: columns) FROM handoffs h \(sql: Self.storedJoins)
            WHERE r.name = \(rotation) AND h.id = \(id)
            """
        ).first.map { try StoredHandoff(row: $0, content: content) }
    }

    public enum AcknowledgeResult: Sendable, Equatable {
        case acknowledged(StoredHandoff)
        case notFound
        case already(by: String, at: Date)
        /// Only the incoming on-call acknowledges as such (this one names them).
        case notIncoming(String?)
    }

    /// Acknowledges a handoff, once: as the incoming on-call (only they do), or `onBehalf` of
    /// them (the caller checks that a lead or up asks).
    public func acknowledge(rotation: String, id: Int64, by userID: Int, onBehalf: Bool = false) async throws -> AcknowledgeResult {
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT h.id, h.acknowledged_at, h.incoming FROM handoffs h JOIN rotations r ON r.id = h.rotation_id
                WHERE r.name = \(rotation) AND h.id = \(id) FOR UPDATE OF h
            ), acked AS (
                UPDATE handoffs SET acknowledged_by = \(userID), acknowledged_at = now(), acknowledged_on_behalf = \(onBehalf)
                WHERE id = (SELECT id FROM target WHERE acknowledged_at IS NULL
                            AND (\(onBehalf) OR incoming = (SELECT username FROM users WHERE id = \(userID))))
                RETURNING id
            )
            SELECT (SELECT count(*) FROM target) AS found, (SELECT count(*) FROM acked) AS acked
            """
        )
        guard try rows[0].decode("found", as: Int.self) == 1, let stored = try await find(rotation: rotation, id: id, content: .facts) else {
            return .notFound
        }
        if try rows[0].decode("acked", as: Int.self) == 1 { return .acknowledged(stored) }
        if stored.acknowledgedAt == nil { return .notIncoming(stored.incoming) }
        return .already(by: stored.acknowledgedBy ?? "?", at: stored.acknowledgedAt ?? stored.generatedAt)
    }
}

extension StoredHandoff {
    init(row: PostgresRow, content: HandoffStore.Content) throws {
        self.init(
            id: try row.decode("id"),
            rotation: try row.decode("rotation"),
            from: try row.decode("window_from"),
            to: try row.decode("window_to"),
            generatedAt: try row.decode("generated_at"),
            generatedBy: try row.decode("generated_by"),
            contentHash: try row.decode("content_hash"),
            incoming: try row.decode("incoming"),
            acknowledgedBy: try row.decode("acknowledged_by"),
            acknowledgedAt: try row.decode("acknowledged_at"),
            acknowledgedOnBehalf: try row.decode("acknowledged_on_behalf"),
            markdown: content == .facts ? nil : try row.decode("markdown"),
            document: content == .document ? try HandoffStore.document(try row.decode("document")) : nil
        )
    }
}
