public import Foundation
public import HandrailCore
public import Postgres

/// All SQL about the audit log (append-only) and the login rate limits it feeds.
public struct AuditStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// audit.record — one entry on its own (a failed login, say).
    public func record(_ action: String, target: String?, detail: [String: String] = [:], by actor: AuditActor) async throws {
        try await pool.execute(
            """
            INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
            VALUES (\(actor.userID), \(actor.name), \(action), \(target), \(try PostgresJSON(encoding: detail)), \(actor.remoteAddress))
            """
        )
    }

    /// audit.list — newest first, `limit` entries older than entry `before` (paging).
    public func list(limit: Int, before: Int?) async throws -> [AuditEntry] {
        try await pool.query(
            """
            SELECT id, at, actor, action, target, detail, remote_addr FROM audit_log
            WHERE \(before)::bigint IS NULL OR id < \(before)
            ORDER BY id DESC LIMIT \(limit)
            """
        ).map { row in
            AuditEntry(
                id: try row.decode("id"),
                at: try row.decode("at"),
                actor: try row.decode("actor"),
                action: try row.decode("action"),
                target: try row.decode("target"),
                detail: (try? row.decode("detail", as: PostgresJSON.self).decode(as: [String: String].self)) ?? [:],
                remoteAddress: try row.decode("remote_addr")
            )
        }
    }

    /// Whether a sign-in attempt may check its password.
    public enum LoginGate: Sendable, Equatable {
        /// Counted; `attempt` is marked a success with `loginSucceeded` if it is one.
        case allowed(attempt: Int64)
        /// Over a limit until this moment.
        case limited(until: Date)
    }

    /// login.begin — counts a sign-in attempt before its password is checked: lets it through
    /// (and records it) only while the account has fewer than `perAccount` and the address
    /// fewer than `perAddress` attempts within `window` that did not succeed. Per-account and
    /// per-address locks (always in that order) make concurrent attempts count one by one.
    public func beginLogin(username: String, address: String?, window: Duration, perAccount: Int, perAddress: Int) async throws -> LoginGate {
        let seconds = Double(window.components.seconds)
        return try await pool.withTransaction { tx in
            try await tx.execute(
                """
                SELECT pg_advisory_xact_lock(1, hashtext(\(username))),
                       CASE WHEN \(address)::text IS NOT NULL THEN pg_advisory_xact_lock(2, hashtext(\(address))) END
                """
            )
            let row = try await tx.query(
                """
                WITH recent AS (
                    SELECT username, remote_addr, at FROM login_attempts
                    WHERE NOT succeeded AND at > clock_timestamp() - make_interval(secs => \(seconds))
                      AND (username = \(username) OR remote_addr = \(address))
                ), counts AS (
                    SELECT count(*) FILTER (WHERE username = \(username)) AS by_user,
                           min(at) FILTER (WHERE username = \(username)) AS oldest_by_user,
                           count(*) FILTER (WHERE remote_addr = \(address)) AS by_address,
                           min(at) FILTER (WHERE remote_addr = \(address)) AS oldest_by_address
                    FROM recent
                ), counted AS (
                    INSERT INTO login_attempts (username, remote_addr)
                    SELECT \(username), \(address) FROM counts WHERE by_user < \(perAccount) AND by_address < \(perAddress)
                    RETURNING id
                ), purged AS (
                    -- Rows far past any window are of no use: a day's worth is kept.
                    DELETE FROM login_attempts WHERE at < now() - interval '1 day' - make_interval(secs => \(seconds))
                )
                SELECT (SELECT id FROM counted) AS id, c.*,
                       greatest(CASE WHEN c.by_user >= \(perAccount) THEN c.oldest_by_user END,
                                CASE WHEN c.by_address >= \(perAddress) THEN c.oldest_by_address END)
                         + make_interval(secs => \(seconds)) AS until
                FROM counts c
                """
            )[0]
            if let id = try row.decode("id", as: Int64?.self) { return .allowed(attempt: id) }
            return .limited(until: try row.decode("until", as: Date?.self) ?? Date().addingTimeInterval(seconds))
        }
    }

    /// login.succeeded — an attempt that signed in stops counting against the limits.
    public func loginSucceeded(attempt: Int64) async throws {
        try await pool.execute("UPDATE login_attempts SET succeeded = true WHERE id = \(attempt)")
    }
}
