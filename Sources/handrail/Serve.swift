import ArgumentParser
import Foundation
import HandrailCore
import HandrailServer
import HandrailStore
import Hummingbird
import Logging
import Metrics
import Prometheus
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Handrail server.",
        discussion: """
            With no DATABASE_URL, Handrail creates (the first time) and starts a private PostgreSQL \
            under HANDRAIL_DATA_DIR/postgres, on a Unix socket only, and stops it when Handrail stops \
            (SIGINT, SIGTERM). Pending migrations are applied at start unless --skip-migrations.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp("host:port to listen on. Env: HANDRAIL_LISTEN. Default: 127.0.0.1:8080", valueName: "host:port")
    )
    var listen: String?

    @Option(
        name: .customLong("runbooks-dir"),
        help: ArgumentHelp("Runbooks folder. Env: HANDRAIL_RUNBOOKS_DIR. Default: the shipped runbooks/", valueName: "path")
    )
    var runbooksDirectory: String?

    @Option(
        name: .customLong("templates-dir"),
        help: ArgumentHelp("Templates folder. Env: HANDRAIL_TEMPLATES_DIR. Default: the shipped templates/", valueName: "path")
    )
    var templatesDirectory: String?

    @Flag(
        name: .customLong("behind-tls-proxy"),
        help:
            "Served behind a TLS-terminating proxy: Secure cookies; a proxy on loopback is trusted unless --trusted-proxies says otherwise. Env: HANDRAIL_BEHIND_TLS_PROXY=1"
    )
    var behindTLSProxy = false

    @Option(
        name: .customLong("trusted-proxies"),
        help: ArgumentHelp(
            "Proxies whose X-Forwarded-For is believed (CIDRs, comma-separated); the client is the rightmost address no trusted proxy stands behind. Env: HANDRAIL_TRUSTED_PROXIES",
            valueName: "cidrs"
        )
    )
    var trustedProxies: String?

    @Flag(
        name: .customLong("metrics-public"),
        help: "Serve /metrics to everyone (default: loopback, or signed-in people elsewhere). Env: HANDRAIL_METRICS_PUBLIC=1"
    )
    var metricsPublic = false

    @Flag(
        name: .customLong("skip-migrations"),
        help: "Do not apply pending migrations at start (/readyz answers 503 until they are). Env: HANDRAIL_SKIP_MIGRATIONS=1"
    )
    var skipMigrations = false

    func run() async throws {
        let logger = bootstrapLogging(database.resolvedLogLevel)
        let listenValue = listen ?? environment["HANDRAIL_LISTEN"] ?? "127.0.0.1:8080"
        guard let (host, port) = HandrailConfiguration.parseListen(listenValue) else {
            throw fail("HANDRAIL_LISTEN/--listen: \(listenValue.debugDescription) is not host:port")
        }
        var configuration = HandrailConfiguration.checkout(root: resourceRoot, dataDirectory: database.resolvedDataDirectory)
        configuration.host = host
        configuration.port = port
        configuration.databaseURL = database.resolvedDatabaseURL
        configuration.migrationsDirectory = database.resolvedMigrationsDirectory
        configuration.runbooksDirectory = directory(runbooksDirectory, env: "HANDRAIL_RUNBOOKS_DIR", default: configuration.runbooksDirectory)
        configuration.templatesDirectory = directory(templatesDirectory, env: "HANDRAIL_TEMPLATES_DIR", default: configuration.templatesDirectory)
        configuration.applyMigrations = !(skipMigrations || isSet("HANDRAIL_SKIP_MIGRATIONS"))
        configuration.security.behindTLSProxy = behindTLSProxy || isSet("HANDRAIL_BEHIND_TLS_PROXY")
        configuration.security.metricsPublic = metricsPublic || isSet("HANDRAIL_METRICS_PUBLIC")
        if let proxies = trustedProxies ?? environment["HANDRAIL_TRUSTED_PROXIES"] {
            do { configuration.security.trustedProxies = try AddressRange.list(proxies, field: "HANDRAIL_TRUSTED_PROXIES") } catch {
                throw fail("HANDRAIL_TRUSTED_PROXIES/--trusted-proxies \(error.message)")
            }
        }
        if let size = environment["HANDRAIL_DB_POOL_SIZE"] {
            guard let n = Int(size), (1...500).contains(n) else {
                throw fail("HANDRAIL_DB_POOL_SIZE must be a number from 1 to 500, not \(size.debugDescription)")
            }
            configuration.maxDatabaseConnections = n
        }
        configuration.connections.readTimeout = try seconds("HANDRAIL_READ_TIMEOUT", default: configuration.connections.readTimeout)
        configuration.connections.idleTimeout = try seconds("HANDRAIL_IDLE_TIMEOUT", default: configuration.connections.idleTimeout)
        configuration.statementTimeout = try seconds("HANDRAIL_STATEMENT_TIMEOUT", default: configuration.statementTimeout ?? .seconds(5))
        if let text = environment["HANDRAIL_MAX_CONNECTIONS"] {
            guard let n = Int(text), (1...1_000_000).contains(n) else {
                throw fail("HANDRAIL_MAX_CONNECTIONS must be a number from 1 to 1000000, not \(text.debugDescription)")
            }
            configuration.connections.maxConnections = n
        }
        configuration.publicURL = environment["HANDRAIL_PUBLIC_URL"].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        if let sendmail = environment["HANDRAIL_SENDMAIL"], !sendmail.isEmpty { configuration.notifications.sendmail = sendmail }
        if let from = environment["HANDRAIL_MAIL_FROM"], !from.isEmpty { configuration.notifications.mailFrom = from }
        if let allow = environment["HANDRAIL_WEBHOOK_ALLOW"] {
            do { configuration.notifications.webhookAllow = try AddressRange.list(allow, field: "HANDRAIL_WEBHOOK_ALLOW") } catch {
                throw fail("HANDRAIL_WEBHOOK_ALLOW \(error.message)")
            }
        }
        if let text = environment["HANDRAIL_NOTIFY_MAX_AGE"] {
            guard let hours = Double(text), hours > 0, hours <= 24 * 30 else {
                throw fail("HANDRAIL_NOTIFY_MAX_AGE must be hours from 0 to 720, not \(text.debugDescription)")
            }
            configuration.notifications.maxAge = hours * 3600
        }
        if let text = environment["HANDRAIL_NOTIFY_TIMEOUT"] {
            guard let n = Int(text), (1...60).contains(n) else {
                throw fail("HANDRAIL_NOTIFY_TIMEOUT must be seconds from 1 to 60, not \(text.debugDescription)")
            }
            configuration.notifications.timeout = .seconds(n)
        }
        if let text = environment["HANDRAIL_NOTIFY_RATE"] {
            guard let n = Int(text), (1...10_000).contains(n) else {
                throw fail("HANDRAIL_NOTIFY_RATE must be deliveries per second from 1 to 10000, not \(text.debugDescription)")
            }
            configuration.notifications.rate = n
        }
        if let text = environment["HANDRAIL_MAX_LIVE_PAGES"] {
            guard let n = Int(text), (1...1_000_000).contains(n) else {
                throw fail("HANDRAIL_MAX_LIVE_PAGES must be a number from 1 to 1000000, not \(text.debugDescription)")
            }
            configuration.maxLiveStreams = n
        }
        if let text = environment["HANDRAIL_POSTMORTEM_REQUIRED"] {
            do { configuration.postmortemRequired = try PostmortemRequirement.parse(text) } catch { throw fail("\(error.field) \(error.message)") }
        }
        configuration.security.bcryptCost = passwordHasher.cost
        let address = "http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(port)"
        configuration.onFirstAdmin = { username, password in
            // Once, on the terminal, and nowhere else (not in the log).
            FileHandle.standardOutput.write(
                Data(
                    """

                    Handrail created the first administrator.
                      username: \(username)
                      one-time password: \(password)
                    Sign in at \(address)/login and choose a new password. This password is not shown again.


                    """.utf8
                )
            )
        }

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let app: any ApplicationProtocol
        do {
            app = try await buildApplication(configuration: configuration, registry: registry, logger: logger)
        } catch let error as StartupError {
            throw fail(error.description)
        }
        // Say at once what a graceful shutdown waits for (ServiceLifecycle logs it only at debug).
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let notice = Task {
            for await signal in signals {
                logger.notice(
                    "shutdown: \(signal) received; live pages end now; waiting for the requests in flight, then the notification workers, then the database"
                )
                break
            }
        }
        defer { notice.cancel() }
        do {
            try await app.runService()
            logger.info("shutdown: done")
        } catch {
            throw fail("the server stopped: \(error)")
        }
    }
}

/// Whether an on/off environment variable is on (`1`, `true`, `yes`).
func isSet(_ name: String) -> Bool {
    ["1", "true", "yes"].contains(environment[name]?.lowercased() ?? "")
}

/// A duration in whole seconds from the environment (1 to 86,400), or `default`.
private func seconds(_ name: String, default value: Duration) throws -> Duration {
    guard let text = environment[name] else { return value }
    guard let n = Int(text), (1...86_400).contains(n) else {
        throw fail("\(name) must be a number of seconds from 1 to 86400, not \(text.debugDescription)")
    }
    return .seconds(n)
}
