import CLibPQ
import Foundation
import Synchronization

/// One libpq connection.
///
/// Every command (statements, scripts, LISTEN) is sent from the calling task's thread with
/// libpq's non-blocking API, and the task waits for the answer on `SocketPoller`. Connecting,
/// which libpq does only blocking, and reading notifications run on the connection's own
/// serial `DispatchQueue`. Neither SwiftNIO's event loops nor Swift's cooperative thread
/// pool ever wait for the database.
///
/// Why `@unchecked Sendable` is safe: the mutable state is `pg` and `prepared`, and both are
/// read and written only while holding `lock` (`withPG`, `locked`, `close`, the state
/// properties, the notification loop); `lock` is never held across a suspension, so a
/// task waiting for the server blocks nobody. Every other stored property is a `let`. The
/// one call without `lock`, `PQcancel` on `cancelHandle`, is thread-safe by libpq's
/// contract. The pool lends a connection to one task at a time; an overlap by mistake is
/// serialised by `lock`, never a data race.
public final class PostgresConnection: @unchecked Sendable {
    /// Only touched holding `lock`.
    private var pg: OpaquePointer?
    /// Statements prepared on this connection, by their SQL text (only touched holding `lock`).
    /// A prepared statement is parsed once per connection, and PostgreSQL may keep its plan:
    /// for ingestion's one big statement, parsing and planning cost more than running it.
    private var prepared: [String: String] = [:]
    static let maxPrepared = 200
    private let cancelHandle: OpaquePointer?
    private let queue: DispatchQueue
    /// Held for every libpq call on `pg` (not while waiting for the server).
    private let lock = Mutex(())

    /// How long a statement may wait for the server's answer before the connection is given
    /// up as frozen or cut off (nil: no limit).
    private let answerDeadline: Duration?

    private init(pg: OpaquePointer, queue: DispatchQueue, answerDeadline: Duration?) {
        self.pg = pg
        self.cancelHandle = PQgetCancel(pg)
        self.queue = queue
        self.answerDeadline = answerDeadline
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        if let pg { PQfinish(pg) }
    }

    /// Opens a connection with any libpq connection string: a URI
    /// (`postgresql://user@host/db?sslmode=require`) or `key=value` pairs
    /// (`host=a,b target_session_attrs=read-write`). libpq itself reads the string, the `PG*`
    /// environment variables, `.pgpass` and service files; nothing here parses them.
    ///
    /// Defaults are added *under* whatever the string says: `connect_timeout=5` (or the
    /// statement timeout, when shorter; unless
    /// `PGCONNECT_TIMEOUT` is set), `fallback_application_name=handrail`, and TCP keepalives
    /// with a user timeout, so a cut-off server is noticed in about half a minute, not hours.
    /// The session is then set to UTC, ISO dates and UTF-8, so decoding is stable.
    ///
    /// - Parameter statementTimeout: the server's `statement_timeout` for this session; the
    ///   connection also stops waiting a second later (a frozen server answers nothing),
    ///   closes itself and throws `.connectionLost`.
    /// - Throws: `PostgresError` of kind `.connectionFailed` with libpq's message.
    public static func connect(
        _ conninfo: String,
        applicationName: String = "handrail",
        statementTimeout: Duration? = nil
    ) async throws -> PostgresConnection {
        let queue = DispatchQueue(label: "handrail.postgres.connection")
        let connection = try await withCheckedThrowingContinuation { (cont: CheckedContinuation<PostgresConnection, any Error>) in
            queue.async {
                cont.resume(
                    with: Result { () throws(PostgresError) -> PostgresConnection in
                        try PostgresConnection.connectBlocking(
                            conninfo,
                            applicationName: applicationName,
                            statementTimeout: statementTimeout,
                            queue: queue
                        )
                    }
                )
            }
        }
        let milliseconds = statementTimeout.map { Int($0.components.seconds) * 1000 + Int($0.components.attoseconds / 1_000_000_000_000_000) }
        do {
            try await connection.executeScript(
                "SET TIME ZONE 'UTC'; SET DateStyle TO 'ISO, YMD'; SET client_encoding TO 'UTF8'"
                    + (milliseconds.map { "; SET statement_timeout TO \($0)" } ?? "")
            )
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Connecting is the one thing libpq does only blocking: it runs on the connection's queue.
    private static func connectBlocking(
        _ conninfo: String,
        applicationName: String,
        statementTimeout: Duration?,
        queue: DispatchQueue
    ) throws(PostgresError) -> PostgresConnection {
        if conninfo.utf8.contains(0) {
            throw PostgresError(kind: .connectionFailed, message: "the connection string contains a NUL byte")
        }
        // Earlier keywords are overridden by what the expanded connection string says.
        var pairs: [(String, String)] = [
            ("fallback_application_name", applicationName),
            ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
            ("tcp_user_timeout", "30000"),
        ]
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil {
            // No longer than a statement may take (libpq's least is 2 s).
            pairs.append(("connect_timeout", String(statementTimeout.map { max(2, min(5, $0.components.seconds)) } ?? 5)))
        }
        pairs.append(("dbname", conninfo))
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            for item in keys { free(item) }
            for item in values { free(item) }
        }
        let keyPointers: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        let valuePointers: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let pg = PQconnectdbParams(keyPointers, valuePointers, 1) else {
            throw PostgresError(kind: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(pg) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(pg))
            PQfinish(pg)
            throw PostgresError(kind: .connectionFailed, message: message)
        }
        // Server NOTICEs (e.g. "relation already exists, skipping") are not errors; libpq
        // would print them on standard error.
        PQsetNoticeProcessor(pg, { _, _ in }, nil)
        // Every command is sent without waiting (see `exchange`).
        PQsetnonblocking(pg, 1)
        return PostgresConnection(pg: pg, queue: queue, answerDeadline: statementTimeout.map { $0 + .seconds(1) })
    }

    // MARK: - Statements

    /// Runs a statement and returns its rows (empty for statements that return none).
    /// Cancelling the awaiting task asks the server to cancel the statement.
    /// - Throws: `PostgresError`.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await cancellable(query.sql) { try await self.exec(query) }
    }

    /// Runs `work` (statements on this connection) so that cancelling the awaiting task asks
    /// the server to cancel what runs.
    private func cancellable<T>(_ sql: String?, _ work: () async throws -> T) async throws -> T {
        let call = StatementCall()
        return try await withTaskCancellationHandler {
            // A connection that was sent a cancel request runs nothing more: the request may
            // reach the server after this statement ended, and cancel whatever runs next.
            @Sendable func finish() { if call.finish() { close() } }
            // Mark running first, then look at the flag: a cancel that comes before this
            // point is seen here, one that comes after finds the statement running.
            guard call.start() else {
                throw PostgresError(kind: .cancelled, message: "the statement was cancelled before it started", query: sql)
            }
            defer { finish() }
            return try await work()
        } onCancel: {
            call.cancel()
            // A cancel request reaching the server before the statement does is ignored, so
            // keep asking while the statement runs.
            Task.detached {
                for _ in 0..<300 {
                    guard call.whileRunning({ self.cancel() }) else { return }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    /// Runs a statement and returns how many rows it affected.
    /// - Throws: `PostgresError`.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await self.query(query).affectedRows
    }

    /// Runs a script of one or more statements without parameters (the simple query
    /// protocol). Meant for migration files, never for statements with user input.
    /// - Throws: `PostgresError`.
    public func executeScript(_ sql: String) async throws {
        let shown = sql.utf8.count > 200 ? String(sql.prefix(200)) + "…" : sql
        if Self.hasNUL(sql) { throw PostgresError(kind: .invalidParameter, message: "the script contains a NUL byte", query: shown) }
        _ = try await exchange(shown) { pg in PQsendQuery(pg, sql) }
    }

    /// Runs `body` inside BEGIN … COMMIT; rolls back and rethrows when `body` throws.
    /// A COMMIT that the server turns into a rollback (because a statement in the
    /// transaction failed and the error was swallowed) throws too.
    @discardableResult
    public func withTransaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await execute("BEGIN")
        do {
            let result = try await body(self)
            let commit = try await query("COMMIT")
            if commit.commandTag == "ROLLBACK" {
                throw PostgresError(kind: .server, message: "the transaction was aborted by an earlier error and rolled back", sqlState: "25P02")
            }
            return result
        } catch {
            if isOpen { _ = try? await execute("ROLLBACK") }
            throw error
        }
    }

    /// Runs `queries` as one transaction in one round trip and returns each one's rows, in
    /// order. They are sent together in libpq's pipeline mode with one Sync after the last:
    /// PostgreSQL runs the statements up to a Sync as one implicit transaction, so all of them
    /// commit at the Sync or, after the first error (which is thrown), none does.
    /// Every `BEGIN` and `COMMIT` of `withTransaction` is a round trip of its own: for
    /// ingestion's two statements, four waits for the server become one (`script/bench storm`).
    /// Call outside any transaction; cancelling the task asks the server to cancel.
    /// - Throws: `PostgresError`.
    public func transaction(_ queries: [PostgresQuery]) async throws -> [PostgresRows] {
        try await cancellable(queries.first?.sql) { try await self.pipeline(queries) }
    }

    // MARK: - LISTEN / NOTIFY

    /// Subscribes this connection to a channel. Use a connection dedicated to listening.
    public func listen(_ channel: String) async throws {
        let quoted = try withPG("LISTEN") { pg throws(PostgresError) -> String in
            guard !channel.utf8.contains(0), let quoted = PQescapeIdentifier(pg, channel, channel.utf8.count) else {
                throw PostgresError(kind: .invalidParameter, message: "invalid channel name")
            }
            defer { PQfreemem(quoted) }
            return String(cString: quoted)
        }
        try await executeScript("LISTEN " + quoted)
    }

    /// The notifications this connection receives, until the stream is dropped or the
    /// connection breaks (then the stream finishes with `.connectionLost`). While the stream
    /// is being consumed, the connection must not run statements.
    public func notifications() -> AsyncThrowingStream<PostgresNotification, any Error> {
        let stopped = Mutex(false)
        return AsyncThrowingStream { continuation in
            continuation.onTermination = { _ in stopped.withLock { $0 = true } }
            queue.async {
                // The lock is held to read, not while polling, so `close()` never waits long.
                enum Step {
                    case poll(Int32)
                    case closed
                    case lost(String)
                }
                while !stopped.withLock({ $0 }) {
                    let step = self.lock.withLock { _ -> Step in
                        guard let pg = self.pg else { return .closed }
                        while let n = PQnotifies(pg) {
                            let note = PostgresNotification(
                                channel: String(cString: n.pointee.relname),
                                payload: String(cString: n.pointee.extra),
                                pid: Int(n.pointee.be_pid)
                            )
                            PQfreemem(n)
                            continuation.yield(note)
                        }
                        return .poll(PQsocket(pg))
                    }
                    guard case .poll(let socket) = step else {
                        continuation.finish(throwing: PostgresError(kind: .connectionLost, message: "connection closed"))
                        return
                    }
                    var fd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
                    if poll(&fd, 1, 200) > 0 {
                        let read = self.lock.withLock { _ -> Step in
                            guard let pg = self.pg else { return .closed }
                            return PQconsumeInput(pg) == 0 ? .lost(String(cString: PQerrorMessage(pg))) : .poll(socket)
                        }
                        switch read {
                        case .poll: break
                        case .closed:
                            continuation.finish(throwing: PostgresError(kind: .connectionLost, message: "connection closed"))
                            return
                        case .lost(let message):
                            continuation.finish(throwing: PostgresError(kind: .connectionLost, message: message))
                            return
                        }
                    }
                }
                continuation.finish()
            }
        }
    }

    // MARK: - State

    /// Whether the connection is open and not in the middle of a transaction. Reads any
    /// bytes the server sent while the connection sat idle, so a server that shut down
    /// (and told us so, or closed the socket) is noticed here, before anyone uses it.
    /// Call only while no statement is running on the connection.
    public var isUsable: Bool {
        lock.withLock { _ in
            guard let pg, PQstatus(pg) == CONNECTION_OK else { return false }
            guard PQtransactionStatus(pg) == PQTRANS_IDLE else { return false }
            // A server that shut down sent an error message and then closed the socket; one
            // read takes the message, a later one sees the end of the stream. Keep reading
            // while the socket is readable (a healthy idle connection has nothing to read).
            for _ in 0..<8 {
                var fd = pollfd(fd: PQsocket(pg), events: Int16(POLLIN), revents: 0)
                guard poll(&fd, 1, 0) > 0 else { break }
                guard PQconsumeInput(pg) != 0 else { return false }
            }
            return PQstatus(pg) == CONNECTION_OK
        }
    }

    /// Whether the connection is open and outside any transaction, from libpq's own state
    /// (no read of the socket): what the pool asks of a connection given back after a call.
    public var isIdle: Bool {
        lock.withLock { _ in pg.map { PQstatus($0) == CONNECTION_OK && PQtransactionStatus($0) == PQTRANS_IDLE } ?? false }
    }

    /// Whether the connection is still open (possibly inside a transaction).
    public var isOpen: Bool {
        lock.withLock { _ in pg.map { PQstatus($0) == CONNECTION_OK } ?? false }
    }

    /// The server process id serving this connection (useful in tests and logs).
    public var backendPID: Int {
        lock.withLock { _ in pg.map { Int(PQbackendPID($0)) } ?? 0 }
    }

    /// Closes the connection. Later calls throw `.connectionLost`.
    public func close() {
        lock.withLock { _ in
            if let pg { PQfinish(pg) }
            pg = nil
        }
    }

    /// Asks the server to cancel the running statement, if any. Safe from any thread.
    public func cancel() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    // MARK: - Statements

    /// Runs a statement, prepared once per connection, from the calling task's thread: the
    /// statement is sent at once and the task waits for the answer on `SocketPoller`, not on
    /// a thread of its own. libpq is touched only inside `lock`, released while the task waits.
    private func exec(_ query: PostgresQuery) async throws -> PostgresRows {
        let checked = try withPG(query.sql) { pg throws(PostgresError) in try self.plan(query, pg: pg) }
        let name = checked.name
        if let candidate = name, checked.prepare {
            // A statement that does not prepare would not run either: the server's reason
            // (a syntax error, an unknown column) is the answer. Running it unprepared
            // instead, inside a transaction, only said "current transaction is aborted".
            _ = try await exchange(query.sql) { pg in PQsendPrepare(pg, candidate, query.sql, Int32(query.binds.count), nil) }
            lock.withLock { _ in prepared[query.sql] = candidate }
        }
        return try await exchange(query.sql) { pg in
            Self.withParameters(query.binds) { values, count in
                if let name {
                    return PQsendQueryPrepared(pg, name, count, values, nil, nil, 0)
                }
                return PQsendQueryParams(pg, query.sql, count, nil, values, nil, nil, 0)
            }
        }
    }

    /// `transaction`'s work: prepares what this connection has not prepared yet (a round trip
    /// each, once per connection), then sends every statement and one Sync in pipeline mode
    /// and reads each statement's results up to the Sync's.
    private func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresRows] {
        let shown = queries.first?.sql ?? ""
        var names: [String?] = []
        for query in queries {
            let checked = try withPG(query.sql) { pg throws(PostgresError) in
                guard PQtransactionStatus(pg) == PQTRANS_IDLE else {
                    throw PostgresError(
                        kind: .invalidParameter,
                        message: "a pipelined transaction cannot run inside another transaction",
                        query: query.sql
                    )
                }
                return try self.plan(query, pg: pg)
            }
            if let candidate = checked.name, checked.prepare {
                _ = try await exchange(query.sql) { pg in PQsendPrepare(pg, candidate, query.sql, Int32(query.binds.count), nil) }
                lock.withLock { _ in prepared[query.sql] = candidate }
            }
            names.append(checked.name)
        }
        let fd = try withPG(shown) { pg throws(PostgresError) -> Int32 in
            guard PQenterPipelineMode(pg) == 1 else { throw self.failure(pg, query: shown) }
            for (query, name) in zip(queries, names) {
                let sent = Self.withParameters(query.binds) { values, count in
                    if let name { return PQsendQueryPrepared(pg, name, count, values, nil, nil, 0) }
                    return PQsendQueryParams(pg, query.sql, count, nil, values, nil, nil, 0)
                }
                guard sent == 1 else {
                    let error = self.failure(pg, query: query.sql)
                    self.closeLocked()
                    throw error
                }
            }
            guard PQpipelineSync(pg) == 1 else {
                let error = self.failure(pg, query: shown)
                self.closeLocked()
                throw error
            }
            return PQsocket(pg)
        }
        let deadline = answerDeadline.map { ContinuousClock.now + $0 }
        try await flush(fd, sql: shown, until: deadline)
        var results: [PostgresRows] = []
        var firstError: PostgresError?
        var synced = false
        while !synced {
            try withPG(shown) { pg throws(PostgresError) in
                guard PQconsumeInput(pg) != 0 else { throw self.failure(pg, query: shown) }
                // A NULL ends one statement's results; the Sync's result ends the pipeline.
                var nulls = 0
                while !synced, PQisBusy(pg) == 0 {
                    guard let result = PQgetResult(pg) else {
                        // Two in a row: nothing more has arrived yet.
                        nulls += 1
                        if nulls > 1 { break }
                        continue
                    }
                    nulls = 0
                    switch PQresultStatus(result) {
                    case PGRES_PIPELINE_SYNC:
                        PQclear(result)
                        synced = true
                    case PGRES_PIPELINE_ABORTED:
                        PQclear(result)
                    default:
                        let query = results.count < queries.count ? queries[results.count].sql : shown
                        do throws(PostgresError) {
                            results.append(try self.collect(result, pg: pg, query: query))
                        } catch {
                            if firstError == nil { firstError = error }
                        }
                    }
                }
                // A connection left in pipeline mode could not run a plain statement again.
                if synced, PQexitPipelineMode(pg) != 1 {
                    let error = self.failure(pg, query: shown)
                    self.closeLocked()
                    throw error
                }
            }
            if !synced { try await wait(fd, .readable, sql: shown, until: deadline) }
        }
        if let firstError { throw firstError }
        guard results.count == queries.count else {
            throw PostgresError(kind: .server, message: "the server answered \(results.count) of \(queries.count) statements", query: shown)
        }
        return results
    }

    /// One command's round trip (a statement, or a script of several): `send` queues it (libpq
    /// copies the parameters), then the output is flushed and the answer read as the socket
    /// allows, waiting on the poller in between. Returns the first error, else the last
    /// result; every result is read, so the connection is ready for the next command
    /// whatever happens, unless it broke.
    private func exchange(_ sql: String, send: (OpaquePointer) -> Int32) async throws -> PostgresRows {
        let deadline = answerDeadline.map { ContinuousClock.now + $0 }
        let fd = try withPG(sql) { pg throws(PostgresError) -> Int32 in
            guard send(pg) == 1 else { throw self.failure(pg, query: sql) }
            return PQsocket(pg)
        }
        try await flush(fd, sql: sql, until: deadline)
        var outcome: Result<PostgresRows, PostgresError>?
        while true {
            let done = try withPG(sql) { pg throws(PostgresError) -> Bool in
                guard PQconsumeInput(pg) != 0 else { throw self.failure(pg, query: sql) }
                while PQisBusy(pg) == 0 {
                    guard let result = PQgetResult(pg) else { return true }
                    if case .failure = outcome {
                        PQclear(result)
                    } else {
                        outcome = Result { () throws(PostgresError) -> PostgresRows in try self.collect(result, pg: pg, query: sql) }
                    }
                }
                return false
            }
            if done { break }
            try await wait(fd, .readable, sql: sql, until: deadline)
        }
        guard let outcome else { throw PostgresError(kind: .server, message: "the server sent no result", query: sql) }
        return try outcome.get()
    }

    /// Sends what did not fit in the socket's buffer (a large statement or parameter).
    private func flush(_ fd: Int32, sql: String, until deadline: ContinuousClock.Instant?) async throws {
        while true {
            let flushed = try withPG(sql) { pg throws(PostgresError) -> Bool in
                switch PQflush(pg) {
                case 0: return true
                case 1:
                    // The server may be waiting for us to read before it reads more.
                    guard PQconsumeInput(pg) != 0 else { throw self.failure(pg, query: sql) }
                    return false
                default: throw self.failure(pg, query: sql)
                }
            }
            if flushed { return }
            try await wait(fd, .readableOrWritable, sql: sql, until: deadline)
        }
    }

    /// Waits for the socket; past the answer deadline the server is taken for frozen or cut
    /// off: the connection closes (the pool drops it) and the caller gets a transient error.
    private func wait(_ fd: Int32, _ interest: SocketPoller.Interest, sql: String, until deadline: ContinuousClock.Instant?) async throws {
        guard await SocketPoller.shared.wait(for: fd, interest, until: deadline) else {
            close()
            throw PostgresError(
                kind: .timedOut,
                message: "no answer from the database within \(answerDeadline ?? .zero); the connection was closed",
                query: sql
            )
        }
    }

    /// Closes the connection; call holding `lock`.
    private func closeLocked() {
        if let pg { PQfinish(pg) }
        pg = nil
    }

    /// The parameters as the C strings libpq reads (`nil` is NULL), all in one buffer: a
    /// `strdup` per parameter was a third of a statement's allocations.
    static func withParameters<R>(_ binds: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?, Int32) -> R) -> R {
        var storage: [UInt8] = []
        storage.reserveCapacity(binds.reduce(0) { $0 + ($1?.utf8.count ?? 0) + 1 })
        var offsets: [Int] = []
        offsets.reserveCapacity(binds.count)
        for bind in binds {
            guard var bind else {
                offsets.append(-1)
                continue
            }
            offsets.append(storage.count)
            bind.withUTF8 { storage.append(contentsOf: $0) }
            storage.append(0)
        }
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress)
            let pointers = offsets.map { offset -> UnsafePointer<CChar>? in
                guard offset >= 0, let base else { return nil }
                return (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return pointers.withUnsafeBufferPointer { body($0.baseAddress, Int32($0.count)) }
        }
    }

    /// Runs `body` holding `lock`, with the connection; throws `.connectionLost` once closed.
    private func withPG<T>(_ sql: String, _ body: (OpaquePointer) throws(PostgresError) -> T) throws(PostgresError) -> T {
        try locked { () throws(PostgresError) -> T in
            guard let pg else { throw PostgresError(kind: .connectionLost, message: "connection closed", query: sql) }
            return try body(pg)
        }
    }

    /// The error libpq reports for a failed call on the connection.
    private func failure(_ pg: OpaquePointer, query: String) -> PostgresError {
        PostgresError(
            kind: PQstatus(pg) == CONNECTION_OK ? .server : .connectionLost,
            message: String(cString: PQerrorMessage(pg)),
            query: query
        )
    }

    // MARK: - Internals

    /// Runs `body` holding `lock` (every libpq call on `pg` does).
    private func locked<T>(_ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        try lock.withLock { (_: inout ()) throws(PostgresError) -> T in try body() }
    }

    /// What running `query` takes (call holding `lock`): the name it is prepared under, and
    /// whether it must be prepared first (`name` is then the one to give it; `nil` with
    /// `false`: run it unprepared, as once 200 are prepared or inside a failed transaction).
    /// Refuses NUL bytes, which PostgreSQL text cannot hold (libpq would cut the text short).
    /// One lookup of the (long) statement text per run; a prepared statement's text was
    /// checked when it was prepared.
    private func plan(_ query: PostgresQuery, pg: OpaquePointer) throws(PostgresError) -> (name: String?, prepare: Bool) {
        let name = prepared[query.sql]
        if name == nil, Self.hasNUL(query.sql) {
            throw PostgresError(kind: .invalidParameter, message: "the statement contains a NUL byte", query: query.sql)
        }
        for (n, bind) in query.binds.enumerated() where bind.map(Self.hasNUL) == true {
            throw PostgresError(
                kind: .invalidParameter,
                message: "parameter $\(n + 1) contains a NUL byte, which PostgreSQL text cannot hold",
                query: query.sql
            )
        }
        if let name { return (name, false) }
        let prepare = prepared.count < Self.maxPrepared && PQtransactionStatus(pg) != PQTRANS_INERROR
        return (prepare ? "hr_\(prepared.count + 1)" : nil, prepare)
    }

    /// Whether a string holds a NUL byte (memchr over its UTF-8, not a byte-by-byte loop).
    static func hasNUL(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }
    }

    private func collect(_ result: OpaquePointer?, pg: OpaquePointer, query: String) throws(PostgresError) -> PostgresRows {
        guard let result else {
            throw PostgresError(
                kind: PQstatus(pg) == CONNECTION_OK ? .server : .connectionLost,
                message: String(cString: PQerrorMessage(pg)),
                query: query
            )
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY else {
            throw Self.error(from: result, connectionOK: PQstatus(pg) == CONNECTION_OK, query: query)
        }
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        columns.reserveCapacity(columnCount)
        for c in 0..<columnCount { columns.append(String(cString: PQfname(result, Int32(c)))) }
        var cells: [String?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for r in 0..<rowCount {
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) != 0 {
                    cells.append(nil)
                } else {
                    // libpq knows each value's length: no strlen, and the bytes are copied once.
                    let length = Int(PQgetlength(result, Int32(r), Int32(c)))
                    let bytes = UnsafeRawPointer(PQgetvalue(result, Int32(r), Int32(c)))?.assumingMemoryBound(to: UInt8.self)
                    cells.append(String(decoding: UnsafeBufferPointer(start: bytes, count: bytes == nil ? 0 : length), as: UTF8.self))
                }
            }
        }
        let tuples = String(cString: PQcmdTuples(result))
        let tag = String(cString: PQcmdStatus(result))
        return PostgresRows(columns: columns, cells: cells, rowCount: rowCount, affectedRows: Int(tuples) ?? rowCount, commandTag: tag)
    }

    private static func error(from result: OpaquePointer, connectionOK: Bool, query: String) -> PostgresError {
        func field(_ code: UInt8) -> String? {
            guard let p = PQresultErrorField(result, Int32(code)) else { return nil }
            return String(cString: p)
        }
        let message = field(UInt8(ascii: "M")) ?? String(cString: PQresultErrorMessage(result))
        return PostgresError(
            kind: connectionOK ? .server : .connectionLost,
            message: message,
            sqlState: field(UInt8(ascii: "C")),
            detail: field(UInt8(ascii: "D")),
            hint: field(UInt8(ascii: "H")),
            constraint: field(UInt8(ascii: "n")),
            table: field(UInt8(ascii: "t")),
            column: field(UInt8(ascii: "c")),
            query: query
        )
    }
}

/// A message received on a channel the connection LISTENs to.
public struct PostgresNotification: Sendable, Equatable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var pid: Int
}

/// The state of one statement call, shared by the work and the task's cancellation handler.
final class StatementCall: Sendable {
    private struct State {
        var running = false
        var cancelled = false
        var cancelSent = false
    }
    private let state = Mutex(State())

    /// Marks the statement running; answers false when it was cancelled already.
    func start() -> Bool {
        state.withLock { s in
            s.running = true
            return !s.cancelled
        }
    }

    /// Marks the statement finished; answers whether a cancel request was sent for it (then
    /// the connection must not run another statement: that request may still arrive).
    func finish() -> Bool {
        state.withLock { s in
            s.running = false
            return s.cancelSent
        }
    }

    func cancel() { state.withLock { $0.cancelled = true } }

    /// Runs `send` only while the statement runs, under the same lock `finish` takes: a cancel
    /// request is never sent after the statement finished. Answers whether it was still running.
    func whileRunning(_ send: () -> Void) -> Bool {
        state.withLock { s in
            guard s.running else { return false }
            send()
            s.cancelSent = true
            return true
        }
    }
}
