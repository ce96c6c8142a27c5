import Foundation
import HandrailStore
import Hummingbird
import Logging
import NIOCore
import Postgres
import Prometheus
import TestSupport
import Testing

@testable import HandrailServer

func configuration(_ conninfo: String, migrations: URL = TestDatabase.migrationsDirectory) -> HandrailConfiguration {
    var c = HandrailConfiguration.checkout(root: TestDatabase.checkoutRoot)
    c.databaseURL = conninfo
    c.migrationsDirectory = migrations
    c.maxDatabaseConnections = 2
    // Live-update streams end quickly, so walking every route does not wait on one.
    c.liveStreamLifetime = .milliseconds(200)
    c.liveRefreshInterval = .milliseconds(50)
    return c
}

func json(_ response: TestSupport.TestResponse) throws -> [String: String] {
    try JSONDecoder().decode([String: String].self, from: Data(response.body.readableBytesView))
}

@Suite struct HealthRoutesTests {
    @Test func readyOnAMigratedDatabaseAndMetricsCountRequests() async throws {
        try await TestDatabase.withEmpty { _, conninfo in
            let registry = PrometheusCollectorRegistry()
            let app = try await buildApplication(configuration: configuration(conninfo), registry: registry)
            try await app.testRouter { client in
                do {
                    let response = try await client.execute("/healthz")
                    #expect(response.status == .ok)
                    let body = try json(response)
                    #expect(body["status"] == "ok")
                }
                do {
                    let response = try await client.execute("/readyz")
                    #expect(response.status == .ok)
                    let body = try json(response)
                    #expect(body["status"] == "ready")
                }
                #expect(try await client.execute("/readyz").status == .ok)
                do {
                    let response = try await client.execute("/metrics", from: try SocketAddress(ipAddress: "127.0.0.1", port: 40000))
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                    let text = response.text
                    #expect(text.contains(#"handrail_http_requests_total{route="/readyz",method="GET",status="200"} 2"#))
                    #expect(text.contains(#"handrail_http_requests_total{route="/healthz",method="GET",status="200"} 1"#))
                    #expect(text.contains("handrail_http_request_duration_seconds_bucket"))
                }
                do {
                    let response = try await client.execute("/openapi.yaml")
                    #expect(response.status == .ok)
                    #expect(response.text.contains("openapi: 3"))
                }
            }
        }
    }

    @Test func notReadyWhileMigrationsArePending() async throws {
        try await TestDatabase.withEmpty { pool, conninfo in
            var config = configuration(conninfo)
            config.applyMigrations = false
            let app = try await buildApplication(configuration: config)
            try await app.testRouter { client in
                do {
                    let response = try await client.execute("/readyz")
                    #expect(response.status == .serviceUnavailable)
                    let body = try json(response)
                    #expect(body["reason"]?.contains("migrate") == true)
                }
                try await Migrator(directory: TestDatabase.migrationsDirectory).migrate(pool)
                #expect(try await client.execute("/readyz").status == .ok)
            }
        }
    }

    @Test func notReadyWhileTheDatabaseIsDownAndReadyAgainAfter() async throws {
        let (server, conninfo) = try await PrivateCluster.start()
        do {
            let app = try await buildApplication(configuration: configuration(conninfo))
            try await app.testRouter { client in
                #expect(try await client.execute("/readyz").status == .ok)
                try await server.cluster.stop()
                do {
                    let response = try await client.execute("/readyz")
                    #expect(response.status == .serviceUnavailable)
                    let body = try json(response)
                    #expect(body["reason"] == "the database does not answer")
                }
                #expect(try await client.execute("/healthz").status == .ok)
                _ = try await server.cluster.start()
                #expect(try await client.execute("/readyz").status == .ok)
            }
            await server.destroy()
        } catch {
            await server.destroy()
            throw error
        }
    }
}

@Suite struct StartupTests {
    @Test func unreachableDatabaseFailsFastInOneLineWithoutThePassword() async throws {
        let start = ContinuousClock.now
        do {
            _ = try await buildApplication(configuration: configuration("postgresql://handrail:hunter2-secret@127.0.0.1:1/handrail"))
            Issue.record("started without a database")
        } catch let error as StartupError {
            #expect(error.description.contains("cannot connect to PostgreSQL"))
            #expect(error.description.contains("127.0.0.1"))
            #expect(!error.description.contains("hunter2-secret"))
            #expect(!error.description.contains("\n"))
        }
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test func wrongDatabaseNameIsNamed() async throws {
        let bad = TestDatabase.conninfo(try TestDatabase.adminConninfo(), database: "no_such_database_here")
        await #expect {
            _ = try await buildApplication(configuration: configuration(bad))
        } throws: { error in
            (error as? StartupError)?.description.contains("no_such_database_here") == true
        }
    }

    @Test func editedMigrationStopsTheServerWithTheFileNamed() async throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("migrations-" + UUID().uuidString)
        try FileManager.default.copyItem(at: TestDatabase.migrationsDirectory, to: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        try await TestDatabase.withMigrated { _, conninfo in
            let first = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted().first)
            let file = dir.appendingPathComponent(first)
            try (try String(contentsOf: file, encoding: .utf8) + "\n-- an edit after the fact\n").write(to: file, atomically: true, encoding: .utf8)
            await #expect {
                _ = try await buildApplication(configuration: configuration(conninfo, migrations: dir))
            } throws: { error in
                guard let message = (error as? StartupError)?.description else { return false }
                return message.contains(first) && message.contains("changed")
            }
        }
    }
}

@Suite struct ErrorMappingTests {
    /// The router the server uses, plus routes that fail in the ways handlers can fail.
    func app(_ conninfo: String) async throws -> some ApplicationProtocol {
        let database = try await HandrailDatabase.open(databaseURL: conninfo, dataDirectory: URL(fileURLWithPath: "/nonexistent"))
        let config = configuration(conninfo)
        let (router, _) = buildRouter(
            database: database,
            migrator: try Migrator(directory: TestDatabase.migrationsDirectory),
            configuration: config,
            registry: PrometheusCollectorRegistry(),
            auth: AuthService(database: database, settings: config.security),
            pages: try await Pages.load(from: config.templatesDirectory, logger: Logger(label: "test")),
            logger: Logger(label: "test")
        )
        router.get("/db-down") { _, _ -> String in throw PostgresError(kind: .connectionLost, message: "server closed the connection") }
        router.get("/bug") { _, _ -> String in
            throw PostgresError(kind: .server, message: "relation \"secret_table\" does not exist", sqlState: "42P01")
        }
        router.get("/bad") { _, _ -> String in throw APIError(.badRequest, "labels.alertname is required", field: "labels.alertname") }
        return Application(router: router, services: [DatabaseService(database: database)])
    }

    @Test func databaseOutageAnswers503WithRetryAfter() async throws {
        try await TestDatabase.withEmpty { _, conninfo in
            try await app(conninfo).testRouter { client in
                do {
                    let response = try await client.execute("/db-down")
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] == "5")
                    #expect(response.text.contains("retry"))
                }
            }
        }
    }

    @Test func unexpectedErrorsAnswerAGeneric500WithoutDetails() async throws {
        try await TestDatabase.withEmpty { _, conninfo in
            try await app(conninfo).testRouter { client in
                do {
                    let response = try await client.execute("/bug")
                    #expect(response.status == .internalServerError)
                    #expect(!response.text.contains("secret_table"))
                }
                do {
                    let response = try await client.execute("/bad")
                    #expect(response.status == .badRequest)
                    let body = try JSONDecoder().decode(APIErrorBody.self, from: Data(response.body.readableBytesView))
                    #expect(body.error.field == "labels.alertname")
                    #expect(body.error.message == "labels.alertname is required")
                }
            }
        }
    }
}
