import Foundation
public import HandrailCore
public import Postgres

/// All SQL about people: accounts, roles, passwords. Every change writes its audit entry in
/// the same statement.
public struct UserStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// The same columns for a query that names the users table `u`.
    static let qualifiedColumns: StaticString =
        "u.id, u.username, u.display_name, u.email, u.role::text AS role, u.disabled_at IS NOT NULL AS disabled, u.must_change_password, u.created_at, u.time_zone"
    static let columns: StaticString =
        "id, username, display_name, email, role::text AS role, disabled_at IS NOT NULL AS disabled, must_change_password, created_at, time_zone"

    /// user.create — a new account, audited as `user.created`.
    /// - Throws: `ConflictError` when the username is taken.
    public func create(
        username: String,
        displayName: String,
        email: String?,
        role: Role,
        passwordHash: String?,
        mustChangePassword: Bool,
        by actor: AuditActor
    ) async throws -> User {
        do {
            let rows = try await pool.query(
                """
                WITH created AS (
                    INSERT INTO users (username, display_name, email, role, password_hash, must_change_password)
                    VALUES (\(username), \(displayName), \(email), \(role.rawValue)::user_role, \(passwordHash), \(mustChangePassword))
                    RETURNING \(sql: Self.columns)
                ), audit AS (
                    INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                    SELECT \(actor.userID), \(actor.name), 'user.created', username, jsonb_build_object('role', role), \(actor.remoteAddress) FROM created
                )
                SELECT * FROM created
                """
            )
            return try User(row: rows[0])
        } catch let error as PostgresError where error.isUniqueViolation {
            throw ConflictError(field: "username", message: "\(username.debugDescription) is taken")
        }
    }

    /// user.ensure-first-admin — when no enabled admin exists, creates one; answers whether
    /// it did. Serialised by a transaction-level advisory lock, so two servers starting
    /// together on an empty database create one admin, not two.
    public func createFirstAdminIfNone(username: String, passwordHash: String) async throws -> Bool {
        try await pool.withTransaction { tx in
            try await tx.execute("SELECT pg_advisory_xact_lock(\(Int64(0x4841_4E44_0001)))")
            let rows = try await tx.query(
                """
                WITH existing AS (
                    SELECT 1 FROM users WHERE role = 'admin' AND disabled_at IS NULL
                ), created AS (
                    INSERT INTO users (username, display_name, role, password_hash, must_change_password)
                    SELECT \(username), 'Administrator', 'admin', \(passwordHash), true
                    WHERE NOT EXISTS (SELECT 1 FROM existing)
                    ON CONFLICT (username) DO NOTHING
                    RETURNING username
                ), audit AS (
                    INSERT INTO audit_log (actor, action, target, detail)
                    SELECT 'system', 'user.created', username, '{"role": "admin", "first_admin": "true"}' FROM created
                )
                SELECT count(*) AS created FROM created
                """
            )
            return try rows[0].decode("created", as: Int.self) == 1
        }
    }

    /// user.list — everyone, by username.
    public func list() async throws -> [User] {
        try await pool.query("SELECT \(sql: Self.columns) FROM users ORDER BY username").map(User.init(row:))
    }

    /// user.find — one account by username.
    public func find(username: String) async throws -> User? {
        try await pool.query("SELECT \(sql: Self.columns) FROM users WHERE username = \(username)").first.map(User.init(row:))
    }

    /// user.credentials — an enabled account and its password hash, for signing in.
    public func credentials(username: String) async throws -> (user: User, passwordHash: String?)? {
        guard
            let row = try await pool.query(
                """
                SELECT \(sql: Self.columns), password_hash FROM users WHERE username = \(username) AND disabled_at IS NULL
                """
            ).first
        else { return nil }
        return (try User(row: row), try row.decode("password_hash", as: String?.self))
    }

    /// user.set-role — changes a role, audited with the old and the new one.
    /// - Returns: the updated user, `nil` when there is no such user.
    public func setRole(username: String, to role: Role, by actor: AuditActor) async throws -> User? {
        try await pool.query(
            """
            WITH before AS (
                SELECT id, role FROM users WHERE username = \(username) FOR UPDATE
            ), updated AS (
                UPDATE users u SET role = \(role.rawValue)::user_role, updated_at = now()
                FROM before b WHERE u.id = b.id
                RETURNING u.id, u.username, u.display_name, u.email, u.role::text AS role, u.disabled_at IS NOT NULL AS disabled,
                          u.must_change_password, u.created_at, u.time_zone, b.role::text AS previous_role
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                SELECT \(actor.userID), \(actor.name), 'user.role_changed', username,
                       jsonb_build_object('from', previous_role, 'to', role), \(actor.remoteAddress) FROM updated
            )
            SELECT * FROM updated
            """
        ).first.map(User.init(row:))
    }

    /// user.set-disabled — disables (ending every session and making every token useless at
    /// once) or re-enables an account.
    public func setDisabled(username: String, _ disabled: Bool, by actor: AuditActor) async throws -> User? {
        try await pool.query(
            """
            WITH updated AS (
                UPDATE users SET disabled_at = CASE WHEN \(disabled) THEN coalesce(disabled_at, now()) END, updated_at = now()
                WHERE username = \(username)
                RETURNING \(sql: Self.columns)
            ), ended AS (
                DELETE FROM sessions WHERE \(disabled) AND user_id IN (SELECT id FROM updated)
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, remote_addr)
                SELECT \(actor.userID), \(actor.name), CASE WHEN \(disabled) THEN 'user.disabled' ELSE 'user.enabled' END, username, \(actor.remoteAddress) FROM updated
            )
            SELECT * FROM updated
            """
        ).first.map(User.init(row:))
    }

    /// user.set-password — a new password hash; ends the user's other sessions.
    /// - Parameter keepSession: the session (hash) to keep, when users change their own.
    public func setPassword(
        username: String,
        hash: String,
        mustChange: Bool,
        keepSession: String? = nil,
        by actor: AuditActor
    ) async throws -> User? {
        try await pool.query(
            """
            WITH updated AS (
                UPDATE users SET password_hash = \(hash), must_change_password = \(mustChange), updated_at = now()
                WHERE username = \(username)
                RETURNING \(sql: Self.columns)
            ), ended AS (
                DELETE FROM sessions WHERE user_id IN (SELECT id FROM updated) AND token_hash IS DISTINCT FROM \(keepSession)
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, remote_addr)
                SELECT \(actor.userID), \(actor.name), CASE WHEN \(mustChange) THEN 'user.password_reset' ELSE 'user.password_changed' END, username, \(actor.remoteAddress) FROM updated
            )
            SELECT * FROM updated
            """
        ).first.map(User.init(row:))
    }

    /// user.time-zone — the zone pages show this person's times in (nil: the browser's).
    public func setTimeZone(userID: Int, _ zone: String?) async throws -> User? {
        try await pool.query(
            "UPDATE users SET time_zone = \(zone), updated_at = now() WHERE id = \(userID) RETURNING \(sql: Self.columns)"
        ).first.map(User.init(row:))
    }
}

extension User {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            username: try row.decode("username"),
            displayName: try row.decode("display_name"),
            email: try row.decode("email"),
            role: try row.decode("role"),
            disabled: try row.decode("disabled"),
            mustChangePassword: try row.decode("must_change_password"),
            createdAt: try row.decode("created_at"),
            timeZone: try row.decode("time_zone")
        )
    }
}
