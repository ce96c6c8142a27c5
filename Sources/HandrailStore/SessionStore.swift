public import Foundation
public import HandrailCore
public import Postgres

/// All SQL about web sessions. The cookie value is never stored, only its SHA-256.
public struct SessionStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// session.create — signs a user in: a new session, audited as `login.succeeded`.
    public func create(
        user: User,
        tokenHash: String,
        expiresAt: Date,
        userAgent: String?,
        by actor: AuditActor
    ) async throws {
        try await pool.execute(
            """
            WITH created AS (
                INSERT INTO sessions (token_hash, user_id, expires_at, remote_addr, user_agent)
                VALUES (\(tokenHash), \(user.id), \(expiresAt), \(actor.remoteAddress), \(userAgent))
            )
            INSERT INTO audit_log (actor_user_id, actor, action, target, remote_addr)
            VALUES (\(user.id), \(user.username), 'login.succeeded', \(user.username), \(actor.remoteAddress))
            """
        )
    }

    /// session.resolve — the enabled user behind a live session, marking it used. A session
    /// is live until its absolute expiry and while it was used within `idleTimeout`. Use is
    /// recorded to the minute (idle time is counted to the minute): a page view reads the
    /// row and writes it at most once a minute, so viewing pages does not wait on WAL flushes.
    public func resolve(tokenHash: String, idleTimeout: Duration) async throws -> User? {
        try await pool.query(
            """
            WITH touched AS (
                SELECT token_hash, user_id, last_seen_at FROM sessions
                WHERE token_hash = \(tokenHash) AND expires_at > now()
                  AND last_seen_at > now() - make_interval(secs => \(Double(idleTimeout.components.seconds)))
            ), seen AS (
                UPDATE sessions s SET last_seen_at = now() FROM touched
                WHERE s.token_hash = touched.token_hash AND touched.last_seen_at < now() - interval '1 minute'
            )
            SELECT \(sql: UserStore.qualifiedColumns) FROM touched JOIN users u ON u.id = touched.user_id
            WHERE u.disabled_at IS NULL
            """
        ).first.map(User.init(row:))
    }

    /// session.end — signs out: deletes the session, audited as `logout`.
    public func end(tokenHash: String, by actor: AuditActor) async throws {
        try await pool.execute(
            """
            WITH ended AS (
                DELETE FROM sessions WHERE token_hash = \(tokenHash) RETURNING user_id
            )
            INSERT INTO audit_log (actor_user_id, actor, action, target, remote_addr)
            SELECT \(actor.userID), \(actor.name), 'logout', \(actor.name), \(actor.remoteAddress) FROM ended
            """
        )
    }
}
