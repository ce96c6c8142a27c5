public import Logging
import Synchronization

/// A bounded pool of connections to one database.
///
/// `withConnection` lends a connection for the duration of a closure and takes it back
/// afterwards, whatever happens; when all connections are busy, callers wait in line.
/// A connection is checked before it is lent (see `PostgresConnection.isUsable`) and
/// discarded when it broke or was left inside a transaction, so after a database restart
/// the next caller gets a fresh connection instead of a dead one.
public final class PostgresPool: Sendable {
    /// The connection string, as given (it may contain a password: never log it).
    /// The connection string (kept for dedicated connections such as a LISTEN one; never logged).
    public let conninfo: String
    public let maxConnections: Int
    private let checkoutTimeout: Duration
    /// Each connection's `statement_timeout` and answer deadline (see `PostgresConnection.connect`).
    private let statementTimeout: Duration?
    private let logger: Logger
    private let state: Mutex<State>

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<PostgresConnection?, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    /// - Parameters:
    ///   - conninfo: any libpq connection string (URI or `key=value`).
    ///   - maxConnections: the most connections open at once.
    ///   - checkoutTimeout: how long a caller waits for a free connection before
    ///     `PostgresError.Kind.poolTimeout`.
    ///   - statementTimeout: how long one statement may take (nil: no limit).
    public init(
        conninfo: String,
        maxConnections: Int = 10,
        checkoutTimeout: Duration = .seconds(30),
        statementTimeout: Duration? = nil,
        logger: Logger = Logger(label: "handrail.postgres")
    ) {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.conninfo = conninfo
        self.maxConnections = maxConnections
        self.checkoutTimeout = checkoutTimeout
        self.statementTimeout = statementTimeout
        self.logger = logger
        self.state = Mutex(State())
    }

    /// Lends a connection to `body` and takes it back when `body` returns or throws.
    /// - Throws: `PostgresError` when no connection can be had, or whatever `body` throws.
    @discardableResult
    public func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        guard let connection = try await checkout(waiting: true) else {
            throw PostgresError(kind: .poolTimeout, message: "no connection became free")
        }
        return try await lend(connection, isolation: isolation, body)
    }

    /// Lends a connection only when one is free at once (idle, or room to open one), and
    /// answers `nil` without running `body` otherwise; it never waits in line. For work that
    /// has another way to run, such as a second reader beside a transaction that already
    /// holds a connection (waiting there could deadlock a full pool).
    public func withFreeConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T? {
        guard let connection = try await checkout(waiting: false) else { return nil }
        return try await lend(connection, isolation: isolation, body)
    }

    /// Runs `body` with a checked-out connection and takes it back whatever happens.
    private func lend<T>(
        _ connection: PostgresConnection,
        isolation: isolated (any Actor)?,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            let result = try await body(connection)
            checkin(connection)
            return result
        } catch {
            checkin(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction on a pooled connection: COMMIT when it returns,
    /// ROLLBACK when it throws.
    @discardableResult
    public func withTransaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction { try await body($0) }
        }
    }

    /// Runs statements as one transaction in one round trip on a pooled connection (see
    /// `PostgresConnection.transaction`).
    public func transaction(_ queries: [PostgresQuery]) async throws -> [PostgresRows] {
        try await withConnection { try await $0.transaction(queries) }
    }

    /// Runs one statement on a pooled connection and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs one statement on a pooled connection and returns the number of affected rows.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await withConnection { try await $0.execute(query) }
    }

    /// Sends a notification on `channel` (delivered to listeners when the surrounding
    /// transaction, if any, commits).
    public func notify(channel: String, payload: String) async throws {
        try await execute("SELECT pg_notify(\(channel), \(payload))")
    }

    /// How many connections are open and how many of those are idle (for metrics and tests).
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    /// Closes idle connections and refuses new checkouts; connections in use are closed
    /// when they come back. Waiting callers get `.poolClosed`.
    public func close() {
        let (idle, waiters) = state.withLock { s -> ([PostgresConnection], [Waiter]) in
            s.closed = true
            let idle = s.idle
            let waiters = s.waiters
            s.idle.removeAll()
            s.waiters.removeAll()
            s.open -= idle.count
            return (idle, waiters)
        }
        for item in idle { item.close() }
        for item in waiters { item.continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "the pool was closed")) }
    }

    // MARK: - Checkout and checkin

    private enum Next {
        case reuse(PostgresConnection)
        case create
        case wait
    }

    /// A connection: an idle one, a new one, or (when `waiting`) the next one given back;
    /// `nil` when none is free and not `waiting`.
    private func checkout(waiting: Bool) async throws -> PostgresConnection? {
        while true {
            let next = try state.withLock { s throws(PostgresError) -> Next in
                if s.closed { throw PostgresError(kind: .poolClosed, message: "the pool was closed") }
                if let c = s.idle.popLast() { return .reuse(c) }
                if s.open < maxConnections {
                    s.open += 1
                    return .create
                }
                return .wait
            }
            switch next {
            case .reuse(let connection):
                if connection.isUsable { return connection }
                logger.debug("discarding a broken idle connection")
                discard(connection)
            case .create:
                do {
                    return try await PostgresConnection.connect(conninfo, statementTimeout: statementTimeout)
                } catch {
                    releaseSlot()
                    throw error
                }
            case .wait:
                guard waiting else { return nil }
                if let connection = try await waitForConnection() { return connection }
            // nil: a slot was freed; loop and take it.
            }
        }
    }

    /// Waits until a connection is handed over (or a slot frees up: `nil`), or times out.
    private func waitForConnection() async throws -> PostgresConnection? {
        let id = state.withLock { s in
            s.nextWaiterID += 1
            return s.nextWaiterID
        }
        let timeout = checkoutTimeout
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.abandonWaiter(id, with: PostgresError(kind: .poolTimeout, message: "no connection became free within \(timeout)"))
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection?, any Error>) in
                let enqueued = state.withLock { s -> Bool in
                    // A connection may have come back between our check and now.
                    if s.closed { return false }
                    if !s.idle.isEmpty || s.open < maxConnections {
                        return false
                    }
                    s.waiters.append(Waiter(id: id, continuation: continuation))
                    return true
                }
                if !enqueued { continuation.resume(returning: nil) }
            }
        } onCancel: {
            self.abandonWaiter(id, with: CancellationError())
        }
    }

    private func abandonWaiter(_ id: UInt64, with error: any Error) {
        let waiter = state.withLock { s -> Waiter? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    private func checkin(_ connection: PostgresConnection) {
        // Its socket is read at the next checkout (`isUsable`); here libpq's state says enough.
        guard connection.isIdle else {
            logger.debug("discarding a connection that broke or was left inside a transaction")
            discard(connection)
            return
        }
        let (waiter, closeIt) = state.withLock { s -> (Waiter?, Bool) in
            if s.closed {
                s.open -= 1
                return (nil, true)
            }
            if !s.waiters.isEmpty { return (s.waiters.removeFirst(), false) }
            s.idle.append(connection)
            return (nil, false)
        }
        if closeIt { connection.close() }
        waiter?.continuation.resume(returning: connection)
    }

    private func discard(_ connection: PostgresConnection) {
        connection.close()
        releaseSlot()
    }

    /// Gives up one open-connection slot and lets the first waiter create a connection in it.
    private func releaseSlot() {
        let waiter = state.withLock { s -> Waiter? in
            s.open -= 1
            return s.waiters.isEmpty ? nil : s.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: nil)
    }
}
