import Foundation
import HandrailCore
import HandrailStore
import Hummingbird
import Logging
import NIOCore
import Postgres
import Prometheus
import Synchronization
import TestSupport
import Testing

@testable import HandrailServer

/// Every log line a test's server wrote (message and metadata), to look for secrets in.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])
    var all: String { lines.withLock { $0.joined(separator: "\n") } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        recorder.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
    }
}

/// A server on a fresh migrated database with one person (and one API token) per role and
/// one integration key — everything the access tests call with.
struct AccessFixture: Sendable {
    static let password = "correct horse battery staple"
    let app: Application<RouterResponder<HandrailRequestContext>>
    /// Every route the router has, as (method, path pattern) — enumerated from the router.
    let routes: [(method: HTTPRequest.Method, path: String)]
    let registry: AccessRegistry
    let pool: PostgresPool
    let logs: LogRecorder
    /// An API token per role.
    let tokens: [Role: String]
    let integrationKey: String
    /// A Grafana key that requires signed deliveries.
    let signedIntegrationKey: String

    static func with<T: Sendable>(
        settings: SecuritySettings = testSettings,
        extraRoutes: @Sendable (Routes) -> Void = { _ in },
        _ body: @Sendable (AccessFixture, RouterTestClient<RouterResponder<HandrailRequestContext>>) async throws -> T
    ) async throws -> T {
        try await TestDatabase.withMigrated { pool, conninfo in
            let logs = LogRecorder()
            let logger = Logger(label: "test") { _ in RecordingLogHandler(recorder: logs) }
            var config = configuration(conninfo)
            config.security = settings
            let database = try await HandrailDatabase.open(databaseURL: conninfo, dataDirectory: URL(fileURLWithPath: "/nonexistent"), logger: logger)
            let auth = AuthService(database: database, settings: settings)
            var tokens: [Role: String] = [:]
            for role in Role.allCases {
                let user = try await auth.users.create(
                    username: role.rawValue + "-user",
                    displayName: role.rawValue,
                    email: nil,
                    role: role,
                    passwordHash: auth.hasher.hash(password),
                    mustChangePassword: false,
                    by: .system
                )
                let token = Secrets.newAPIToken()
                _ = try await auth.tokens.create(
                    for: user,
                    name: "test",
                    tokenHash: Secrets.hash(token),
                    displayPrefix: "t",
                    expiresAt: nil,
                    by: .system
                )
                tokens[role] = token
            }
            let key = Secrets.newIntegrationKey()
            _ = try await auth.integrations.create(
                name: "am",
                kind: .alertmanager,
                keyHash: Secrets.hash(key),
                displayPrefix: "k",
                requireSignature: false,
                by: .system
            )
            let signedKey = Secrets.newIntegrationKey()
            _ = try await auth.integrations.create(
                name: "graf",
                kind: .grafana,
                keyHash: Secrets.hash(signedKey),
                displayPrefix: "g",
                requireSignature: true,
                by: .system
            )
            let (router, registry) = buildRouter(
                database: database,
                migrator: try Migrator(directory: TestDatabase.migrationsDirectory),
                configuration: config,
                registry: PrometheusCollectorRegistry(),
                auth: auth,
                pages: try await Pages.load(from: config.templatesDirectory, logger: logger),
                logger: logger
            )
            extraRoutes(Routes(router: router, registry: registry, auth: auth))
            let app = Application(router: router, services: [DatabaseService(database: database)], logger: logger)
            let fixture = AccessFixture(
                app: app,
                routes: router.routes.map { ($0.method, $0.path.description) },
                registry: registry,
                pool: pool,
                logs: logs,
                tokens: tokens,
                integrationKey: key,
                signedIntegrationKey: signedKey
            )
            return try await app.testRouter { client in try await body(fixture, client) }
        }
    }

    /// Cheap bcrypt (same algorithm) and low limits, so tests run fast and reach the limits.
    static var testSettings: SecuritySettings {
        var s = SecuritySettings()
        s.bcryptCost = 4
        s.loginFailuresPerAccount = 3
        s.loginFailuresPerAddress = 6
        return s
    }
}

/// A browser's view of one person: cookies kept between requests.
struct Browser {
    let client: RouterTestClient<RouterResponder<HandrailRequestContext>>
    var cookies: [String: String] = [:]
    static let peer = try! SocketAddress(ipAddress: "10.1.2.3", port: 50000)

    init(_ client: RouterTestClient<RouterResponder<HandrailRequestContext>>) { self.client = client }

    mutating func request(
        _ uri: String,
        method: HTTPRequest.Method = .get,
        form: [String: String]? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = headers
        headers[.accept] = headers[.accept] ?? "text/html"
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            body = ByteBuffer(
                string: form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" }.joined(separator: "&")
            )
        }
        let response = try await client.execute(uri, method: method, headers: headers, body: body, from: Self.peer)
        for field in response.headers[values: .setCookie] {
            let pair = field.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            let name = String(pair[0])
            let value = pair.count > 1 ? String(pair[1]) : ""
            if value.isEmpty || field.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
        return response
    }

    /// The hidden `csrf_token` of the last page.
    static func csrfToken(in page: TestResponse) -> String? {
        guard let range = page.text.range(of: #"name="csrf_token" value=""#) else { return nil }
        return String(page.text[range.upperBound...].prefix { $0 != "\"" })
    }

    /// Signs in through the form, as a browser does; answers the final response.
    mutating func signIn(_ username: String, _ password: String) async throws -> TestResponse {
        let page = try await request("/login")
        let token = try #require(Self.csrfToken(in: page))
        return try await request("/login", method: .post, form: ["username": username, "password": password, "csrf_token": token])
    }
}

extension HTTPFields {
    /// These fields plus `other` (other's values win).
    func merging(_ other: HTTPFields) -> HTTPFields {
        var result = self
        for field in other { result[field.name] = field.value }
        return result
    }
}
