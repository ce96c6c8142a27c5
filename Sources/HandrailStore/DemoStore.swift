import Foundation
public import HandrailCore
public import Postgres

/// All SQL of `handrail demo`: people, an integration key and rotations to own the history,
/// and the incidents themselves, written in batches (one statement per batch).
public struct DemoStore: Sendable {
    let pool: PostgresPool
    public static let integrationName = "demo"
    public static let people: [(username: String, name: String, role: Role)] = [
        ("ana", "Ana Moreau", .responder), ("ben", "Ben Okafor", .responder), ("cho", "Cho Min-jun", .responder),
        ("dee", "Dee Alvarez", .responder), ("eli", "Eli Virtanen", .responder), ("lena", "Lena Fischer", .lead), ("mia", "Mia Kowalski", .manager),
    ]

    public init(pool: PostgresPool) { self.pool = pool }

    /// Incidents not opened by the demo's integration key (a database with real history).
    public func foreignIncidents() async throws -> Int {
        try await pool.query(
            """
            SELECT count(*) AS n FROM incidents i LEFT JOIN integration_keys k ON k.id = i.opened_by_integration_id
            WHERE k.name IS DISTINCT FROM \(Self.integrationName)
            """
        )[0].decode("n", as: Int.self)
    }

    /// Incidents the demo wrote before.
    public func demoIncidents() async throws -> Int {
        try await pool.query(
            """
            SELECT count(*) AS n FROM incidents i JOIN integration_keys k ON k.id = i.opened_by_integration_id WHERE k.name = \(Self.integrationName)
            """
        )[0].decode("n", as: Int.self)
    }

    /// The demo's people (no password: they cannot sign in), its integration key, and its
    /// rotations, each created only when missing. Returns user ids by name and the key's id.
    public func prepare(rotations: [Rotation]) async throws -> (users: [String: Int], integration: Int) {
        for p in Self.people {
            try await pool.execute(
                """
                INSERT INTO users (username, display_name, role) VALUES (\(p.username), \(p.name), \(p.role.rawValue)::user_role)
                ON CONFLICT (username) DO NOTHING
                """
            )
        }
        var users: [String: Int] = [:]
        for row in try await pool.query("SELECT id, username FROM users WHERE username = ANY(\(Self.people.map(\.username))::text[])") {
            users[try row.decode("username")] = try row.decode("id")
        }
        let key = try await pool.query(
            """
            WITH existing AS (SELECT id FROM integration_keys WHERE name = \(Self.integrationName) AND revoked_at IS NULL),
            created AS (
                INSERT INTO integration_keys (name, kind, key_hash, display_prefix)
                SELECT \(Self.integrationName), 'generic', \(Digest.sha256Hex(UUID().uuidString)), 'demo' WHERE NOT EXISTS (SELECT 1 FROM existing)
                RETURNING id
            )
            SELECT id FROM existing UNION ALL SELECT id FROM created
            """
        )[0].decode("id", as: Int.self)
        let store = RotationStore(pool: pool)
        for r in rotations where try await store.find(name: r.name) == nil {
            _ = try await store.save(r, create: true, by: AuditActor(userID: nil, name: "demo", remoteAddress: nil))
        }
        return (users, key)
    }

    struct Row: Encodable {
        var number: Int64
        var incident: DemoIncident
        var events: [Event]
    }

    struct Event: Encodable {
        var at: Double
        var type: String
        var actor: String
        var user: Int?
        var data: [String: String]
    }

    /// Writes one batch of incidents with their alerts, roles, step marks, decisions,
    /// postmortems and timelines.
    public func write(_ batch: [DemoIncident], users: [String: Int], integration: Int) async throws {
        guard !batch.isEmpty else { return }
        try await pool.withTransaction { tx in
            let numbers = try await tx.query("SELECT nextval('incident_numbers') AS n FROM generate_series(1, \(batch.count))").map {
                try $0.decode("n", as: Int64.self)
            }
            let rows = zip(numbers, batch).map { number, i in Row(number: number, incident: i, events: Self.events(i, users: users)) }
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .secondsSince1970
            let json = String(decoding: try encoder.encode(rows), as: UTF8.self)
            // One statement: the batch is parsed once, and every child row joins the incident
            // rows this statement inserts (RETURNING), by number.
            try await tx.execute(
                """
                WITH input AS (SELECT value AS r FROM jsonb_array_elements(\(json)::jsonb)),
                ins AS (
                    INSERT INTO incidents (number, grouping_key, group_rule, title, state, severity, labels, runbook_id, runbook_version, runbook_reason,
                                           auto_resolve, reopen_window, opened_by_integration_id, opened_at, acknowledged_at, resolved_at, owners_rotation)
                    SELECT (r->>'number')::bigint, r->'incident'->>'groupingKey', 'group_by [alertname, model] (demo)', r->'incident'->>'title',
                           CASE WHEN r->'incident' ? 'resolvedAt' THEN 'resolved' WHEN r->'incident' ? 'acknowledgedAt' THEN 'acknowledged' ELSE 'triggered' END::incident_state,
                           r->'incident'->>'severity', r->'incident'->'labels', r->'incident'->>'runbookID', (r->'incident'->>'runbookVersion')::int,
                           'demo history', true, 3600, \(integration), to_timestamp((r->'incident'->>'openedAt')::float8),
                           to_timestamp((r->'incident'->>'acknowledgedAt')::float8), to_timestamp((r->'incident'->>'resolvedAt')::float8),
                           r->'incident'->>'rotation'
                    FROM input
                    RETURNING id, number, title, resolved_at
                ),
                inc AS (SELECT ins.*, input.r FROM ins JOIN input ON (input.r->>'number')::bigint = ins.number),
                alerts_added AS (
                    INSERT INTO alerts (incident_id, integration_id, source, fingerprint, status, alertname, labels, annotations, value, severity,
                                        grouping_key, group_rule, starts_at, first_seen_at, last_seen_at, delivery_count, cleared_at, cleared_by)
                    SELECT inc.id, \(integration), 'generic', a->>'fingerprint', CASE WHEN a ? 'cleared' THEN 'resolved' ELSE 'firing' END,
                           a->'labels'->>'alertname', a->'labels', '{}', (a->>'value')::float8, r->'incident'->>'severity', r->'incident'->>'groupingKey',
                           'group_by [alertname, model] (demo)', to_timestamp((a->>'firstSeen')::float8), to_timestamp((a->>'firstSeen')::float8),
                           coalesce(to_timestamp((a->>'cleared')::float8), to_timestamp((a->>'firstSeen')::float8)), (a->>'deliveries')::int,
                           to_timestamp((a->>'cleared')::float8), CASE WHEN a ? 'cleared' THEN 'source' END
                    FROM inc, jsonb_array_elements(inc.r->'incident'->'alerts') a
                ),
                roles AS (
                    INSERT INTO incident_roles (incident_id, role, user_id, assigned_by, assigned_at, accepted_at)
                    SELECT inc.id, 'owner', u.id, 'rotation ' || (r->'incident'->>'rotation'), to_timestamp((r->'incident'->>'openedAt')::float8),
                           to_timestamp((r->'incident'->>'acknowledgedAt')::float8)
                    FROM inc JOIN users u ON u.username = r->'incident'->>'owner'
                ),
                marks AS (
                    INSERT INTO incident_step_marks (incident_id, step, outcome, note, user_id, at)
                    SELECT inc.id, (m->>'step')::int, m->>'outcome', m->>'note', u.id, to_timestamp((m->>'at')::float8)
                    FROM inc, jsonb_array_elements(r->'incident'->'marks') m JOIN users u ON u.username = m->>'by'
                ),
                events AS (
                    INSERT INTO incident_events (incident_id, at, type, actor, actor_user_id, actor_integration_id, data)
                    SELECT inc.id, to_timestamp((e->>'at')::float8), e->>'type', e->>'actor', (e->>'user')::bigint,
                           CASE WHEN e ? 'user' THEN NULL ELSE \(integration)::bigint END,
                           -- A step mark says its step as a number, with the step's title, as marking one does.
                           CASE WHEN e->>'type' = 'step_marked'
                                THEN jsonb_strip_nulls(e->'data' || jsonb_build_object('step', (e->'data'->>'step')::int,
                                     'title', v.definition->'steps'->((e->'data'->>'step')::int - 1)->>'title'))
                                ELSE e->'data' END
                    FROM inc CROSS JOIN LATERAL jsonb_array_elements(r->'events') WITH ORDINALITY AS x(e, ord)
                    LEFT JOIN runbook_versions v ON v.runbook_id = inc.r->'incident'->>'runbookID'
                                                AND v.version = (inc.r->'incident'->>'runbookVersion')::int
                    ORDER BY inc.id, x.ord
                ),
                dec AS (SELECT inc.id, r->'incident'->'decision' AS d FROM inc WHERE r->'incident' ? 'decision'),
                decided AS (
                    INSERT INTO decisions (incident_id, kind, target_model, from_version, to_version, rationale, decided_by, decided_by_role,
                                           decided_at, verification_window)
                    SELECT dec.id, (d->>'kind')::decision_kind, d->>'model', d->>'fromVersion', d->>'toVersion', d->>'rationale', u.id, 'lead',
                           to_timestamp((d->>'at')::float8), 1800
                    FROM dec JOIN users u ON u.username = d->>'by'
                    RETURNING id, incident_id
                ),
                executed AS (
                    INSERT INTO decision_executions (decision_id, executed_by, executed_at)
                    SELECT decided.id, u.id, to_timestamp((dec.d->>'executedAt')::float8)
                    FROM decided JOIN dec ON dec.id = decided.incident_id JOIN users u ON u.username = 'lena'
                    WHERE dec.d ? 'executedAt'
                    RETURNING decision_id
                ),
                outcomes AS (
                    INSERT INTO decision_outcomes (decision_id, outcome, proposed, check_text, confirmed_by, confirmed_at)
                    SELECT e.decision_id, dec.d->>'outcome', dec.d->>'outcome', 'demo history', u.id, to_timestamp((dec.d->>'executedAt')::float8 + 1800)
                    FROM executed e JOIN decided ON decided.id = e.decision_id JOIN dec ON dec.id = decided.incident_id JOIN users u ON u.username = 'lena'
                    WHERE dec.d ? 'outcome'
                ),
                pm AS (
                    INSERT INTO postmortems (incident_id, facts, created_by, created_at)
                    SELECT inc.id, jsonb_build_object('ref', 'INC-' || inc.number, 'title', inc.title, 'demo', true), u.id, inc.resolved_at + interval '1 day'
                    FROM inc JOIN users u ON u.username = 'lena'
                    WHERE (r->'incident'->>'postmortem')::boolean
                    RETURNING id, incident_id
                ),
                sections AS (
                    INSERT INTO postmortem_section_edits (postmortem_id, section, markdown, edited_by, edited_at)
                    SELECT pm.id, 'root_cause', 'A feature pipeline change shipped without a schema check.', u.id, inc.resolved_at + interval '2 days'
                    FROM pm JOIN inc ON inc.id = pm.incident_id JOIN users u ON u.username = 'lena'
                )
                INSERT INTO action_items (postmortem_id, title, owner_user_id, due_date, status, created_by, created_at, closed_at)
                SELECT pm.id, 'Add a schema check for ' || (inc.r->'incident'->'labels'->>'model'), u.id, (inc.resolved_at + interval '21 days')::date,
                       CASE WHEN inc.resolved_at < now() - interval '30 days' THEN 'done' ELSE 'open' END, u.id, inc.resolved_at + interval '2 days',
                       CASE WHEN inc.resolved_at < now() - interval '30 days' THEN inc.resolved_at + interval '20 days' END
                FROM pm JOIN inc ON inc.id = pm.incident_id JOIN users u ON u.username = coalesce(inc.r->'incident'->>'owner', 'lena')
                """
            )
        }
    }

    /// Fresh planner statistics after a bulk load.
    public func analyze() async throws {
        try await pool.execute("ANALYZE")
    }

    /// The timeline of one demo incident, in order.
    static func events(_ i: DemoIncident, users: [String: Int]) -> [Event] {
        var out: [Event] = []
        let t = { (d: Date) in d.timeIntervalSince1970 }
        out.append(
            Event(at: t(i.openedAt), type: "opened", actor: DemoStore.integrationName, user: nil, data: ["title": i.title, "severity": i.severity])
        )
        if let owner = i.owner, let rotation = i.rotation {
            out.append(
                Event(
                    at: t(i.openedAt),
                    type: "role_changed",
                    actor: DemoStore.integrationName,
                    user: nil,
                    data: ["role": "owner", "action": "rotation", "to": owner, "rotation": rotation]
                )
            )
        }
        for a in i.alerts {
            out.append(
                Event(
                    at: t(a.firstSeen),
                    type: "alert_added",
                    actor: DemoStore.integrationName,
                    user: nil,
                    data: ["fingerprint": a.fingerprint, "alertname": a.labels["alertname"] ?? ""]
                )
            )
        }
        let worker = i.owner ?? i.marks.first?.by ?? "ana"
        if let ack = i.acknowledgedAt { out.append(Event(at: t(ack), type: "acknowledged", actor: worker, user: users[worker], data: [:])) }
        for m in i.marks {
            var data = ["step": String(m.step), "outcome": m.outcome]
            data["note"] = m.note
            out.append(Event(at: t(m.at), type: "step_marked", actor: m.by, user: users[m.by], data: data))
        }
        if let d = i.decision {
            out.append(
                Event(at: t(d.at), type: "decision_recorded", actor: d.by, user: users[d.by], data: ["kind": d.kind, "rationale": d.rationale])
            )
            if let e = d.executedAt { out.append(Event(at: t(e), type: "decision_executed", actor: d.by, user: users[d.by], data: [:])) }
        }
        for a in i.alerts {
            if let c = a.cleared {
                out.append(Event(at: t(c), type: "alert_cleared", actor: DemoStore.integrationName, user: nil, data: ["fingerprint": a.fingerprint]))
            }
        }
        if let r = i.resolvedAt, let by = i.resolvedBy {
            out.append(Event(at: t(r), type: "resolved", actor: by, user: users[by], data: ["note": "back to normal"]))
        }
        return out.sorted { $0.at < $1.at }
    }
}
