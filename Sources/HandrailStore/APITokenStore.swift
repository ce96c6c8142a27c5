public import Foundation
public import HandrailCore
public import Postgres

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

    /// token.authenticate — the enabled user behind a live, unexpired token, marking it used
    /// to the minute: a token polled every second writes (and flushes) one row a minute, not
    /// one per request.
    public func authenticate(tokenHash: String) async throws -> User? {
        try await pool.query(
            """
            WITH t AS (
                SELECT id, user_id, last_used_at FROM api_tokens
                WHERE token_hash = \(tokenHash) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            ), used AS (
                UPDATE api_tokens a SET last_used_at = now() FROM t
                WHERE a.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
            )
            SELECT \(sql: UserStore.qualifiedColumns) FROM t JOIN users u ON u.id = t.user_id WHERE u.disabled_at IS NULL
            """
        ).first.map(User.init(row:))
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
