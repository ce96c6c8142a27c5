public import Foundation
public import HandrailCore
import Postgres

/// Who holds one role of an incident now.
public struct IncidentRoleHolder: Sendable, Equatable, Codable {
    public var role: IncidentRole
    public var user: String
    public var displayName: String
    /// A username, or `rotation <name>` for the owner the rotation gave a new incident.
    public var assignedBy: String
    public var assignedAt: Date
    /// nil: awaiting acceptance.
    public var acceptedAt: Date?
    public var pending: Bool { acceptedAt == nil }
}

extension IncidentStore {
    public enum RoleResult: Sendable, Equatable {
        /// Changed; `pending` when the new holder has yet to accept.
        case changed(pending: Bool)
        /// That person already holds the role, accepted: nothing to record.
        case unchanged
        case notFound
        /// The incident is resolved; its roles are history.
        case resolved
        /// `to` is not an enabled user who may respond (viewers cannot hold roles).
        case unknownUser
        /// A hand-over by someone who does not hold the role.
        case notHolder(holder: String?)
    }

    /// role.change — take, assign or hand over one role of an open incident, with the
    /// timeline event (from, to, by, action, reason) in the same statement. Taking is
    /// accepted at once; an assignment or hand-over to someone else waits for them to
    /// accept (or acknowledge the incident).
    public func changeRole(
        number: Int64,
        role: IncidentRole,
        change: RoleChange,
        to username: String,
        reason: String?,
        by actor: (id: Int, username: String)
    ) async throws -> RoleResult {
        let selfAssigned = username == actor.username
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT i.id, i.state::text AS state FROM incidents i WHERE i.number = \(number) FOR NO KEY UPDATE
            ), current AS (
                SELECT r.user_id, u.username, r.accepted_at FROM incident_roles r JOIN users u ON u.id = r.user_id
                WHERE r.incident_id = (SELECT id FROM target) AND r.role = \(role.rawValue)
            ), newcomer AS (
                SELECT id FROM users WHERE username = \(username) AND disabled_at IS NULL AND role >= 'responder'
            ), allowed AS (
                SELECT t.id, n.id AS user_id FROM target t, newcomer n
                WHERE t.state <> 'resolved'
                  AND (\(change.rawValue) <> 'hand_over' OR (SELECT username FROM current) = \(actor.username))
                  AND NOT EXISTS (SELECT 1 FROM current c WHERE c.user_id = n.id AND c.accepted_at IS NOT NULL)
            ), held AS (
                INSERT INTO incident_roles AS r (incident_id, role, user_id, assigned_by, assigned_at, accepted_at)
                SELECT id, \(role.rawValue), user_id, \(actor.username), clock_timestamp(), CASE WHEN \(selfAssigned) THEN clock_timestamp() END
                FROM allowed
                ON CONFLICT (incident_id, role) DO UPDATE SET user_id = excluded.user_id, assigned_by = excluded.assigned_by,
                    assigned_at = excluded.assigned_at, accepted_at = excluded.accepted_at
                RETURNING incident_id
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                SELECT incident_id, 'role_changed', \(actor.username), \(actor.id)::bigint, jsonb_build_object(
                        'role', \(role.rawValue)::text, 'action', \(change.rawValue)::text, 'from', (SELECT username FROM current),
                        'to', \(username)::text, 'reason', \(reason)::text, 'pending', NOT \(selfAssigned))
                FROM held
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT t.state, (SELECT username FROM current) AS holder, (SELECT accepted_at IS NOT NULL FROM current) AS holder_accepted,
                   EXISTS (SELECT 1 FROM newcomer) AS known, (SELECT count(*) FROM event) AS changed, (SELECT n FROM notified) AS notified
            FROM target t
            """
        )
        guard let row = rows.first else { return .notFound }
        if try row.decode("changed", as: Int.self) == 1 { return .changed(pending: !selfAssigned) }
        if try row.decode("state", as: String.self) == "resolved" { return .resolved }
        guard try row.decode("known", as: Bool.self) else { return .unknownUser }
        let holder: String? = try row.decode("holder")
        if holder == username, try row.decode("holder_accepted", as: Bool?.self) == true { return .unchanged }
        return .notHolder(holder: holder)
    }

    public enum AcceptResult: Sendable, Equatable {
        case accepted
        case notFound
        /// Nothing of this role awaits this person's acceptance; who holds it, if anyone.
        case notPending(holder: String?)
    }

    /// role.accept — the person a role was assigned to accepts it.
    public func acceptRole(number: Int64, role: IncidentRole, by actor: (id: Int, username: String)) async throws -> AcceptResult {
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT id FROM incidents WHERE number = \(number)
            ), accepted AS (
                UPDATE incident_roles r SET accepted_at = clock_timestamp()
                FROM target t WHERE r.incident_id = t.id AND r.role = \(role.rawValue) AND r.user_id = \(actor.id) AND r.accepted_at IS NULL
                RETURNING r.incident_id
            ), event AS (
                INSERT INTO incident_events (incident_id, type, actor, actor_user_id, data)
                SELECT incident_id, 'role_accepted', \(actor.username), \(actor.id)::bigint,
                       jsonb_build_object('role', \(role.rawValue)::text, 'user', \(actor.username)::text)
                FROM accepted
                RETURNING incident_id
            ), notified AS (
                SELECT count(*) AS n FROM (SELECT pg_notify(\(IncidentFeed.channel), incident_id::text) FROM event) s
            )
            SELECT (SELECT count(*) FROM event) AS accepted, (SELECT n FROM notified) AS notified,
                   (SELECT u.username FROM incident_roles r JOIN users u ON u.id = r.user_id
                    WHERE r.incident_id = t.id AND r.role = \(role.rawValue)) AS holder
            FROM target t
            """
        )
        guard let row = rows.first else { return .notFound }
        if try row.decode("accepted", as: Int.self) == 1 { return .accepted }
        return .notPending(holder: try row.decode("holder"))
    }

    /// The holders of every role of an incident, owner first.
    func roles(incidentID: Int64, on db: PostgresConnection) async throws -> [IncidentRoleHolder] {
        try await db.query(
            """
            SELECT r.role, u.username, u.display_name, r.assigned_by, r.assigned_at, r.accepted_at
            FROM incident_roles r JOIN users u ON u.id = r.user_id
            WHERE r.incident_id = \(incidentID)
            ORDER BY array_position(ARRAY['owner', 'scribe', 'communications'], r.role)
            """
        ).map { row in
            IncidentRoleHolder(
                role: try row.decode("role"),
                user: try row.decode("username"),
                displayName: try row.decode("display_name"),
                assignedBy: try row.decode("assigned_by"),
                assignedAt: try row.decode("assigned_at"),
                acceptedAt: try row.decode("accepted_at")
            )
        }
    }
}
