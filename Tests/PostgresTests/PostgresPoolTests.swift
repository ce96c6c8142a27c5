import Foundation
import HandrailStore
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite struct PostgresTransactionTests {
    struct Boom: Error {}

    @Test func transactionRollsBackWhenBodyThrows() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE t (v text)")
            await #expect(throws: Boom.self) {
                try await pool.withTransaction { tx in
                    try await tx.execute("INSERT INTO t VALUES (\("lost"))")
                    throw Boom()
                }
            }
            #expect(try await pool.query("SELECT v FROM t").isEmpty)
            // The pool's connection is usable and outside any transaction afterwards.
            try await pool.withTransaction { tx in try await tx.execute("INSERT INTO t VALUES (\("kept"))") }
            #expect(try await pool.query("SELECT v FROM t").map { try $0.decode("v", as: String.self) } == ["kept"])
        }
    }

    @Test func swallowedStatementErrorMakesCommitFailInsteadOfSilentlyRollingBack() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE t (v int PRIMARY KEY)")
            await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in
                    try await tx.execute("INSERT INTO t VALUES (1)")
                    _ = try? await tx.execute("INSERT INTO t VALUES (1)")  // fails, aborts the transaction
                }
            }
            #expect(try await pool.query("SELECT v FROM t").isEmpty)
        }
    }

    @Test func aStatementThatCannotRunSaysWhyEvenInsideATransaction() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE t (v int)")
            for inTransaction in [false, true] {
                let error = await #expect(throws: PostgresError.self) {
                    if inTransaction {
                        try await pool.withTransaction { tx in try await tx.execute("SELECT nope FROM t WHERE v = \(1)") }
                    } else {
                        try await pool.execute("SELECT nope FROM t WHERE v = \(1)")
                    }
                }
                #expect(error?.sqlState == "42703", "undefined column, not 'transaction aborted' (in a transaction: \(inTransaction))")
                #expect(error?.message.contains("nope") == true)
            }
            // The connection goes on working afterwards, and so does a statement that failed once.
            try await pool.execute("ALTER TABLE t ADD COLUMN nope int")
            #expect(try await pool.query("SELECT nope FROM t WHERE v = \(1)").isEmpty)
        }
    }

    @Test func pipelinedStatementsCommitTogetherAndEachReturnsItsRows() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE t (v int PRIMARY KEY)")
            // Twice: the first run prepares the statements, the second runs them prepared.
            for start in [1, 10] {
                let answers = try await pool.transaction([
                    "INSERT INTO t VALUES (\(start)), (\(start + 1))",
                    "SELECT v FROM t WHERE v >= \(start) ORDER BY v",
                    "SELECT txid_current() AS tx",
                    "SELECT txid_current() AS tx",
                ])
                #expect(answers.count == 4)
                #expect(answers[0].affectedRows == 2)
                #expect(
                    try answers[1].map { try $0.decode("v", as: Int.self) } == [start, start + 1],
                    "the second statement sees the first one's rows"
                )
                #expect(try answers[2].first?.decode("tx", as: Int64.self) == answers[3].first?.decode("tx", as: Int64.self), "one transaction")
            }
            #expect(try await pool.query("SELECT count(*) AS n FROM t").first?.decode("n", as: Int.self) == 4)
        }
    }

    @Test func aFailingPipelinedStatementRollsBackTheOthersAndSaysWhy() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE t (v int PRIMARY KEY)")
            try await pool.execute("INSERT INTO t VALUES (1)")
            // The first statement fails (the rest is skipped), then the last one (the first is undone).
            for failing in [0, 1] {
                let statements: [PostgresQuery] =
                    failing == 0
                    ? ["INSERT INTO t VALUES (\(1))", "INSERT INTO t VALUES (\(2))"]
                    : ["INSERT INTO t VALUES (\(2))", "INSERT INTO t VALUES (\(1))"]
                let error = await #expect(throws: PostgresError.self) { try await pool.transaction(statements) }
                #expect(error?.sqlState == "23505")
                #expect(error?.constraint == "t_pkey")
                #expect(try await pool.query("SELECT v FROM t ORDER BY v").map { try $0.decode("v", as: Int.self) } == [1])
            }
            // The pool's connections work afterwards, pipelined or not.
            _ = try await pool.transaction(["INSERT INTO t VALUES (\(2))"])
            #expect(try await pool.query("SELECT v FROM t ORDER BY v").map { try $0.decode("v", as: Int.self) } == [1, 2])
            let inside = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction { tx in _ = try await tx.transaction(["SELECT 1"]) }
            }
            #expect(inside?.message.contains("inside another transaction") == true)
        }
    }

    @Test func uniqueViolationIsRecognisableBySQLStateAndConstraint() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE people (email text CONSTRAINT people_email_key UNIQUE)")
            try await pool.execute("INSERT INTO people VALUES (\("a@example.com"))")
            do {
                try await pool.execute("INSERT INTO people VALUES (\("a@example.com"))")
                Issue.record("the duplicate insert succeeded")
            } catch let error as PostgresError {
                #expect(error.sqlState == "23505")
                #expect(error.isUniqueViolation)
                #expect(error.constraint == "people_email_key")
                #expect(error.table == "people")
                // The plain description is generic; the detail is for logs.
                #expect(!error.description.contains("a@example.com"))
                #expect(!error.description.contains("people"))
                #expect(String(reflecting: error).contains("people_email_key"))
                #expect(String(reflecting: error).contains("23505"))
            }
        }
    }
}

@Suite struct PostgresPoolTests {
    @Test func fullPoolMakesCallersWaitThenProceed() async throws {
        let conninfo = try TestDatabase.conninfo(TestDatabase.adminConninfo(), database: "postgres")
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 2, checkoutTimeout: .seconds(30))
        defer { pool.close() }
        let events = Recorder()
        let gate = Gate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<2 {
                group.addTask {
                    try await pool.withConnection { c in
                        events.append("hold\(n)")
                        await gate.wait()
                        try await c.execute("SELECT 1")
                        events.append("free\(n)")
                    }
                }
            }
            try await until { events.all.count == 2 }
            #expect(pool.statistics.open == 2)
            group.addTask {
                try await pool.withConnection { c in
                    events.append("third")
                    try await c.execute("SELECT 1")
                }
            }
            // The third caller waits in line while both connections are held…
            try await until { pool.statistics.waiting == 1 }
            #expect(!events.all.contains("third"))
            // …and proceeds once one is given back.
            await gate.open()
            try await group.waitForAll()
        }
        let order = events.all
        let third = try #require(order.firstIndex(of: "third"))
        let firstFree = try #require(order.firstIndex { $0.hasPrefix("free") })
        #expect(firstFree < third)
        #expect(pool.statistics.open <= 2)
    }

    @Test func waitingLongerThanTheCheckoutTimeoutFails() async throws {
        let conninfo = try TestDatabase.conninfo(TestDatabase.adminConninfo(), database: "postgres")
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 1, checkoutTimeout: .milliseconds(200))
        defer { pool.close() }
        try await pool.withConnection { _ in
            await #expect {
                try await pool.query("SELECT 1")
            } throws: { error in
                (error as? PostgresError)?.kind == .poolTimeout
            }
        }
        #expect(try await pool.query("SELECT 1 AS one").count == 1)
    }

    /// A second reader beside a held connection must not wait for one: with the pool full it
    /// is told so at once, and gets a connection when one is free.
    @Test func aFreeConnectionIsLentOnlyWhenOneIsFreeAndNeverWaitedFor() async throws {
        let conninfo = try TestDatabase.conninfo(TestDatabase.adminConninfo(), database: "postgres")
        // A checkout timeout far beyond any connection set-up on a loaded machine, so the
        // bound below tells "did not wait for it" from "the machine was slow" (5 s was not).
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 1, checkoutTimeout: .seconds(600))
        defer { pool.close() }
        let start = ContinuousClock.now
        let inside = try await pool.withConnection { _ in
            try await pool.withFreeConnection { c in try await c.query("SELECT 1 AS one").count }
        }
        #expect(inside == nil)
        #expect(start.duration(to: .now) < .seconds(300), "it must not wait for the checkout timeout")
        let free = try await pool.withFreeConnection { c in try await c.query("SELECT 1 AS one").count }
        #expect(free == 1)
        #expect(pool.statistics.waiting == 0)
    }

    @Test func connectionLeftInsideATransactionIsNotLentAgain() async throws {
        let conninfo = try TestDatabase.conninfo(TestDatabase.adminConninfo(), database: "postgres")
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 1)
        defer { pool.close() }
        let first = try await pool.withConnection { c in
            try await c.execute("BEGIN")
            return c.backendPID
        }
        let status = try await pool.withConnection { c in
            (c.backendPID, try await c.query("SELECT now() = statement_timestamp() AS fresh").first?.decode("fresh", as: Bool.self))
        }
        #expect(status.0 != first)
    }

    @Test func serverRestartMidTestThenNextQuerySucceeds() async throws {
        let (server, conninfo) = try await PrivateCluster.start()
        defer { Task { await server.destroy() } }
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 3)
        defer { pool.close() }
        let before = try await pool.withConnection { $0.backendPID }
        #expect(pool.statistics.idle == 1)

        try await server.cluster.stop()
        _ = try await server.cluster.start()

        // The idle connection died with the old server; the pool notices and connects anew.
        let after = try await pool.withConnection { c in
            (c.backendPID, try await c.query("SELECT 41 + 1 AS answer").first?.decode("answer", as: Int.self))
        }
        #expect(after.1 == 42)
        #expect(after.0 != before)
        await server.destroy()
    }

    @Test func queryDuringOutageFailsAsTransientThenRecovers() async throws {
        let (server, conninfo) = try await PrivateCluster.start()
        let pool = PostgresPool(conninfo: conninfo, maxConnections: 2)
        defer { pool.close() }
        try await pool.execute("SELECT 1")
        try await server.cluster.stop()
        do {
            try await pool.execute("SELECT 1")
            Issue.record("a query succeeded with the server stopped")
        } catch let error as PostgresError {
            #expect(error.isTransient)
        }
        _ = try await server.cluster.start()
        #expect(try await pool.query("SELECT 1 AS one").count == 1)
        await server.destroy()
    }
}

@Suite struct PostgresConnectionTests {
    @Test func unreachableServerFailsFastWithoutLeakingThePassword() async throws {
        let start = ContinuousClock.now
        do {
            _ = try await PostgresConnection.connect("postgresql://handrail:s3cret-pw@127.0.0.1:1/handrail")
            Issue.record("connected to a closed port")
        } catch let error as PostgresError {
            #expect(error.kind == .connectionFailed)
            #expect(error.isTransient)
            #expect(!error.oneLineMessage.contains("\n"))
            #expect(error.oneLineMessage.contains("127.0.0.1"))
            #expect(!String(reflecting: error).contains("s3cret-pw"))
        }
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test func keyValueConnectionStringsWork() async throws {
        let admin = try TestDatabase.adminConninfo()
        let connection = try await PostgresConnection.connect(admin + " application_name='handrail-kv-test'")
        defer { connection.close() }
        let name = try await connection.query("SELECT current_setting('application_name') AS n").first?.decode("n", as: String.self)
        #expect(name == "handrail-kv-test")
    }

    @Test func listenReceivesNotificationsFromOtherConnections() async throws {
        try await TestDatabase.withEmpty { pool, conninfo in
            let listener = try await PostgresConnection.connect(conninfo)
            defer { listener.close() }
            try await listener.listen("incident_changed")
            let received = Task {
                var payloads: [String] = []
                for try await note in listener.notifications() {
                    #expect(note.channel == "incident_changed")
                    payloads.append(note.payload)
                    if payloads.count == 2 { break }
                }
                return payloads
            }
            try await pool.notify(channel: "incident_changed", payload: "INC-1")
            // Inside a transaction, delivered only at COMMIT.
            try await pool.withTransaction { tx in
                try await tx.execute("SELECT pg_notify(\("incident_changed"), \("INC-2 ünïcode"))")
            }
            #expect(try await received.value == ["INC-1", "INC-2 ünïcode"])
        }
    }

    /// Statements wait for the server without a thread each (`SocketPoller`): many at once
    /// on one pool, values larger than a socket's buffer both ways, and none mixed up.
    @Test func manyStatementsAtOnceAndLargeValuesBothWaysComeBackIntact() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            let big = String(repeating: "0123456789abcdeé", count: 300_000)  // 5.1 MB, more than a socket buffer holds
            let echoed = try await pool.query("SELECT length(\(big)) AS n, md5(\(big)) AS h, \(big) AS back")
            #expect(try echoed.first?.decode("n", as: Int.self) == big.count)
            #expect(try echoed.first?.decode("back", as: String.self) == big)
            let sent = try await pool.query("SELECT repeat(\("xyz"), 2000000) AS v").first?.decode("v", as: String.self)
            #expect(sent?.utf8.count == 6_000_000)
            let small = PostgresPool(conninfo: pool.conninfo, maxConnections: 4)
            defer { small.close() }
            let answers = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for n in 0..<64 {
                    group.addTask {
                        let row = try await small.query("SELECT \(n) * 2 AS v, pg_sleep(\(Double(n % 4) / 100))").first
                        return (n, try row?.decode("v", as: Int.self) ?? -1)
                    }
                }
                return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
            }
            #expect(answers.count == 64)
            #expect(answers.allSatisfy { $0.value == $0.key * 2 })
        }
    }

    @Test func cancellingTheTaskCancelsTheRunningStatement() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            // At several moments: before the statement reaches the server, and while it runs.
            for delay in [0, 1, 5, 20, 300] {
                let start = ContinuousClock.now
                let task = Task { try await pool.execute("SELECT pg_sleep(30)") }
                try await Task.sleep(for: .milliseconds(delay))
                task.cancel()
                await #expect(throws: (any Error).self, "cancelled after \(delay) ms") { try await task.value }
                #expect(ContinuousClock.now - start < .seconds(10), "cancelled after \(delay) ms")
            }
            let value = try await pool.query("SELECT 1 AS one").first?.decode("one", as: Int.self)
            #expect(value == 1)
        }
    }
}

extension PostgresTransactionTests {
    @Test func cancellingAPipelinedTransactionStopsItAndKeepsNothing() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE t (v int)")
            for delay in [0, 20, 300] {
                let start = ContinuousClock.now
                let task = Task { try await pool.transaction(["INSERT INTO t VALUES (\(delay))", "SELECT pg_sleep(30)"]) }
                try await Task.sleep(for: .milliseconds(delay))
                task.cancel()
                await #expect(throws: (any Error).self, "cancelled after \(delay) ms") { try await task.value }
                #expect(ContinuousClock.now - start < .seconds(10), "cancelled after \(delay) ms")
            }
            #expect(try await pool.query("SELECT v FROM t").isEmpty, "the inserts were rolled back with the cancelled statement")
            _ = try await pool.transaction(["INSERT INTO t VALUES (\(1))"])
            #expect(try await pool.query("SELECT v FROM t").map { try $0.decode("v", as: Int.self) } == [1])
        }
    }
}

extension PostgresPoolTests {
    /// A cancel request may reach the server after its statement ended: the connection it was
    /// sent on is never lent again, so it cannot cancel the next borrower's statement.
    @Test func aConnectionThatWasSentACancelIsNotLentAgain() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            let cancelled = Mutex<Int?>(nil)
            let task = Task {
                try await pool.withConnection { connection in
                    cancelled.withLock { $0 = connection.backendPID }
                    try await connection.execute("SELECT pg_sleep(30)")
                }
            }
            // Cancel only once the statement runs (a cancel before it starts sends nothing).
            var running = false
            for _ in 0..<200 where !running {
                try await Task.sleep(for: .milliseconds(25))
                guard let pid = cancelled.withLock({ $0 }) else { continue }
                running =
                    try await pool.query(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = \(pid) AND state = 'active' AND query LIKE '%pg_sleep%'"
                    )[0].decode("n", as: Int.self) == 1
            }
            #expect(running)
            task.cancel()
            _ = try? await task.value
            let cancelledPID = try #require(cancelled.withLock { $0 })
            for _ in 0..<3 {
                let pid = try await pool.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int.self)
                #expect(pid != cancelledPID)
            }
        }
    }

    /// A statement past the pool's statement timeout fails as the database being unavailable
    /// (503 for a client), and the pool goes on serving.
    @Test func aStatementPastTheTimeoutFailsAsUnavailable() async throws {
        try await TestDatabase.withEmpty { _, conninfo in
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 2, statementTimeout: .seconds(1))
            defer { pool.close() }
            do {
                try await pool.execute("SELECT pg_sleep(5)")
                Issue.record("a five-second statement outlived a one-second timeout")
            } catch let error as PostgresError {
                #expect(error.isTransient, "\(String(reflecting: error))")
            }
            #expect(try await pool.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
        }
    }
}

/// A thread-safe list of events, in the order they happened.
final class Recorder: Sendable {
    private let events = Mutex<[String]>([])
    func append(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
}

/// A one-shot barrier: `wait` suspends until `open` is called.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func open() {
        isOpen = true
        for item in waiters { item.resume() }
        waiters.removeAll()
    }
}

/// Polls `condition` until it holds; fails the test after `timeout`.
func until(timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition did not hold within \(timeout)")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}
