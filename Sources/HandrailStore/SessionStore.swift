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
    /// is live until its absolute expiry and while it was used within `idleTimeout`.
    public func resolve(tokenHash: String, idleTimeout: Duration) async throws -> User? {
        try await pool.query(
            """
            WITH touched AS (
                UPDATE sessions SET last_seen_at = now()
                WHERE token_hash = \(tokenHash) AND expires_at > now()
                  AND last_seen_at > now() - make_interval(secs => \(Double(idleTimeout.components.seconds)))
                RETURNING user_id
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

/// All SQL about personal API tokens.
public struct APITokenStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let columns: StaticString = """
        t.id, t.user_id, u.username, t.name, t.display_prefix, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
        """

    /// token.create — stores a new token's hash, audited as `token.created`.
    public func create(
        for user: User,
        name: String,
        tokenHash: String,
        displayPrefix: String,
        expiresAt: Date?,
        by actor: AuditActor
    ) async throws -> APIToken {
        let rows = try await pool.query(
            """
            WITH t AS (
                INSERT INTO api_tokens (user_id, name, token_hash, display_prefix, expires_at)
                VALUES (\(user.id), \(name), \(tokenHash), \(displayPrefix), \(expiresAt))
                RETURNING *
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                SELECT \(actor.userID), \(actor.name), 'token.created', \(user.username),
                       jsonb_build_object('token_id', t.id::text, 'name', t.name), \(actor.remoteAddress) FROM t
            )
            SELECT \(sql: Self.columns) FROM t JOIN users u ON u.id = t.user_id
            """
        )
        return try APIToken(row: rows[0])
    }

    /// token.list — a user's tokens (all users' when `userID` is nil), newest first.
    public func list(userID: Int?) async throws -> [APIToken] {
        try await pool.query(
            """
            SELECT \(sql: Self.columns) FROM api_tokens t JOIN users u ON u.id = t.user_id
            WHERE \(userID)::bigint IS NULL OR t.user_id = \(userID)
            ORDER BY t.id DESC
            """
        ).map(APIToken.init(row:))
    }

    /// token.revoke — revokes a live token; `ownerID` limits it to that user's tokens.
    /// - Returns: the revoked token, `nil` when there is no such live token.
    public func revoke(id: Int, ownerID: Int?, by actor: AuditActor) async throws -> APIToken? {
        try await pool.query(
            """
            WITH t AS (
                UPDATE api_tokens SET revoked_at = now()
                WHERE id = \(id) AND revoked_at IS NULL AND (\(ownerID)::bigint IS NULL OR user_id = \(ownerID))
                RETURNING *
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                SELECT \(actor.userID), \(actor.name), 'token.revoked', u.username,
                       jsonb_build_object('token_id', t.id::text, 'name', t.name), \(actor.remoteAddress)
                FROM t JOIN users u ON u.id = t.user_id
            )
            SELECT \(sql: Self.columns) FROM t JOIN users u ON u.id = t.user_id
            """
        ).first.map(APIToken.init(row:))
    }

    /// token.authenticate — the enabled user behind a live, unexpired token, marking it used.
    public func authenticate(tokenHash: String) async throws -> User? {
        try await pool.query(
            """
            WITH t AS (
                UPDATE api_tokens SET last_used_at = now()
                WHERE token_hash = \(tokenHash) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                RETURNING user_id
            )
            SELECT \(sql: UserStore.qualifiedColumns) FROM t JOIN users u ON u.id = t.user_id WHERE u.disabled_at IS NULL
            """
        ).first.map(User.init(row:))
    }
}

/// All SQL about alert sources' integration keys.
public struct IntegrationKeyStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let columns: StaticString = """
        id, name, kind::text AS kind, display_prefix, require_signature, require_timestamp, created_at, last_used_at, revoked_at
        """

    /// integration.create — a new key's hash, audited as `integration.created`.
    /// - Throws: `ConflictError` when a live key has that name.
    public func create(
        name: String,
        kind: IntegrationKind,
        keyHash: String,
        displayPrefix: String,
        requireSignature: Bool,
        requireTimestamp: Bool = false,
        by actor: AuditActor
    ) async throws -> IntegrationKeyRecord {
        do {
            let rows = try await pool.query(
                """
                WITH k AS (
                    INSERT INTO integration_keys (name, kind, key_hash, display_prefix, require_signature, require_timestamp, created_by)
                    VALUES (\(name), \(kind.rawValue)::integration_kind, \(keyHash), \(displayPrefix), \(requireSignature || requireTimestamp),
                            \(requireTimestamp), \(actor.userID))
                    RETURNING \(sql: Self.columns)
                ), audit AS (
                    INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                    SELECT \(actor.userID), \(actor.name), 'integration.created', name, jsonb_build_object('kind', kind), \(actor.remoteAddress) FROM k
                )
                SELECT * FROM k
                """
            )
            return try IntegrationKeyRecord(row: rows[0])
        } catch let error as PostgresError where error.isUniqueViolation {
            throw ConflictError(field: "name", message: "a live integration key is already named \(name.debugDescription)")
        }
    }

    /// integration.list — every key, live and revoked, newest first.
    public func list() async throws -> [IntegrationKeyRecord] {
        try await pool.query("SELECT \(sql: Self.columns) FROM integration_keys ORDER BY id DESC").map(IntegrationKeyRecord.init(row:))
    }

    /// integration.revoke — revokes the live key of that name.
    public func revoke(name: String, by actor: AuditActor) async throws -> IntegrationKeyRecord? {
        try await pool.query(
            """
            WITH k AS (
                UPDATE integration_keys SET revoked_at = now() WHERE name = \(name) AND revoked_at IS NULL
                RETURNING \(sql: Self.columns)
            ), audit AS (
                INSERT INTO audit_log (actor_user_id, actor, action, target, detail, remote_addr)
                SELECT \(actor.userID), \(actor.name), 'integration.revoked', name, jsonb_build_object('kind', kind), \(actor.remoteAddress) FROM k
            )
            SELECT * FROM k
            """
        ).first.map(IntegrationKeyRecord.init(row:))
    }

    /// integration.authenticate — the live integration behind a key, marking it used.
    public func authenticate(keyHash: String) async throws -> Integration? {
        try await pool.query(
            """
            WITH k AS (
                SELECT id, name, kind::text AS kind, require_signature, require_timestamp, last_used_at FROM integration_keys
                WHERE key_hash = \(keyHash) AND revoked_at IS NULL
            ), touched AS (
                -- At most once a minute: a write per delivery would make every delivery of a
                -- busy source wait for the one before it (the same row, a commit each).
                UPDATE integration_keys SET last_used_at = now()
                WHERE id IN (SELECT id FROM k WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                RETURNING id
            )
            SELECT k.id, k.name, k.kind, k.require_signature, k.require_timestamp, (SELECT count(*) FROM touched) AS touched FROM k
            """
        ).first.map { row in
            Integration(
                id: try row.decode("id"),
                name: try row.decode("name"),
                kind: IntegrationKind(rawValue: try row.decode("kind")) ?? .generic,
                requireSignature: try row.decode("require_signature"),
                requireTimestamp: try row.decode("require_timestamp")
            )
        }
    }
}

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

extension APIToken {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            userID: try row.decode("user_id"),
            username: try row.decode("username"),
            name: try row.decode("name"),
            displayPrefix: try row.decode("display_prefix"),
            createdAt: try row.decode("created_at"),
            expiresAt: try row.decode("expires_at"),
            lastUsedAt: try row.decode("last_used_at"),
            revokedAt: try row.decode("revoked_at")
        )
    }
}

extension IntegrationKeyRecord {
    init(row: PostgresRow) throws {
        self.init(
            id: try row.decode("id"),
            name: try row.decode("name"),
            kind: IntegrationKind(rawValue: try row.decode("kind")) ?? .generic,
            displayPrefix: try row.decode("display_prefix"),
            requireSignature: try row.decode("require_signature"),
            requireTimestamp: try row.decode("require_timestamp"),
            createdAt: try row.decode("created_at"),
            lastUsedAt: try row.decode("last_used_at"),
            revokedAt: try row.decode("revoked_at")
        )
    }
}
