import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import NIOCore
import Postgres
import TestSupport
import Testing

@testable import HandrailServer

@Suite struct RouteAccessTests {
    /// Walks every route the router has — enumerated from the router, not kept by hand —
    /// with anonymous, an integration key and every role, and checks the answer against the
    /// access the route declared. A route added without a declaration fails here.
    @Test func everyRouteEnforcesItsDeclaredAccessForEveryIdentity() async throws {
        try await AccessFixture.with { f, client in
            #expect(f.routes.count >= 15)
            let identities: [(name: String, principal: Principal?, authorization: String?)] =
                [
                    ("anonymous", nil, nil),
                    (
                        "integration key", .integration(Integration(id: 0, name: "am", kind: .alertmanager, requireSignature: false)),
                        "Bearer \(f.integrationKey)"
                    ),
                ]
                + Role.allCases.map { role in
                    (
                        role.rawValue,
                        .user(
                            User(
                                id: 0,
                                username: "",
                                displayName: "",
                                email: nil,
                                role: role,
                                disabled: false,
                                mustChangePassword: false,
                                createdAt: Date()
                            )
                        ),
                        "Bearer \(f.tokens[role]!)"
                    )
                }
            for route in f.routes {
                let access = try #require(
                    f.registry.access(method: route.method, path: route.path),
                    "\(route.method) \(route.path) declares no access"
                )
                let uri = route.path.split(separator: "/", omittingEmptySubsequences: false)
                    .map { $0.hasPrefix(":") || $0.hasPrefix("{") ? "999999" : String($0) }.joined(separator: "/")
                let isAPI = uri.hasPrefix("/api/") || uri.hasPrefix("/v2/") || uri == "/metrics"
                for identity in identities {
                    var headers: HTTPFields = [.accept: isAPI ? "application/json" : "text/html"]
                    if let authorization = identity.authorization { headers[.authorization] = authorization }
                    var body: ByteBuffer?
                    if [.post, .patch, .put].contains(route.method) {
                        headers[.contentType] = "application/json"
                        body = ByteBuffer(string: "{}")
                    }
                    let response = try await client.execute(uri, method: route.method, headers: headers, body: body)
                    let status = response.status.code
                    let label = "\(route.method) \(route.path) as \(identity.name) (declared: \(access)) → \(status) \(response.text.prefix(120))"
                    #expect(status < 500, "\(label)")
                    switch access.allows(identity.principal, fromLoopback: false) {
                    case .allow:
                        #expect(status != 401 && !(status == 303 && response.headers[.location]?.hasPrefix("/login?") == true), "\(label)")
                        if access != .everyone { #expect(status != 403, "\(label)") }
                    case .unauthenticated:
                        if isAPI {
                            #expect(status == 401, "\(label)")
                        } else {
                            #expect(status == 303 && response.headers[.location]?.hasPrefix("/login?next=") == true, "\(label)")
                        }
                    case .forbidden:
                        #expect(status == 403, "\(label)")
                    }
                }
            }
        }
    }

    /// The API description names every machine-facing route with its method, so clients
    /// and schemathesis see all of them. (The HTML pages of the web UI are for browsers;
    /// ARCHITECTURE.md maps them.)
    @Test func everyRouteIsDescribedInOpenAPI() async throws {
        let document = try String(contentsOf: TestDatabase.checkoutRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        try await AccessFixture.with { f, _ in
            let machine = f.routes.filter { r in
                r.path.hasPrefix("/api/") || r.path.hasPrefix("/v2/")
                    || ["/healthz", "/readyz", "/metrics", "/openapi.yaml", "/login", "/logout"].contains(r.path)
            }
            #expect(machine.count >= 60)
            for route in machine {
                let found = lines.firstIndex(of: Substring("  \(route.path):"))
                #expect(found != nil, "\(route.path) is not in openapi.yaml")
                guard let start = found else { continue }
                let block = lines[(start + 1)...].prefix { $0.hasPrefix("   ") || $0.isEmpty }
                #expect(
                    block.contains(Substring("    \(route.method.rawValue.lowercased()):")),
                    "\(route.method) \(route.path) is not in openapi.yaml"
                )
            }
        }
    }

    @Test func metricsAreOpenOnLoopbackOnlyByDefault() async throws {
        let (loop4, loop6, remote) = (
            try SocketAddress(ipAddress: "127.0.0.1", port: 1), try SocketAddress(ipAddress: "::1", port: 1),
            try SocketAddress(ipAddress: "10.0.0.7", port: 1)
        )
        try await AccessFixture.with { f, client in
            let r1 = try await client.execute("/metrics", from: loop4)
            #expect(r1.status == .ok)
            let r2 = try await client.execute("/metrics", from: loop6)
            #expect(r2.status == .ok)
            let r3 = try await client.execute("/metrics", from: remote)
            #expect(r3.status == .unauthorized)
            let r4 = try await client.execute("/metrics", headers: [.authorization: "Bearer \(f.tokens[.viewer]!)"], from: remote)
            #expect(r4.status == .ok)
        }
        var open = AccessFixture.testSettings
        open.metricsPublic = true
        try await AccessFixture.with(settings: open) { _, client in
            let r5 = try await client.execute("/metrics", from: remote)
            #expect(r5.status == .ok)
        }
    }
}

@Suite struct SignInTests {
    @Test func wrongPasswordUnknownUserDisabledUserAndEmptyPasswordGetTheSameAnswer() async throws {
        try await AccessFixture.with { f, client in
            _ = try await UserStore(pool: f.pool).setDisabled(username: "lead-user", true, by: .system)
            var answers: [String] = []
            for (username, password) in [
                ("viewer-user", "not the password"), ("nobody-here", "not the password"), ("viewer-user", ""), ("lead-user", AccessFixture.password),
            ] {
                var browser = Browser(client)
                let response = try await browser.signIn(username, password)
                #expect(response.status == .unauthorized, "\(username)")
                #expect(browser.cookies[AuthService.sessionCookie] == nil, "\(username) got a session")
                let error = try #require(response.text.range(of: #"<p class="error" role="alert">"#)).upperBound
                answers.append(String(response.text[error...].prefix { $0 != "<" }))
            }
            #expect(Set(answers) == ["Wrong username or password."])
            let failures = try await AuditStore(pool: f.pool).list(limit: 10, before: nil).filter { $0.action == "login.failed" }
            #expect(failures.count == 4)
            #expect(failures.allSatisfy { $0.remoteAddress == "10.1.2.3" })
        }
    }

    @Test func rightPasswordSignsInWithAFreshHttpOnlyLaxSession() async throws {
        try await AccessFixture.with { f, client in
            var browser = Browser(client)
            let first = try await browser.signIn("responder-user", AccessFixture.password)
            #expect(first.status == .seeOther)
            #expect(first.headers[.location] == "/")
            let cookie = try #require(first.headers[values: .setCookie].first { $0.hasPrefix(AuthService.sessionCookie + "=") })
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Lax"))
            #expect(!cookie.contains("Secure"), "Secure without TLS would lose the cookie")
            let session = try #require(browser.cookies[AuthService.sessionCookie])
            #expect(session.count >= 22, "at least 128 bits")
            let r6 = try await browser.request("/")
            #expect(r6.status == .ok)
            // A session id planted before sign-in (session fixation) is never the one after.
            var planted = Browser(client)
            planted.cookies[AuthService.sessionCookie] = "attacker-chosen-session-id-0000000000000000"
            _ = try await planted.signIn("responder-user", AccessFixture.password)
            let fresh = try #require(planted.cookies[AuthService.sessionCookie])
            #expect(fresh != "attacker-chosen-session-id-0000000000000000")
            #expect(fresh != session)
            let again = try await planted.request("/")
            #expect(again.status == .ok)
        }
    }

    @Test func secureCookiesBehindATLSProxy() async throws {
        var settings = AccessFixture.testSettings
        settings.behindTLSProxy = true
        try await AccessFixture.with(settings: settings) { _, client in
            var browser = Browser(client)
            let response = try await browser.signIn("viewer-user", AccessFixture.password)
            let cookie = try #require(response.headers[values: .setCookie].first { $0.hasPrefix(AuthService.sessionCookie + "=") })
            #expect(cookie.contains("Secure"))
        }
    }

    @Test func loginAttemptsAreRateLimitedPerAccountAndPerAddress() async throws {
        try await AccessFixture.with { _, client in
            var browser = Browser(client)
            for _ in 0..<3 { #expect(try await browser.signIn("viewer-user", "wrong password!!").status == .unauthorized) }
            // The account is locked for a while — even with the right password.
            let limited = try await browser.signIn("viewer-user", AccessFixture.password)
            #expect(limited.status == .tooManyRequests)
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect(retryAfter > 0 && retryAfter <= 15 * 60)
            #expect(browser.cookies[AuthService.sessionCookie] == nil)
            // Other accounts from the same address still work until the address's limit.
            for _ in 0..<3 { #expect(try await browser.signIn("lead-user", "wrong password!!").status == .unauthorized) }
            let r8 = try await browser.signIn("manager-user", AccessFixture.password)
            #expect(r8.status == .tooManyRequests)
        }
    }

    @Test func oneTimePasswordMustBeChangedBeforeAnythingElse() async throws {
        try await AccessFixture.with { f, client in
            let created = try await client.execute(
                "/api/v1/users",
                method: .post,
                headers: [.authorization: "Bearer \(f.tokens[.admin]!)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"username": "newbie", "role": "responder", "display_name": "New Bie"}"#)
            )
            #expect(created.status == .created)
            let password = try #require(try JSONSerialization.jsonObject(with: Data(created.text.utf8)) as? [String: Any])["password"] as? String
            var browser = Browser(client)
            let signedIn = try await browser.signIn("newbie", try #require(password))
            #expect(signedIn.headers[.location] == "/account/password")
            let r9 = try await browser.request("/")
            #expect(r9.headers[.location] == "/account/password")
            let r10 = try await browser.request("/api/v1/tokens", headers: [.accept: "application/json"])
            #expect(r10.status == .forbidden)
            let page = try await browser.request("/account/password")
            let csrf = try #require(Browser.csrfToken(in: page))
            let tooShort = try await browser.request(
                "/account/password",
                method: .post,
                form: [
                    "csrf_token": csrf, "current_password": password!, "new_password": "short", "confirm_password": "short",
                ]
            )
            #expect(tooShort.status == .badRequest)
            #expect(tooShort.text.contains("at least 12 characters"))
            let changed = try await browser.request(
                "/account/password",
                method: .post,
                form: [
                    "csrf_token": csrf, "current_password": password!, "new_password": "my own new password",
                    "confirm_password": "my own new password",
                ]
            )
            #expect(changed.headers[.location] == "/")
            let r11 = try await browser.request("/")
            #expect(r11.status == .ok)
            // The one-time password is gone.
            var other = Browser(client)
            let r12 = try await other.signIn("newbie", password!)
            #expect(r12.status == .unauthorized)
        }
    }
}

@Suite struct CSRFTests {
    @Test func formPostWithoutTheTokenOrFromAForeignOriginIsRefused() async throws {
        try await AccessFixture.with { _, client in
            var browser = Browser(client)
            _ = try await browser.signIn("viewer-user", AccessFixture.password)
            let home = try await browser.request("/")
            let token = try #require(Browser.csrfToken(in: home))
            let r13 = try await browser.request("/logout", method: .post, form: [:])
            #expect(r13.status == .forbidden)
            let r14 = try await browser.request("/logout", method: .post, form: ["csrf_token": "not-it"])
            #expect(r14.status == .forbidden)
            let r15 = try await browser.request(
                "/logout",
                method: .post,
                form: ["csrf_token": token],
                headers: [.init("Origin")!: "https://evil.example"]
            )
            #expect(r15.status == .forbidden)
            let r16 = try await browser.request(
                "/logout",
                method: .post,
                form: ["csrf_token": token],
                headers: [.init("Sec-Fetch-Site")!: "cross-site"]
            )
            #expect(r16.status == .forbidden)
            // Still signed in after all of those.
            let r17 = try await browser.request("/")
            #expect(r17.status == .ok)
            let out = try await browser.request(
                "/logout",
                method: .post,
                form: ["csrf_token": token],
                headers: [.init("Origin")!: "http://localhost"]
            )
            #expect(out.status == .seeOther)
            let r18 = try await browser.request("/")
            #expect(r18.headers[.location]?.hasPrefix("/login") == true)
        }
    }

    @Test func jsonRequestsWithASessionNeedTheHeaderTokenButBearerTokensDoNot() async throws {
        try await AccessFixture.with { f, client in
            var browser = Browser(client)
            _ = try await browser.signIn("viewer-user", AccessFixture.password)
            let token = try #require(Browser.csrfToken(in: try await browser.request("/")))
            let json: HTTPFields = [.contentType: "application/json", .accept: "application/json"]
            var withToken = json
            withToken[AuthService.csrfHeader] = token
            let r19 = try await browser.request("/api/v1/tokens", method: .post, headers: json)
            #expect(r19.status == .forbidden)
            let ok = try await client.execute(
                "/api/v1/tokens",
                method: .post,
                headers: withToken.merging([.cookie: "\(AuthService.sessionCookie)=\(browser.cookies[AuthService.sessionCookie]!)"]),
                body: ByteBuffer(string: #"{"name":"cli"}"#)
            )
            #expect(ok.status == .created)
            let bearer = try await client.execute(
                "/api/v1/tokens",
                method: .post,
                headers: json.merging([.authorization: "Bearer \(f.tokens[.viewer]!)"]),
                body: ByteBuffer(string: #"{"name":"ci"}"#)
            )
            #expect(bearer.status == .created)
        }
    }

    @Test func signInFormNeedsItsOwnTokenAndOrigin() async throws {
        try await AccessFixture.with { _, client in
            var browser = Browser(client)
            let page = try await browser.request("/login")
            let token = try #require(Browser.csrfToken(in: page))
            let form = ["username": "viewer-user", "password": AccessFixture.password]
            let r20 = try await browser.request("/login", method: .post, form: form)
            #expect(r20.status == .forbidden)
            let r21 = try await browser.request(
                "/login",
                method: .post,
                form: form.merging(["csrf_token": token]) { $1 },
                headers: [.init("Origin")!: "https://evil.example"]
            )
            #expect(r21.status == .forbidden)
            let r22 = try await browser.request("/login", method: .post, form: form.merging(["csrf_token": token]) { $1 })
            #expect(r22.status == .seeOther)
        }
    }
}

@Suite struct RevocationTests {
    @Test func disabledUsersSessionAndTokensStopWorkingAtOnce() async throws {
        try await AccessFixture.with { f, client in
            var browser = Browser(client)
            _ = try await browser.signIn("responder-user", AccessFixture.password)
            let asToken: HTTPFields = [.authorization: "Bearer \(f.tokens[.responder]!)", .accept: "application/json"]
            let r23 = try await browser.request("/api/v1/me", headers: [.accept: "application/json"])
            #expect(r23.status == .ok)
            let r24 = try await client.execute("/api/v1/me", headers: asToken)
            #expect(r24.status == .ok)
            let disable = try await client.execute(
                "/api/v1/users/responder-user",
                method: .patch,
                headers: [.authorization: "Bearer \(f.tokens[.admin]!)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"disabled": true}"#)
            )
            #expect(disable.status == .ok)
            let r25 = try await browser.request("/api/v1/me", headers: [.accept: "application/json"])
            #expect(r25.status == .unauthorized)
            let r26 = try await client.execute("/api/v1/me", headers: asToken)
            #expect(r26.status == .unauthorized)
            let audit = try await AuditStore(pool: f.pool).list(limit: 5, before: nil)
            #expect(audit.contains { $0.action == "user.disabled" && $0.actor == "admin-user" && $0.target == "responder-user" })
        }
    }

    @Test func revokedTokenAnswers401OnTheNextRequest() async throws {
        try await AccessFixture.with { f, client in
            let auth: HTTPFields = [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "application/json"]
            let list = try await client.execute("/api/v1/tokens", headers: auth)
            let id = try #require((try JSONSerialization.jsonObject(with: Data(list.text.utf8)) as? [[String: Any]])?.first?["id"] as? Int)
            // Someone else's token cannot be revoked by a non-admin.
            let r27 = try await client.execute("/api/v1/tokens/\(id)", method: .delete, headers: [.authorization: "Bearer \(f.tokens[.lead]!)"])
            #expect(r27.status == .notFound)
            let r28 = try await client.execute("/api/v1/tokens/\(id)", method: .delete, headers: auth)
            #expect(r28.status == .noContent)
            let r29 = try await client.execute("/api/v1/me", headers: auth)
            #expect(r29.status == .unauthorized)
        }
    }

    @Test func revokedIntegrationKeyStopsAndKeysReachNothingButIngestion() async throws {
        try await AccessFixture.with { f, client in
            let asKey: HTTPFields = [.authorization: "Bearer \(f.integrationKey)", .accept: "application/json"]
            let forbidden = try await client.execute("/api/v1/me", headers: asKey)
            #expect(forbidden.status == .forbidden)
            #expect(
                forbidden.text.contains("integration keys only deliver alerts; this alertmanager key delivers to POST /api/v1/alerts/alertmanager")
            )
            // At another source's path, the key is told where it belongs.
            let elsewhere = try await client.execute("/api/v1/alerts/generic", method: .post, headers: asKey, body: ByteBuffer(string: "{}"))
            #expect(elsewhere.status == .forbidden)
            #expect(elsewhere.text.contains("this is an alertmanager key: it delivers to POST /api/v1/alerts/alertmanager"))
            // A key nobody made is "not recognised", not "sign in".
            let unknown = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: [.authorization: "Bearer hr_nosuchkey"],
                body: ByteBuffer(string: "{}")
            )
            #expect(unknown.status == .unauthorized && unknown.text.contains("the integration key was not recognised"))
            let badToken = try await client.execute("/api/v1/me", headers: [.authorization: "Bearer hr_nosuchtoken"])
            #expect(badToken.status == .unauthorized && badToken.text.contains("the token was not recognised"))
            // An API path that does not exist answers a JSON error, not an empty 404.
            let nowhere = try await client.execute("/api/v1/no-such-thing", headers: asKey)
            #expect(nowhere.status == .notFound && nowhere.text.contains("no such endpoint: GET /api/v1/no-such-thing"), "\(nowhere.text)")
            let revoke = try await client.execute(
                "/api/v1/integrations/am",
                method: .delete,
                headers: [.authorization: "Bearer \(f.tokens[.admin]!)"]
            )
            #expect(revoke.status == .noContent)
            let r30 = try await client.execute("/api/v1/me", headers: asKey)
            #expect(r30.status == .unauthorized)
        }
    }
}

@Suite struct SecretHygieneTests {
    /// No password, token, key or session id in the database, the log, or any answer.
    @Test func secretsNeverAppearInPlainText() async throws {
        try await AccessFixture.with { f, client in
            var secrets = Array(f.tokens.values) + [f.integrationKey, AccessFixture.password]
            var bodies: [String] = []
            let admin: HTTPFields = [.authorization: "Bearer \(f.tokens[.admin]!)", .contentType: "application/json", .accept: "application/json"]
            func call(
                _ uri: String,
                _ method: HTTPRequest.Method = .get,
                _ json: String? = nil,
                headers: HTTPFields = admin
            ) async throws -> TestResponse {
                let r = try await client.execute(uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
                bodies.append(r.text)
                return r
            }
            func field(_ r: TestResponse, _ name: String) throws -> String {
                try #require((try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [String: Any])?[name] as? String)
            }
            let chosen = "a password chosen by an admin"
            secrets.append(chosen)
            _ = try await call("/api/v1/users", .post, #"{"username": "with-pw", "role": "viewer", "password": "\#(chosen)"}"#)
            secrets.append(try field(try await call("/api/v1/users", .post, #"{"username": "gen-pw", "role": "viewer"}"#), "password"))
            secrets.append(try field(try await call("/api/v1/users/with-pw/reset-password", .post), "password"))
            secrets.append(try field(try await call("/api/v1/tokens", .post, #"{"name": "deploy"}"#), "token"))
            secrets.append(try field(try await call("/api/v1/integrations", .post, #"{"name": "grafana-prod", "kind": "grafana"}"#), "key"))
            // Secrets sent where they do not belong, or wrong ones, are not echoed either.
            _ = try await call("/api/v1/users", .post, #"{"username": "short-pw", "role": "viewer", "password": "tiny-secret"}"#)
            secrets.append("tiny-secret")
            _ = try await call("/api/v1/me", headers: [.authorization: "Bearer hr_wrongTokenThatLooksReal000000000000000"])
            secrets.append("hr_wrongTokenThatLooksReal000000000000000")
            var browser = Browser(client)
            let wrong = try await browser.signIn("viewer-user", "wrong-secret-password")
            bodies.append(wrong.text)
            secrets.append("wrong-secret-password")
            let signedIn = try await browser.signIn("viewer-user", AccessFixture.password)
            bodies.append(signedIn.text)
            secrets.append(try #require(browser.cookies[AuthService.sessionCookie]))

            let everything =
                try await f.pool.query(
                    """
                    SELECT string_agg(query_to_xml('SELECT * FROM ' || quote_ident(table_name), true, false, '')::text, E'\\n') AS dump
                    FROM information_schema.tables WHERE table_schema = 'public'
                    """
                ).first?.decode("dump", as: String.self) ?? ""
            #expect(everything.contains("viewer-user"), "the dump reads the tables")
            for secret in secrets {
                #expect(!everything.contains(secret), "a secret is in the database")
                #expect(!f.logs.all.contains(secret), "a secret is in the log")
                #expect(
                    !bodies.contains { $0.contains(secret) && !$0.contains("\"password\"") && !$0.contains("\"token\"") && !$0.contains("\"key\"") },
                    "a secret is in an answer other than the one that hands it out"
                )
            }
            #expect(!f.logs.all.isEmpty)
        }
    }
}

@Suite struct SecurityHeaderTests {
    /// `<script` tags that do not load a file of our own /static.
    static func inlineScripts(_ html: String) -> Int {
        html.components(separatedBy: "<script").dropFirst().filter { !$0.hasPrefix(#" src="/static/"#) }.count
    }

    @Test func htmlPagesCarryAStrictPolicyAndNoInlineScript() async throws {
        try await AccessFixture.with { _, client in
            var browser = Browser(client)
            for page in [
                try await browser.request("/login"), try await browser.signIn("viewer-user", AccessFixture.password), try await browser.request("/"),
            ] where page.status == .ok {
                let csp = try #require(page.headers[.contentSecurityPolicy])
                #expect(csp.contains("frame-ancestors 'none'"))
                #expect(csp.contains("script-src 'self'"))
                #expect(!csp.contains("unsafe-inline"))
                #expect(page.headers[.init("X-Content-Type-Options")!] == "nosniff")
                #expect(page.headers[.init("Referrer-Policy")!] == "same-origin")
                // Script only from our own /static (the CSP would refuse any other), none inline.
                #expect(Self.inlineScripts(page.text) == 0)
                #expect(page.text.contains(#"<script src="/static/handrail.js" defer></script>"#))
                #expect(!page.text.contains("style="))
            }
            let api = try await client.execute("/healthz")
            #expect(api.headers[.init("X-Content-Type-Options")!] == "nosniff")
        }
    }

    @Test func signInRedirectsOnlyToLocalPaths() {
        #expect(SessionController.safeNext("/incidents/INC-4") == "/incidents/INC-4")
        #expect(SessionController.safeNext("/incidents?state=open&q=a%20b") == "/incidents?state=open&q=a%20b")
        // What `/login?next=/%09/evil.example` decodes to: a browser drops the tab and goes to //evil.example.
        for hostile in [
            "https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", nil,
            "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example", "/x\\..\\..\\evil", "/\u{0}/a", "/é",
        ] {
            #expect(SessionController.safeNext(hostile) == "/")
        }
    }
}

@Suite struct SignedDeliveryTests {
    /// An ingestion route of the test's own: the real ones arrive with the ingestion work,
    /// and get this check because it lives in the access layer.
    static let addIngestRoute: @Sendable (Routes) -> Void = { routes in
        routes.on(.post, "/test/ingest", .ingest([.grafana, .alertmanager])) { request, _ in
            var request = request
            return "stored \(try await request.collectBody(upTo: 1 << 20).readableBytes) bytes"
        }
    }

    @Test func keysThatRequireASignatureRefuseUnsignedWrongAndReplayedDeliveries() async throws {
        try await AccessFixture.with(extraRoutes: Self.addIngestRoute) { f, client in
            let body = #"{"status":"firing","alerts":[{"labels":{"alertname":"FeatureDriftHigh"}}]}"#
            func post(_ key: String, _ extra: HTTPFields = [:], body: String = body) async throws -> TestResponse {
                var headers: HTTPFields = [.authorization: "Bearer \(key)", .contentType: "application/json"]
                for field in extra { headers[field.name] = field.value }
                return try await client.execute("/test/ingest", method: .post, headers: headers, body: ByteBuffer(string: body))
            }
            let signature = HTTPField.Name(WebhookSignature.signatureHeader)!
            let timestampHeader = HTTPField.Name("X-Grafana-Alerting-Signature-Timestamp")!
            let key = f.signedIntegrationKey
            // Keys without the requirement pass unsigned.
            let plain = try await post(f.integrationKey)
            #expect(plain.status == .ok)
            let unsigned = try await post(key)
            #expect(unsigned.status == .unauthorized)
            #expect(unsigned.text.contains("X-Grafana-Alerting-Signature"))
            let good = WebhookSignature.sign(Data(body.utf8), secret: key)
            let signed = try await post(key, [signature: good])
            #expect(signed.status == .ok)
            #expect(signed.text == "stored \(body.utf8.count) bytes", "the handler still reads the whole body")
            let tampered = try await post(key, [signature: good], body: body.replacingOccurrences(of: "firing", with: "resolved"))
            #expect(tampered.status == .unauthorized)
            let now = String(Int(Date().timeIntervalSince1970))
            let fresh = try await post(key, [signature: WebhookSignature.sign(Data((now + ":" + body).utf8), secret: key), timestampHeader: now])
            #expect(fresh.status == .ok)
            let old = String(Int(Date().timeIntervalSince1970) - 301)
            let replayed = try await post(key, [signature: WebhookSignature.sign(Data((old + ":" + body).utf8), secret: key), timestampHeader: old])
            #expect(replayed.status == .unauthorized)
            #expect(replayed.text.contains("five minutes"))
            // People cannot use ingestion routes, integration keys cannot use anything else.
            let person = try await client.execute(
                "/test/ingest",
                method: .post,
                headers: [.authorization: "Bearer \(f.tokens[.admin]!)"],
                body: ByteBuffer(string: body)
            )
            #expect(person.status == .forbidden)

            // A key that requires the timestamp refuses a signature made without one (it could be replayed for ever).
            let strictKey = Secrets.newIntegrationKey()
            _ = try await IntegrationKeyStore(pool: f.pool).create(
                name: "strict",
                kind: .grafana,
                keyHash: Secrets.hash(strictKey),
                displayPrefix: "s",
                requireSignature: false,
                requireTimestamp: true,
                by: .system
            )
            let untimed = try await post(strictKey, [signature: WebhookSignature.sign(Data(body.utf8), secret: strictKey)])
            #expect(untimed.status == .unauthorized)
            #expect(untimed.text.contains("X-Grafana-Alerting-Signature-Timestamp"))
            let unsignedStrict = try await post(strictKey)
            #expect(unsignedStrict.status == .unauthorized, "requiring the timestamp requires the signature")
            let timed = try await post(
                strictKey,
                [signature: WebhookSignature.sign(Data((now + ":" + body).utf8), secret: strictKey), timestampHeader: now]
            )
            #expect(timed.status == .ok)
        }
    }
}

@Suite struct RoutingKeyTests {
    @Test func pagerDutyFormatSourcesAuthenticateWithRoutingKeyInTheBody() async throws {
        let addRoute: @Sendable (Routes) -> Void = { routes in
            routes.on(.post, "/test/enqueue", .ingest([.pagerduty])) { request, context in
                var request = request
                let size = try await request.collectBody(upTo: 1 << 20).readableBytes
                guard case .integration(let integration) = context.principal else { return "no integration" }
                return "\(integration.name) \(size)"
            }
        }
        try await AccessFixture.with(extraRoutes: addRoute) { f, client in
            let key = Secrets.newIntegrationKey()
            _ = try await IntegrationKeyStore(pool: f.pool).create(
                name: "pd",
                kind: .pagerduty,
                keyHash: Secrets.hash(key),
                displayPrefix: "p",
                requireSignature: false,
                by: .system
            )
            func enqueue(_ json: String) async throws -> TestResponse {
                try await client.execute("/test/enqueue", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: json))
            }
            let event =
                #"{"routing_key": "\#(key)", "event_action": "trigger", "payload": {"summary": "disk full", "source": "db1", "severity": "critical"}}"#
            let accepted = try await enqueue(event)
            #expect(accepted.status == .ok)
            #expect(accepted.text == "pd \(event.utf8.count)", "the handler sees the integration and the whole body")
            let wrongKey = try await enqueue(#"{"routing_key": "0123456789abcdef0123456789abcdef", "event_action": "trigger"}"#)
            #expect(wrongKey.status == .unauthorized)
            let noKey = try await enqueue(#"{"event_action": "trigger"}"#)
            #expect(noKey.status == .unauthorized)
            let notJSON = try await enqueue("routing_key=\(key)")
            #expect(notJSON.status == .unauthorized)
            // An Alertmanager key in routing_key is the wrong kind of source.
            let wrongKind = try await enqueue(#"{"routing_key": "\#(f.integrationKey)", "event_action": "trigger"}"#)
            #expect(wrongKind.status == .forbidden)
            #expect(!f.logs.all.contains(key))
        }
    }
}

@Suite struct BearerCredentialTests {
    @Test func theCredentialIsReadFromAnyBearerHeaderAndNothingElse() {
        #expect(AuthService.bearerCredential("Bearer hr_abc") == "hr_abc")
        #expect(AuthService.bearerCredential("bearer key-1") == "key-1")
        #expect(AuthService.bearerCredential("BEARER  \tkey-1 \t") == "key-1")
        #expect(AuthService.bearerCredential("  Bearer key with space") == "key with space")
        for other in ["", "Bearer", "Bearer ", "Bearer \t ", "Basic dXNlcjpwYXNz", "Bearerkey", "Bear key", "Bearers key", "Béarer key"] {
            #expect(AuthService.bearerCredential(other) == nil, "\(other.debugDescription)")
        }
    }
}
