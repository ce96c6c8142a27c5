import Foundation
import Postgres
import TestSupport
import Testing

@testable import HandrailStore

@Suite struct EmbeddedPostgresTests {
    @Test func createsListensOnSocketOnlyStopsAndReusesData() async throws {
        let (server, conninfo) = try await PrivateCluster.start()
        do {
            let pool = PostgresPool(conninfo: conninfo, maxConnections: 1)
            let settings = try #require(
                try await pool.query(
                    "SELECT current_setting('listen_addresses') AS listen, current_database() AS db, current_setting('wal_init_zero') AS zero"
                ).first
            )
            #expect(try settings.decode("listen", as: String.self) == "")
            // New WAL segments are not zero-filled while commits wait (a storm's p99).
            #expect(try settings.decode("zero", as: String.self) == "off")
            #expect(try settings.decode("db", as: String.self) == EmbeddedPostgres.databaseName)
            try await pool.execute("CREATE TABLE kept (v text)")
            try await pool.execute("INSERT INTO kept VALUES (\("survives a restart"))")
            pool.close()

            try await server.cluster.stop()
            #expect(try await server.cluster.isRunning() == false)

            // Started again: same cluster, same data, no new initdb.
            let again = try await server.cluster.start()
            #expect(again == conninfo)
            let pool2 = PostgresPool(conninfo: again, maxConnections: 1)
            let value = try await pool2.query("SELECT v FROM kept").first?.decode("v", as: String.self)
            #expect(value == "survives a restart")
            pool2.close()
            await server.destroy()
        } catch {
            await server.destroy()
            throw error
        }
    }

    /// A Handrail killed with SIGKILL never runs `close`; the kernel drops its lease, and the
    /// watchdog stops the cluster. The next start finds it stopped and starts it again.
    @Test func aClusterNobodyHoldsAnyMoreIsStoppedByItsWatchdog() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("hr-" + UUID().uuidString.prefix(8))
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try EmbeddedPostgres(dataDirectory: directory)
        let lease = try cluster.lease()
        do { _ = try await cluster.start() } catch {
            Issue.record("first start: \(error); log: \((try? String(contentsOf: cluster.logFile, encoding: .utf8)) ?? "")")
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await cluster.isRunning(), "stopped while still held")
        lease.release()  // what the kernel does for a killed process
        var running = true
        for _ in 0..<100 where running {
            try await Task.sleep(for: .milliseconds(100))
            running = try await cluster.isRunning()
        }
        #expect(!running, "the cluster outlived its last user by 10 s")
        let again = try cluster.lease()
        do { _ = try await cluster.start() } catch {
            Issue.record("second start: \(error); log: \((try? String(contentsOf: cluster.logFile, encoding: .utf8)) ?? "")")
        }
        #expect(try await cluster.isRunning())
        again.release()
        try await cluster.stop()
    }

    @Test func lastUserStopsTheClusterOthersLeaveItRunning() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("hr-" + UUID().uuidString.prefix(8))
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try await HandrailDatabase.open(databaseURL: nil, dataDirectory: directory)
        let second = try await HandrailDatabase.open(databaseURL: nil, dataDirectory: directory)
        let cluster = try EmbeddedPostgres(dataDirectory: directory)
        await first.close()
        #expect(try await cluster.isRunning(), "closing one of two users stopped the cluster")
        try await second.pool.execute("SELECT 1")
        await second.close()
        #expect(try await cluster.isRunning() == false, "the last user left the cluster running")
    }

    @Test func missingServerProgramsSayWhatToInstallInOneLine() throws {
        do {
            _ = try EmbeddedPostgres(
                dataDirectory: URL(fileURLWithPath: "/tmp/unused"),
                searchPath: "/nonexistent/bin",
                postgresqlRoot: "/nonexistent/lib"
            )
            Issue.record("found PostgreSQL programs where there are none")
        } catch let failure as EmbeddedPostgres.Failure {
            #expect(failure.description.contains("apt-get install postgresql"))
            #expect(failure.description.contains("DATABASE_URL"))
            #expect(!failure.description.contains("\n"))
        }
    }

    @Test func serverProgramsAreFoundInDebiansVersionedFolders() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pgroot-" + UUID().uuidString.prefix(8))
        defer { try? FileManager.default.removeItem(at: root) }
        for version in ["13", "16"] {
            let bin = root.appendingPathComponent("\(version)/bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            for tool in ["initdb", "pg_ctl"] {
                _ = FileManager.default.createFile(
                    atPath: bin.appendingPathComponent(tool).path,
                    contents: Data("#!/bin/sh\n".utf8),
                    attributes: [.posixPermissions: 0o755]
                )
            }
        }
        // The newest version wins when PATH has none.
        let cluster = try EmbeddedPostgres(
            dataDirectory: URL(fileURLWithPath: "/tmp/unused"),
            searchPath: "/nonexistent/bin",
            postgresqlRoot: root.path
        )
        #expect(cluster.binDirectory.path == root.appendingPathComponent("16/bin").path)
    }
}
