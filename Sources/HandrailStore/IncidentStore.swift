public import Foundation
public import HandrailCore
public import Postgres

/// An incident as lists show it.
public struct IncidentSummary: Sendable, Equatable, Codable {
    public var number: Int64
    public var ref: String
    public var title: String
    public var state: IncidentState
    public var severity: Severity
    public var groupingKey: String
    public var labels: [String: String]
    public var runbookId: String?
    public var runbookVersion: Int?
    /// Who holds the incident (its commander); nil: unowned.
    public var owner: String?
    /// The owner was assigned and has not accepted yet ("awaiting acceptance").
    public var ownerPending: Bool
    public var openedAt: Date
    public var acknowledgedAt: Date?
    public var mitigatedAt: Date?
    public var resolvedAt: Date?
    public var reopenCount: Int
    public var openAlerts: Int
    public var alertCount: Int
    public var deliveryCount: Int
    public var lastSeenAt: Date?
}

/// The Now page (`IncidentStore.now`).
public struct NowLists: Sendable, Equatable {
    /// The first open incidents, in triage order.
    public var open: [IncidentSummary]
    public var openCount: Int
    /// The newest resolved incidents.
    public var resolved: [IncidentSummary]
    /// The newest timeline event when the lists were read.
    public var watermark: Int64
}

/// The Now page's lists as they are now (`IncidentStore.nowUpdate`): each entry's summary
/// only where the page asked for it.
public struct NowUpdate: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var number: Int64
        /// nil: the page shows this incident already, unchanged.
        public var summary: IncidentSummary?
    }
    public var open: [Entry]
    public var openCount: Int
    public var resolved: [Entry]
}

/// One alert of an incident.
public struct IncidentAlert: Sendable, Equatable, Codable {
    public var fingerprint: String
    public var integration: String
    public var source: IntegrationKind
    public var status: AlertStatus
    public var alertname: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var value: Double?
    public var values: [String: Double]
    public var links: [String: String]
    public var generatorUrl: String?
    public var severity: Severity
    public var groupRule: String
    public var startsAt: Date?
    public var endsAt: Date?
    public var firstSeenAt: Date
    public var lastSeenAt: Date
    public var deliveryCount: Int
    public var clearedAt: Date?
    public var clearedBy: String?
}

/// One entry of an incident's log.
public struct IncidentEvent: Sendable, Equatable, Codable {
    public var id: Int64
    public var at: Date
    public var type: IncidentEventType
    public var actor: String
    public var actorKind: ActorKind
    public var data: JSONValue
}

/// What an open incident page lacks (`IncidentStore.updates`).
public struct IncidentUpdates: Sendable, Equatable {
    /// Timeline events, oldest first.
    public var events: [IncidentEvent]
    /// The incident's alerts, when the events changed them.
    public var alerts: [IncidentAlert]?
    /// The runbook the incident follows, with the alerts (their thresholds).
    public var runbook: Runbook?

    public init(events: [IncidentEvent], alerts: [IncidentAlert]? = nil, runbook: Runbook? = nil) {
        self.events = events
        self.alerts = alerts
        self.runbook = runbook
    }
}

/// One runbook step of an incident, with its latest mark.
public struct IncidentStep: Sendable, Equatable, Codable {
    public var index: Int
    public var title: String
    public var markdown: String
    /// done, skipped or failed; nil while not marked (or after an undo).
    public var outcome: StepOutcome?
    public var note: String?
    public var by: String?
    public var at: Date?
}

/// Everything about one incident.
public struct IncidentDetail: Sendable, Equatable, Codable {
    public struct RunbookRef: Sendable, Equatable, Codable {
        public var id: String
        public var version: Int
        public var title: String
        public var currentVersion: Int
    }

    public var incident: IncidentSummary
    /// Who holds which role now (owner first); the history is on the timeline.
    public var roles: [IncidentRoleHolder]
    public var runbook: RunbookRef?
    public var runbookReason: String
    /// The rotation that owns it (the runbook's `owners` when it opened).
    public var ownersRotation: String?
    public var groupRule: String
    public var autoResolve: Bool
    public var reopenWindow: Int
    public var alerts: [IncidentAlert]
    public var steps: [IncidentStep]
    /// The timeline, oldest first: all of it, or the newest entries `detail` was asked for.
    public var timeline: [IncidentEvent]
    /// How many entries the whole timeline has.
    public var timelineCount: Int
}

/// What lists filter on. Every field is optional; all given ones must hold.
public struct IncidentFilter: Sendable, Equatable {
    public var states: [IncidentState] = []
    public var severity: Severity?
    public var runbook: String?
    public var service: String?
    public var model: String?
    public var owner: String?
    /// Words the title contains, case-insensitively (as typed; `%` and `_` match themselves).
    public var text: String?
    public var openedSince: Date?
    public var openedUntil: Date?
    /// Incidents numbered below this (the previous page's `next_cursor`).
    public var before: Int64?
    public var limit: Int = 50

    public init() {}
}

/// Who changes an incident: a person (API, UI, CLI) or an integration (PagerDuty events).
public enum IncidentActor: Sendable, Equatable {
    case user(id: Int, username: String)
    case integration(Integration)

    var name: String {
        switch self {
        case .user(_, let username): username
        case .integration(let integration): integration.name
        }
    }
    var userID: Int? { if case .user(let id, _) = self { id } else { nil } }
    var integrationID: Int? { if case .integration(let integration) = self { integration.id } else { nil } }
}

/// All SQL about incidents after they are opened: reads, people's changes, runbook steps.
public struct IncidentStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let summaryColumns: StaticString = """
        i.id, i.number, i.title, i.state::text AS state, i.severity, i.grouping_key, i.labels, i.runbook_id, i.runbook_version,
        o.username AS owner, (ro.user_id IS NOT NULL AND ro.accepted_at IS NULL) AS owner_pending, i.opened_at, i.acknowledged_at, i.mitigated_at, i.resolved_at, i.reopen_count,
        a.open_alerts, a.alert_count, a.delivery_count, a.last_seen_at
        """
    static let summaryJoins: StaticString = """
        LEFT JOIN incident_roles ro ON ro.incident_id = i.id AND ro.role = 'owner'
        LEFT JOIN users o ON o.id = ro.user_id
        LEFT JOIN LATERAL (
            SELECT count(*) FILTER (WHERE cleared_at IS NULL) AS open_alerts, count(*) AS alert_count,
                   coalesce(sum(delivery_count), 0) AS delivery_count, max(last_seen_at) AS last_seen_at
            FROM alerts WHERE incident_id = i.id
        ) a ON true
        """

    /// incident.open-count — how many incidents are open (for /metrics).
    public func openCount() async throws -> Int {
        try await pool.query("SELECT count(*) AS n FROM incidents WHERE state <> 'resolved'")[0].decode("n", as: Int.self)
    }

    /// incident.id — the internal id of incident `number` (what change notifications carry).
    public func id(number: Int64) async throws -> Int64? {
        try await pool.query("SELECT id FROM incidents WHERE number = \(number)").first?.decode("id", as: Int64.self)
    }

    /// incident.watermark — the newest timeline event of all incidents (0 when none): a
    /// page reads it before its data, so its live stream can tell what the page missed.
    public func newestEventID() async throws -> Int64 {
        try await pool.query("SELECT coalesce(max(id), 0) AS id FROM incident_events")[0].decode("id", as: Int64.self)
    }

    /// incident.changed-since — the incidents (only `id`, when given) with a timeline event
    /// newer than `watermark`; nil when there are more than 1,000 such events (anything may
    /// have changed).
    public func changedIncidents(since watermark: Int64, incident id: Int64?) async throws -> Set<Int64>? {
        let rows = try await pool.query(
            """
            SELECT incident_id FROM incident_events WHERE id > \(watermark) AND (\(id)::bigint IS NULL OR incident_id = \(id))
            ORDER BY id LIMIT 1001
            """
        )
        return rows.count > 1000 ? nil : Set(try rows.map { try $0.decode("incident_id", as: Int64.self) })
    }

    /// incident.now — the Now page in one statement: the first `limit` open incidents in
    /// the order a responder works them (what nobody has acknowledged yet, triggered or
    /// reopened, then the most severe, then the oldest), how many are open in all, the
    /// `resolved` newest resolved, and the newest timeline event (the page's live stream
    /// resumes from it; read in the same snapshot as the lists, so whatever they miss is newer).
    /// One statement, not four: each round trip is a wait for a PostgreSQL backend, and on a
    /// busy machine the waits, not the work, made the page's slowest loads.
    public func now(limit: Int, resolved: Int) async throws -> NowLists {
        var lists = NowLists(open: [], openCount: 0, resolved: [], watermark: 0)
        for row in try await pool.query(Self.nowQuery(limit: limit, resolved: resolved)) {
            lists.watermark = try row.decode("watermark")
            lists.openCount = try row.decode("open_count")
            switch try row.decode("list", as: String?.self) {
            case "open": lists.open.append(try IncidentSummary(row: row))
            case "resolved": lists.resolved.append(try IncidentSummary(row: row))
            default: break
            }
        }
        return lists
    }

    /// The Now page's statement: the lists' order as `nowOrderQuery` finds it (by id alone:
    /// sorting whole rows cost 0.86 ms of 1.36 with 170 open, pgbench), then the shown rows,
    /// their owners and alert counts; one row with no list when nothing is shown.
    package static func nowQuery(limit: Int, resolved: Int) -> PostgresQuery {
        let sql = """
            SELECT w.watermark, w.open_count, s.list, \(Self.summaryColumns.description)
            FROM (SELECT (SELECT coalesce(max(id), 0) FROM incident_events) AS watermark,
                         (SELECT count(*) FROM incidents WHERE state <> 'resolved') AS open_count) w
            LEFT JOIN (\(Self.nowLists(limit: limit, resolved: resolved))) s ON true
            LEFT JOIN incidents i ON i.id = s.id
            \(Self.summaryJoins.description)
            ORDER BY s.part, s.pos
            """
        return PostgresQuery(sql: sql, binds: [])
    }

    /// The order a responder works open incidents in (the Now page).
    static let triageOrder: StaticString = """
        i.state IN ('triggered', 'reopened') DESC, CASE i.severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END DESC,
        i.opened_at, i.number
        """

    /// What the Now page shows now, for a page that refreshes only what changed: the first
    /// `limit` open incidents in triage order and the `resolved` newest resolved, each with
    /// its summary only where the page lacks it (its id is in `changed`, or its number is not
    /// in `shown`); and how many are open. A refresh costs the rows that changed, not the page.
    public func nowUpdate(limit: Int, resolved: Int, changed: [Int64], shown: [Int64]) async throws -> NowUpdate {
        try await pool.withConnection { db in
            // Two statements: one bind-free statement keeps its plan; a single one with the
            // page's ids as parameters was planned anew on every refresh (1.1 ms of PostgreSQL
            // CPU of its 1.8 ms, `script/bench pages`).
            let order = try await db.query(Self.nowOrderQuery(limit: limit, resolved: resolved))
            let changed = Set(changed)
            let shown = Set(shown)
            var needed: [Int64] = []
            var entries: [(list: String, id: Int64, number: Int64)] = []
            for row in order {
                let entry = (
                    list: try row.decode("list", as: String.self), id: try row.decode("id", as: Int64.self),
                    number: try row.decode("number", as: Int64.self)
                )
                if changed.contains(entry.id) || !shown.contains(entry.number) { needed.append(entry.id) }
                entries.append(entry)
            }
            var summaries: [Int64: IncidentSummary] = [:]
            if !needed.isEmpty {
                for row in try await db.query(
                    "SELECT \(sql: Self.summaryColumns) FROM incidents i \(sql: Self.summaryJoins) WHERE i.id = ANY(\(needed)::bigint[])"
                ) {
                    summaries[try row.decode("id", as: Int64.self)] = try IncidentSummary(row: row)
                }
            }
            var update = NowUpdate(open: [], openCount: try order.first?.decode("open_count", as: Int.self) ?? 0, resolved: [])
            for e in entries {
                let entry = NowUpdate.Entry(number: e.number, summary: summaries[e.id])
                if e.list == "open" { update.open.append(entry) } else { update.resolved.append(entry) }
            }
            return update
        }
    }

    /// The Now page's lists in order: the first `limit` open incidents in triage order, then
    /// the `resolved` newest resolved, each as id and number, with how many are open.
    package static func nowOrderQuery(limit: Int, resolved: Int) -> PostgresQuery {
        let sql = """
            SELECT s.list, s.id, s.number, (SELECT count(*) FROM incidents WHERE state <> 'resolved') AS open_count
            FROM (\(Self.nowLists(limit: limit, resolved: resolved))) s ORDER BY s.part, s.pos
            """
        return PostgresQuery(sql: sql, binds: [])
    }

    /// The Now page's two lists as rows (list, id, number, part, pos). The limits are written
    /// into the statement (whole numbers, bounded): with no parameter at all, PostgreSQL keeps
    /// one plan for it.
    static func nowLists(limit: Int, resolved: Int) -> String {
        let order = Self.triageOrder.description
        return """
            (SELECT 'open' AS list, i.id, i.number, 0 AS part, row_number() OVER (ORDER BY \(order)) AS pos FROM incidents i
             WHERE i.state <> 'resolved' ORDER BY \(order) LIMIT \(max(1, min(limit, 200))))
            UNION ALL
            (SELECT 'resolved', i.id, i.number, 1, row_number() OVER (ORDER BY i.number DESC) FROM incidents i
             WHERE i.state = 'resolved' ORDER BY i.number DESC LIMIT \(max(1, min(resolved, 200))))
            """
    }

    /// incident.list — newest first, one page.
    public func list(_ f: IncidentFilter) async throws -> [IncidentSummary] {
        try await pool.query(Self.listQuery(f)).map(IncidentSummary.init(row:))
    }

    /// The list's statement: only the filters given, each as the predicate an index knows
    /// (so a prepared plan fits the filters it was made for; a catch-all `$1 IS NULL OR …`
    /// plan fits none). A list of open incidents only (the Now page, `?state=…` without
    /// `resolved`) says so as the partial index `incidents_open_newest` does, so it reads the
    /// open incidents and none of the resolved history; a runbook's list reads
    /// `incidents_by_runbook` from its newest down; the others read from the newest incident
    /// down until the page is full (`IncidentPlanTests`).
    package static func listQuery(_ f: IncidentFilter) -> PostgresQuery {
        var binds: [(any PostgresEncodable)?] = []
        func bind(_ value: (any PostgresEncodable)?) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        var conditions: [String] = []
        if !f.states.isEmpty {
            if !f.states.contains(.resolved) { conditions.append("i.state <> 'resolved'") }
            conditions.append("i.state = ANY(\(bind("{" + f.states.map(\.rawValue).joined(separator: ",") + "}"))::incident_state[])")
        }
        if let v = f.severity { conditions.append("i.severity = \(bind(v.rawValue))") }
        if let v = f.runbook { conditions.append("i.runbook_id = \(bind(v))") }
        if let v = f.service { conditions.append("i.labels->>'service' = \(bind(v))") }
        if let v = f.model { conditions.append("i.labels->>'model' = \(bind(v))") }
        if let v = f.owner { conditions.append("o.username = \(bind(v))") }
        if let text = f.text {
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            conditions.append("i.title ILIKE \(bind("%" + escaped + "%"))")
        }
        if let v = f.openedSince { conditions.append("i.opened_at >= \(bind(v))") }
        if let v = f.openedUntil { conditions.append("i.opened_at < \(bind(v))") }
        if let v = f.before { conditions.append("i.number < \(bind(v))") }
        let sql = """
            SELECT \(Self.summaryColumns) FROM incidents i \(Self.summaryJoins)
            WHERE \(conditions.isEmpty ? "true" : conditions.joined(separator: " AND "))
            ORDER BY i.number DESC
            LIMIT \(max(1, min(f.limit, 200)))
            """
        return PostgresQuery(sql: sql, binds: binds)
    }

    /// incident.related — earlier incidents of the same runbook (or, of one without a
    /// runbook, earlier ones without a runbook and with the same alert name) opened in the
    /// `days` before this one: how many, and the newest few. Each case reads its own index
    /// (`incidents_by_runbook_opened`, `incidents_without_runbook`) over the window only.
    public func related(
        number: Int64,
        days: Int = 30,
        limit: Int = 5
    ) async throws -> (
        key: String, count: Int, newest: [(number: Int64, title: String, openedAt: Date)]
    )? {
        let rows = try await pool.query(Self.relatedQuery(number: number, days: days, limit: limit))
        guard let first = rows.first else { return nil }
        var newest: [(Int64, String, Date)] = []
        for row in rows {
            if let n = try row.decode("number", as: Int64?.self) { newest.append((n, try row.decode("title"), try row.decode("opened_at"))) }
        }
        return (try first.decode("key", as: String?.self) ?? "this alert", try first.decode("n"), newest)
    }

    package static func relatedQuery(number: Int64, days: Int, limit: Int) -> PostgresQuery {
        // The count reads index entries only (no `id <> me.id`: `opened_at < me.opened_at`
        // leaves this incident out already), once (MATERIALIZED; inlined, it ran once per
        // row shown); with one CTE for both parts, a postmortem page fetched every row of
        // the window from the table (420 buffers a page at 100k incidents, now 28).
        """
        WITH me AS (
            SELECT runbook_id, labels->>'alertname' AS alertname, opened_at,
                   opened_at - make_interval(days => \(days)) AS since FROM incidents WHERE number = \(number)
        ), counted AS MATERIALIZED (
            SELECT CASE WHEN me.runbook_id IS NOT NULL THEN
                (SELECT count(*) FROM incidents i
                 WHERE i.runbook_id = me.runbook_id AND i.opened_at < me.opened_at AND i.opened_at >= me.since)
            ELSE
                (SELECT count(*) FROM incidents i
                 WHERE i.runbook_id IS NULL AND i.opened_at < me.opened_at AND i.opened_at >= me.since
                   AND i.labels->>'alertname' = me.alertname)
            END AS n FROM me
        )
        SELECT coalesce(me.runbook_id, me.alertname) AS key, counted.n,
               e.number, e.title, e.opened_at
        FROM me CROSS JOIN counted LEFT JOIN LATERAL (
            (SELECT i.number, i.title, i.opened_at FROM incidents i
             WHERE me.runbook_id IS NOT NULL AND i.runbook_id = me.runbook_id
               AND i.opened_at < me.opened_at AND i.opened_at >= me.since
             ORDER BY i.opened_at DESC LIMIT \(limit))
            UNION ALL
            (SELECT i.number, i.title, i.opened_at FROM incidents i
             WHERE me.runbook_id IS NULL AND i.runbook_id IS NULL
               AND i.opened_at < me.opened_at AND i.opened_at >= me.since AND i.labels->>'alertname' = me.alertname
             ORDER BY i.opened_at DESC LIMIT \(limit))
        ) e ON true
        ORDER BY e.opened_at DESC
        """
    }

    /// incident.show — the incident, its alerts, runbook steps and timeline (the newest
    /// `timelineLimit` entries of it, when given); nil if no such number.
    public func detail(number: Int64, timelineLimit: Int? = nil) async throws -> IncidentDetail? {
        try await pool.withConnection { db in
            guard
                let row = try await db.query(
                    """
                    SELECT \(sql: Self.summaryColumns), i.runbook_reason, i.owners_rotation, i.group_rule, i.auto_resolve, i.reopen_window,
                           v.definition, r.current_version
                    FROM incidents i \(sql: Self.summaryJoins)
                    LEFT JOIN runbook_versions v ON v.runbook_id = i.runbook_id AND v.version = i.runbook_version
                    LEFT JOIN runbooks r ON r.id = i.runbook_id
                    WHERE i.number = \(number)
                    """
                ).first
            else { return nil }
            let id: Int64 = try row.decode("id")
            let summary = try IncidentSummary(row: row)
            var runbook: Runbook?
            var ref: IncidentDetail.RunbookRef?
            if let definition = try row.decode("definition", as: PostgresJSON?.self), let rid = summary.runbookId,
                let version = summary.runbookVersion
            {
                let parsed = try definition.runbook()
                runbook = parsed
                ref = .init(
                    id: rid,
                    version: version,
                    title: parsed.title,
                    currentVersion: try row.decode("current_version", as: Int?.self) ?? version
                )
            }
            let alerts = try await Self.alerts(incidentID: id, on: db)
            let marks = try await db.query(
                """
                SELECT DISTINCT ON (m.step) m.step, m.outcome, m.note, m.at, u.username
                FROM incident_step_marks m JOIN users u ON u.id = m.user_id
                WHERE m.incident_id = \(id) ORDER BY m.step, m.id DESC
                """
            )
            var latest: [Int: PostgresRow] = [:]
            for mark in marks { latest[try mark.decode("step", as: Int.self)] = mark }
            let steps = try (runbook?.steps ?? []).map { step in
                let mark = latest[step.index]
                let outcome = try mark?.decode("outcome", as: StepOutcome.self)
                let active = outcome != nil && outcome != .undone
                return IncidentStep(
                    index: step.index,
                    title: step.title,
                    markdown: step.markdown,
                    outcome: active ? outcome : nil,
                    note: active ? try mark?.decode("note", as: String?.self) : nil,
                    by: try mark?.decode("username", as: String.self),
                    at: try mark?.decode("at", as: Date.self)
                )
            }
            let timelineRows = try await db.query(
                """
                SELECT *, (SELECT count(*) FROM incident_events WHERE incident_id = \(id)) AS total FROM (
                    SELECT \(sql: Self.eventColumns)
                    FROM incident_events WHERE incident_id = \(id) ORDER BY id DESC LIMIT \(timelineLimit.map { max(0, $0) })
                ) newest ORDER BY id
                """
            )
            let timeline = try timelineRows.map(IncidentEvent.init(row:))
            let timelineCount = try timelineRows.first?.decode("total", as: Int.self) ?? 0
            let roles = try await roles(incidentID: id, on: db)
            return IncidentDetail(
                incident: summary,
                roles: roles,
                runbook: ref,
                runbookReason: try row.decode("runbook_reason"),
                ownersRotation: try row.decode("owners_rotation"),
                groupRule: try row.decode("group_rule"),
                autoResolve: try row.decode("auto_resolve"),
                reopenWindow: try row.decode("reopen_window"),
                alerts: alerts,
                steps: steps,
                timeline: timeline,
                timelineCount: timelineCount
            )
        }
    }

    static let eventColumns: StaticString = """
        id, at, type, actor, data,
        CASE WHEN actor_user_id IS NOT NULL THEN 'user' WHEN actor_integration_id IS NOT NULL THEN 'integration' ELSE 'system' END AS actor_kind
        """

    static func alerts(incidentID id: Int64, on db: PostgresConnection) async throws -> [IncidentAlert] {
        try await db.query(
            """
            SELECT a.*, k.name AS integration_name, a.source::text AS source_text FROM alerts a JOIN integration_keys k ON k.id = a.integration_id
            WHERE a.incident_id = \(id) ORDER BY a.id
            """
        ).map(IncidentAlert.init(row:))
    }

    /// incident.updates — what an open incident page lacks: incident `number`'s timeline
    /// events newer than `after` (the first `limit` of them) and, when any of them added or
    /// cleared alerts, its alerts and the runbook their thresholds come from; nil if no such
    /// number.
    public func updates(number: Int64, after: Int64, limit: Int) async throws -> IncidentUpdates? {
        try await pool.withConnection { db in
            // The incident and its new events in one statement (no row: no such incident).
            let rows = try await db.query(
                """
                SELECT i.id AS incident_id, e.* FROM incidents i LEFT JOIN LATERAL (
                    SELECT \(sql: Self.eventColumns) FROM incident_events WHERE incident_id = i.id AND id > \(after)
                    ORDER BY id LIMIT \(max(1, limit))
                ) e ON true
                WHERE i.number = \(number)
                """
            )
            guard let id = try rows.first?.decode("incident_id", as: Int64.self) else { return nil }
            let events = try rows.filter { try $0.decode("id", as: Int64?.self) != nil }.map(IncidentEvent.init(row:))
            guard events.contains(where: { [.alertAdded, .alertCleared, .allAlertsCleared].contains($0.type) }) else {
                return IncidentUpdates(events: events)
            }
            let definition = try await db.query(
                """
                SELECT v.definition FROM incidents i JOIN runbook_versions v ON v.runbook_id = i.runbook_id AND v.version = i.runbook_version
                WHERE i.id = \(id)
                """
            ).first?.decode("definition", as: PostgresJSON.self)
            return IncidentUpdates(
                events: events,
                alerts: try await Self.alerts(incidentID: id, on: db),
                runbook: try definition?.runbook()
            )
        }
    }

    public enum ChangeResult: Sendable, Equatable {
        case changed
        case notFound
        /// The incident is in a state the change does not start from.
        case refused(current: IncidentState)
    }

    /// incident.transition — acknowledge, mitigate or resolve, with an optional note, in one
    /// statement: the state, the timeline event and (on resolve) closing the open alerts.
    public func transition(number: Int64, _ transition: IncidentTransition, note: String?, by actor: IncidentActor) async throws -> ChangeResult {
        let target = transition.target.rawValue
        let from = transition.from.map(\.rawValue)
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT id, state::text AS state FROM incidents WHERE number = \(number) FOR NO KEY UPDATE
            ), changed AS (
                UPDATE incidents i SET state = \(target)::incident_state,
                    acknowledged_at = CASE WHEN \(target) = 'acknowledged' THEN now() ELSE i.acknowledged_at END,
                    mitigated_at = CASE WHEN \(target) = 'mitigated' THEN now() ELSE i.mitigated_at END,
                    resolved_at = CASE WHEN \(target) = 'resolved' THEN now() ELSE NULL END
                FROM target t WHERE i.id = t.id AND t.state = ANY(\(from)::text[])
                RETURNING i.id
            ), closed AS (
                UPDATE alerts SET status = 'resolved', cleared_at = now(), cleared_by = 'incident'
                WHERE \(target) = 'resolved' AND incident_id IN (SELECT id FROM changed) AND cleared_at IS NULL
                RETURNING id
            ), accepted AS (
                -- Acknowledging is how an assigned person accepts: every role of theirs still
                -- awaiting acceptance on this incident is accepted with it.
                UPDATE incident_roles r SET accepted_at = clock_timestamp()
                FROM changed c
                WHERE \(target) = 'acknowledged' AND r.incident_id = c.id AND r.user_id = \(actor.userID)::bigint AND r.accepted_at IS NULL
                RETURNING r.incident_id, r.role
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, actor_integration_id, data)
                SELECT id, \(target), \(actor.name), \(actor.userID)::bigint, \(actor.integrationID)::bigint,
                       jsonb_strip_nulls(jsonb_build_object('note', \(note)::text, 'alerts_closed', (SELECT count(*) FROM closed)))
                FROM changed
                UNION ALL
                SELECT incident_id, 'role_accepted', \(actor.name), \(actor.userID)::bigint, NULL,
                       jsonb_build_object('role', role, 'user', \(actor.name)::text, 'by_acknowledging', true)
                FROM accepted
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), e.incident_id::text) FROM (SELECT DISTINCT incident_id FROM event) e) s
            )
            SELECT t.state, (SELECT count(*) FROM changed) AS changed, (SELECT n FROM notified) AS notified FROM target t
            """
        )
        guard let row = rows.first else { return .notFound }
        if try row.decode("changed", as: Int.self) == 1 { return .changed }
        return .refused(current: try row.decode("state"))
    }

    /// incident.note — a note on the timeline; false when there is no such incident.
    public func addNote(number: Int64, text: String, by actor: IncidentActor) async throws -> Bool {
        let rows = try await pool.query(
            """
            WITH event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, actor_integration_id, data)
                SELECT id, 'note', \(actor.name), \(actor.userID)::bigint, \(actor.integrationID)::bigint, jsonb_build_object('text', \(text)::text)
                FROM incidents WHERE number = \(number)
                RETURNING incident_id
            )
            SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            """
        )
        return try rows.first?.decode("n", as: Int.self) == 1
    }

    public enum StepResult: Sendable, Equatable {
        case marked
        case notFound
        case noRunbook
        /// The pinned runbook version has fewer steps.
        case noSuchStep(count: Int)
        /// An undo with nothing to undo.
        case nothingToUndo
    }

    /// step.mark — a person's mark on one step of the incident's pinned runbook version, and
    /// its timeline event, in one statement. Marks are never edited; an undo is a new mark.
    public func markStep(number: Int64, step: Int, outcome: StepOutcome, note: String?, userID: Int, username: String) async throws -> StepResult {
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT i.id, i.runbook_id, jsonb_array_length(coalesce(v.definition->'steps', '[]')) AS steps,
                       v.definition->'steps'->(\(step)::int - 1)->>'title' AS title,
                       (SELECT m.outcome FROM incident_step_marks m WHERE m.incident_id = i.id AND m.step = \(step) ORDER BY m.id DESC LIMIT 1) AS latest
                FROM incidents i LEFT JOIN runbook_versions v ON v.runbook_id = i.runbook_id AND v.version = i.runbook_version
                WHERE i.number = \(number)
            ), mark AS (
                INSERT INTO incident_step_marks (incident_id, step, outcome, note, user_id)
                SELECT id, \(step), \(outcome.rawValue), \(note), \(userID) FROM target
                WHERE runbook_id IS NOT NULL AND \(step) <= steps
                  AND (\(outcome.rawValue) <> 'undone' OR coalesce(latest, 'undone') <> 'undone')
                RETURNING incident_id
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                SELECT m.incident_id, 'step_marked', \(username), \(userID)::bigint,
                       jsonb_strip_nulls(jsonb_build_object('step', \(step)::int, 'title', t.title, 'outcome', \(outcome.rawValue)::text,
                                                            'note', \(note)::text, 'previous', t.latest))
                FROM mark m JOIN target t ON t.id = m.incident_id
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT t.runbook_id, t.steps, (SELECT count(*) FROM event) AS marked, (SELECT n FROM notified) AS notified FROM target t
            """
        )
        guard let row = rows.first else { return .notFound }
        if try row.decode("marked", as: Int.self) == 1 { return .marked }
        if try row.decode("runbook_id", as: String?.self) == nil { return .noRunbook }
        let count = try row.decode("steps", as: Int.self)
        if step > count { return .noSuchStep(count: count) }
        return .nothingToUndo
    }

    /// pagerduty.acknowledge — acknowledges the open incident of the integration's open alert
    /// with that dedup_key. Nothing changes when the key has no open alert, or the incident
    /// is already past `triggered`. Returns the incident number when it changed.
    public func acknowledgeAlert(integration: Integration, dedupKey: String, requestID: String?) async throws -> Int64? {
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT i.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
                WHERE a.integration_id = \(integration.id) AND a.fingerprint = \(dedupKey) AND a.cleared_at IS NULL
                  AND i.state IN ('triggered', 'reopened')
                FOR NO KEY UPDATE OF i
            ), acked AS (
                UPDATE incidents i SET state = 'acknowledged', acknowledged_at = now()
                FROM target t WHERE i.id = t.id AND i.state IN ('triggered', 'reopened')
                RETURNING i.id, i.number
            ), seen AS (
                UPDATE alerts SET delivery_count = delivery_count + 1, last_seen_at = now()
                WHERE integration_id = \(integration.id) AND fingerprint = \(dedupKey) AND cleared_at IS NULL
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_integration_id, data)
                SELECT id, 'acknowledged', \(integration.name), \(integration.id), jsonb_build_object('dedup_key', \(dedupKey)::text) FROM acked
                RETURNING incident_id
            ), delivery AS (
                INSERT INTO deliveries (integration_id, source, request_id, outcome, alert_count, detail)
                VALUES (\(integration.id), 'pagerduty', \(requestID), 'stored', 1, jsonb_build_object('action', 'acknowledge', 'dedup_key', \(dedupKey)::text))
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT a.number, (SELECT n FROM notified) AS notified FROM acked a
            UNION ALL SELECT NULL, (SELECT n FROM notified) WHERE NOT EXISTS (SELECT 1 FROM acked)
            """
        )
        return try rows.first?.decode("number", as: Int64?.self)
    }

    /// change.record — a change event (a deploy, a config push) on the timeline of every
    /// open incident that has an alert from this integration. Opens nothing.
    public func recordChange(integration: Integration, summary: String, data: JSONValue, requestID: String?) async throws -> [Int64] {
        let json = try PostgresJSON(encoding: data).text
        return try await pool.query(
            """
            WITH targets AS (
                SELECT DISTINCT i.id, i.number FROM incidents i JOIN alerts a ON a.incident_id = i.id
                WHERE i.state <> 'resolved' AND a.integration_id = \(integration.id)
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_integration_id, data)
                SELECT id, 'change', \(integration.name), \(integration.id), \(json)::jsonb FROM targets
                RETURNING incident_id
            ), delivery AS (
                INSERT INTO deliveries (integration_id, source, request_id, outcome, detail)
                VALUES (\(integration.id), \(integration.kind.rawValue)::integration_kind, \(requestID), 'stored',
                        jsonb_build_object('action', 'change', 'summary', \(summary)::text))
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT t.number, (SELECT n FROM notified) AS notified FROM targets t ORDER BY t.number
            """
        ).map { try $0.decode("number", as: Int64.self) }
    }
}

extension IncidentSummary {
    init(row: PostgresRow) throws {
        let number: Int64 = try row.decode("number")
        self.init(
            number: number,
            ref: IncidentRef.display(number),
            title: try row.decode("title"),
            state: try row.decode("state"),
            severity: try row.decode("severity"),
            groupingKey: try row.decode("grouping_key"),
            labels: try row.decode("labels", as: PostgresJSON.self).stringMap(),
            runbookId: try row.decode("runbook_id"),
            runbookVersion: try row.decode("runbook_version"),
            owner: try row.decode("owner"),
            ownerPending: try row.decode("owner_pending"),
            openedAt: try row.decode("opened_at"),
            acknowledgedAt: try row.decode("acknowledged_at"),
            mitigatedAt: try row.decode("mitigated_at"),
            resolvedAt: try row.decode("resolved_at"),
            reopenCount: try row.decode("reopen_count"),
            openAlerts: try row.decode("open_alerts"),
            alertCount: try row.decode("alert_count"),
            deliveryCount: try row.decode("delivery_count"),
            lastSeenAt: try row.decode("last_seen_at")
        )
    }
}

extension IncidentAlert {
    init(row: PostgresRow) throws {
        self.init(
            fingerprint: try row.decode("fingerprint"),
            integration: try row.decode("integration_name"),
            source: try row.decode("source_text"),
            status: try row.decode("status"),
            alertname: try row.decode("alertname"),
            labels: try row.decode("labels", as: PostgresJSON.self).stringMap(),
            annotations: try row.decode("annotations", as: PostgresJSON.self).stringMap(),
            value: try row.decode("value"),
            values: try row.decode("values", as: PostgresJSON.self).numberMap(),
            links: try row.decode("links", as: PostgresJSON.self).stringMap(),
            generatorUrl: try row.decode("generator_url"),
            severity: try row.decode("severity"),
            groupRule: try row.decode("group_rule"),
            startsAt: try row.decode("starts_at"),
            endsAt: try row.decode("ends_at"),
            firstSeenAt: try row.decode("first_seen_at"),
            lastSeenAt: try row.decode("last_seen_at"),
            deliveryCount: try row.decode("delivery_count"),
            clearedAt: try row.decode("cleared_at"),
            clearedBy: try row.decode("cleared_by")
        )
    }
}

extension IncidentEvent {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            at: try row.decode("at"),
            type: try row.decode("type"),
            actor: try row.decode("actor"),
            actorKind: try row.decode("actor_kind"),
            data: try row.decode("data", as: PostgresJSON.self).value()
        )
    }
}

extension PostgresJSON {
    /// Any stored JSON through `JSONParser`: timeline entries' details through `JSONDecoder`
    /// were 24 % of the server's CPU for an incident page (script/bench pages).
    func value() throws -> JSONValue {
        do { return try JSONParser.parse(Data(text.utf8)) } catch {
            throw PostgresError(kind: .decoding, message: "stored JSON does not parse at byte \(error.offset)")
        }
    }

    /// A JSON object of strings (labels, annotations, links) through `JSONParser`: with
    /// `JSONDecoder` the labels were 17 % of a Now page's server CPU (60 rows).
    func stringMap() throws -> [String: String] {
        guard case .object(let members) = try value() else {
            throw PostgresError(kind: .decoding, message: "a stored map is not a JSON object")
        }
        return try members.mapValues {
            guard case .string(let s) = $0 else { throw PostgresError(kind: .decoding, message: "a stored map holds a value that is not text") }
            return s
        }
    }

    /// A JSON object of numbers (an alert's values), as `stringMap` reads strings.
    func numberMap() throws -> [String: Double] {
        guard case .object(let members) = try value() else {
            throw PostgresError(kind: .decoding, message: "a stored map is not a JSON object")
        }
        return try members.mapValues {
            guard case .number(let n) = $0 else { throw PostgresError(kind: .decoding, message: "a stored map holds a value that is not a number") }
            return n
        }
    }
}
