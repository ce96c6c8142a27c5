public import Foundation
public import HandrailStore

/// Everything `handrail serve` can be told, from flags or the environment.
public struct HandrailConfiguration: Sendable {
    /// Host (or address) to listen on.
    public var host: String
    public var port: Int
    /// A libpq connection string; `nil` runs the embedded PostgreSQL.
    public var databaseURL: String?
    /// Where Handrail keeps its own files (the embedded cluster in `postgres/`).
    public var dataDirectory: URL
    public var runbooksDirectory: URL
    public var templatesDirectory: URL
    public var migrationsDirectory: URL
    /// The OpenAPI document served at `/openapi.yaml`.
    public var openAPIFile: URL
    /// Apply pending migrations at start (the default); when false, the server starts
    /// anyway and `/readyz` answers 503 until someone runs `handrail migrate`.
    public var applyMigrations: Bool
    /// The most database connections this process opens.
    public var maxDatabaseConnections: Int
    /// Two per core and two more, at most 20 (PostgreSQL's wiki: about twice the cores keeps
    /// them busy). More statements at once than the cores can run only wait in the kernel's
    /// scheduler instead of the pool's line, which is first come first served: on 2 cores
    /// (6 connections against 20, wrk at 8 connections, 100k incidents) the incident list's
    /// p99 went from 42 to 14-22 ms, an incident page's from 30-40 to 25 ms, a storm of
    /// resends' from 35-79 to 15-19 ms, at the same throughput.
    public static let defaultDatabaseConnections = min(20, 2 * ProcessInfo.processInfo.activeProcessorCount + 2)
    /// Sessions, cookies, rate limits, `/metrics` exposure.
    public var security = SecuritySettings()
    /// Read and idle timeouts and the cap on open HTTP connections.
    public var connections = ConnectionLimits()
    /// How long one database statement may take, waiting for a connection included, before
    /// the request answers 503 (a frozen or unreachable database); nil: no limit.
    public var statementTimeout: Duration? = .seconds(5)
    /// The address people open Handrail at (`HANDRAIL_PUBLIC_URL`), for incident links.
    public var publicURL: String?
    /// How long one live-update stream (server-sent events) of a page stays open before the
    /// browser reconnects; short enough for proxies that cut idle streams.
    public var liveStreamLifetime: Duration = .seconds(45)
    /// The least time between two "changed" events on one page's stream (and between a
    /// page's load and its first): in a storm of changes each page refreshes at most once
    /// this often, not once per change.
    public var liveRefreshInterval: Duration = .seconds(1)
    /// Live pages (streams) one replica serves at once (`HANDRAIL_MAX_LIVE_PAGES`); more get
    /// 503 with `Retry-After`, and their pages work without live refresh meanwhile.
    public var maxLiveStreams = 1000
    /// Reaching people: sendmail, the sender, the webhook allow-list, retry limits.
    public var notifications = NotificationSettings()
    /// What a postmortem must hold before it goes to review (`HANDRAIL_POSTMORTEM_REQUIRED`).
    public var postmortemRequired: [PostmortemRequirement] = PostmortemRequirement.defaults
    /// When no enabled admin exists at start, create `admin` with a one-time password and
    /// hand the password to this closure (`serve` prints it once on the terminal).
    public var onFirstAdmin: (@Sendable (_ username: String, _ password: String) -> Void)?

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        databaseURL: String? = nil,
        dataDirectory: URL,
        runbooksDirectory: URL,
        templatesDirectory: URL,
        migrationsDirectory: URL,
        openAPIFile: URL,
        applyMigrations: Bool = true,
        maxDatabaseConnections: Int = HandrailConfiguration.defaultDatabaseConnections
    ) {
        self.host = host
        self.port = port
        self.databaseURL = databaseURL
        self.dataDirectory = dataDirectory
        self.runbooksDirectory = runbooksDirectory
        self.templatesDirectory = templatesDirectory
        self.migrationsDirectory = migrationsDirectory
        self.openAPIFile = openAPIFile
        self.applyMigrations = applyMigrations
        self.maxDatabaseConnections = maxDatabaseConnections
    }

    /// The configuration with every folder in a source checkout (`root` holds Package.swift).
    public static func checkout(root: URL, dataDirectory: URL? = nil) -> HandrailConfiguration {
        HandrailConfiguration(
            dataDirectory: dataDirectory ?? root.appendingPathComponent(".handrail"),
            runbooksDirectory: root.appendingPathComponent("runbooks"),
            templatesDirectory: root.appendingPathComponent("templates"),
            migrationsDirectory: root.appendingPathComponent("migrations"),
            openAPIFile: root.appendingPathComponent("openapi.yaml")
        )
    }

    /// Parses `host:port`, `:port` or `[v6]:port`.
    public static func parseListen(_ value: String) -> (host: String, port: Int)? {
        guard let colon = value.lastIndex(of: ":") else { return nil }
        var host = String(value[..<colon])
        guard let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
