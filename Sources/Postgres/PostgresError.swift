import Foundation

/// An error from PostgreSQL or from this library.
///
/// `description` is deliberately generic, so an error that reaches a client or a log line
/// by accident leaks nothing (no query text, no server message, no host names). The full
/// detail — SQLSTATE, server message, detail, hint, constraint — comes from
/// `String(reflecting: error)`, which is what logs should use.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, broadly.
    public enum Kind: Sendable, Equatable {
        /// A connection could not be established (wrong host, refused, bad password, …).
        case connectionFailed
        /// An established connection broke (server restarted, network gone).
        case connectionLost
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// A value could not be decoded into the requested Swift type.
        case decoding
        /// A parameter cannot be sent (for example a string containing a NUL byte).
        case invalidParameter
        /// The pool was shut down.
        case poolClosed
        /// No connection became free within the pool's checkout timeout.
        case poolTimeout
        /// The awaiting task was cancelled before the statement started.
        case cancelled
        /// The server did not answer within the connection's deadline (frozen, or cut off);
        /// the connection was closed.
        case timedOut
    }

    public var kind: Kind
    /// The five-character SQLSTATE, when the server sent one (e.g. `23505` unique violation).
    public var sqlState: String?
    /// The primary message (from the server or libpq).
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The constraint that was violated, when the server names one.
    public var constraint: String?
    public var table: String?
    public var column: String?
    /// The statement that failed, for logs only.
    public var query: String?

    public init(
        kind: Kind,
        message: String,
        sqlState: String? = nil,
        detail: String? = nil,
        hint: String? = nil,
        constraint: String? = nil,
        table: String? = nil,
        column: String? = nil,
        query: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
        self.query = query
    }

    /// Whether the statement violated a unique constraint (SQLSTATE 23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// Whether the statement violated a CHECK constraint (SQLSTATE 23514).
    public var isCheckViolation: Bool { sqlState == "23514" }

    /// Whether a trigger or foreign key refused the change (SQLSTATE 23001, restrict_violation).
    public var isRestrictViolation: Bool { sqlState == "23001" }

    /// Whether the error means "the database is not available right now" — the kind a server
    /// answers with 503 and a client should retry: no connection, a lost connection, the server
    /// shutting down or starting up (SQLSTATE class 08 and 57P0x), or too many connections.
    public var isTransient: Bool {
        switch kind {
        case .connectionFailed, .connectionLost, .poolTimeout, .timedOut: return true
        case .server:
            guard let s = sqlState else { return false }
            // 57014: the statement ran past `statement_timeout` (a slow or locked-up database).
            return s.hasPrefix("08") || s.hasPrefix("57P") || s == "57014" || s == "53300" || s == "40001" || s == "40P01"
        case .decoding, .invalidParameter, .poolClosed, .cancelled: return false
        }
    }

    public var description: String {
        switch kind {
        case .connectionFailed: return "PostgresError: could not connect to the database"
        case .connectionLost: return "PostgresError: the database connection was lost"
        case .server: return "PostgresError: the database rejected a statement (SQLSTATE \(sqlState ?? "?"))"
        case .decoding: return "PostgresError: a database value could not be decoded"
        case .invalidParameter: return "PostgresError: a statement parameter could not be sent"
        case .poolClosed: return "PostgresError: the connection pool is closed"
        case .poolTimeout: return "PostgresError: no database connection became free in time"
        case .cancelled: return "PostgresError: the statement was cancelled"
        case .timedOut: return "PostgresError: the database did not answer in time"
        }
    }

    public var debugDescription: String {
        var parts = ["PostgresError(kind: \(kind)"]
        if let sqlState { parts.append("sqlState: \(sqlState)") }
        parts.append("message: \(message.debugDescription)")
        if let detail { parts.append("detail: \(detail.debugDescription)") }
        if let hint { parts.append("hint: \(hint.debugDescription)") }
        if let constraint { parts.append("constraint: \(constraint)") }
        if let table { parts.append("table: \(table)") }
        if let column { parts.append("column: \(column)") }
        if let query { parts.append("query: \(query.debugDescription)") }
        return parts.joined(separator: ", ") + ")"
    }

    /// The primary message folded onto one line, for command-line tools that must say what
    /// went wrong in a single line (libpq's connection messages span several).
    public var oneLineMessage: String {
        message.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }
}
