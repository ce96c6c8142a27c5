import Foundation
import HTTPTypes
public import HandrailCore
import HandrailStore
import Hummingbird
import Logging

/// Security settings, from configuration.
public struct SecuritySettings: Sendable {
    /// A session ends when unused this long…
    public var sessionIdleTimeout: Duration = .seconds(12 * 3600)
    /// …and in any case this long after sign-in.
    public var sessionLifetime: Duration = .seconds(7 * 86_400)
    /// Served behind a TLS-terminating proxy: cookies get `Secure`.
    public var behindTLSProxy = false
    /// Proxies whose `X-Forwarded-For` is believed (`HANDRAIL_TRUSTED_PROXIES`); behind a TLS
    /// proxy with none named, loopback. The client address is the rightmost untrusted hop.
    public var trustedProxies: [AddressRange] = []

    /// The proxies believed: the named ones, else loopback when behind a TLS proxy, else none.
    var believedProxies: [AddressRange] { !trustedProxies.isEmpty ? trustedProxies : behindTLSProxy ? AddressRange.loopback : [] }
    /// `/metrics` for everyone; otherwise for loopback, and viewers and up elsewhere.
    public var metricsPublic = false
    /// bcrypt's work factor for new passwords.
    public var bcryptCost: UInt8 = 12
    /// Failed sign-ins allowed per account and per address within `loginWindow`.
    public var loginFailuresPerAccount = 5
    public var loginFailuresPerAddress = 20
    public var loginWindow: Duration = .seconds(15 * 60)

    public init() {}
}

/// Who is asking, and signing people in and out. The stores hold the SQL; this holds the rules.
struct AuthService: Sendable {
    static let sessionCookie = "handrail_session"
    static let loginCSRFCookie = "handrail_login_csrf"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let csrfField = "csrf_token"

    let users: UserStore
    let sessions: SessionStore
    let tokens: APITokenStore
    let integrations: IntegrationKeyStore
    let audit: AuditStore
    let hasher: PasswordHasher
    let settings: SecuritySettings
    let keyCache = IntegrationKeyCache()

    init(database: HandrailDatabase, settings: SecuritySettings) {
        let pool = database.pool
        self.users = UserStore(pool: pool)
        self.sessions = SessionStore(pool: pool)
        self.tokens = APITokenStore(pool: pool)
        self.integrations = IntegrationKeyStore(pool: pool)
        self.audit = AuditStore(pool: pool)
        self.hasher = PasswordHasher(cost: settings.bcryptCost)
        self.settings = settings
    }

    /// The principal behind the request's credentials: a Bearer API token (`hr_…`), a
    /// Bearer integration key, or the session cookie. Unknown, revoked, expired or
    /// disabled credentials give `nil` (anonymous).
    /// - Parameter cachedKey: an integration key may be answered from `keyCache` (for
    ///   routes whose statements check the key's liveness themselves; see the cache).
    func authenticate(_ request: Request, cachedKey: Bool = false) async throws -> (principal: Principal?, session: String?) {
        if let header = request.headers[.authorization] {
            guard let credential = Self.bearerCredential(header) else { return (nil, nil) }
            if Secrets.isAPIToken(credential) {
                return (try await tokens.authenticate(tokenHash: Secrets.hash(credential)).map(Principal.user), nil)
            }
            let keyHash = Secrets.hash(credential)
            if cachedKey, let integration = keyCache.integration(keyHash: keyHash) { return (.integration(integration), nil) }
            let integration = try await integrations.authenticate(keyHash: keyHash)
            if let integration { keyCache.remember(integration, keyHash: keyHash) }
            return (integration.map(Principal.integration), nil)
        }
        if let session = request.cookies[Self.sessionCookie]?.value, !session.isEmpty {
            guard let user = try await sessions.resolve(tokenHash: Secrets.hash(session), idleTimeout: settings.sessionIdleTimeout) else {
                return (nil, nil)
            }
            return (.user(user), session)
        }
        return (nil, nil)
    }

    /// The credential of an `Authorization: Bearer <credential>` header (the scheme in any
    /// case, spaces or tabs around either part), or `nil` for any other header. Byte by
    /// byte: Foundation's trimming went through NSString, on every delivery.
    static func bearerCredential(_ header: String) -> String? {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
        let bytes = header.utf8
        guard let start = bytes.firstIndex(where: { !isSpace($0) }),
            let gap = bytes[start...].firstIndex(where: isSpace),
            bytes.distance(from: start, to: gap) == 6,
            zip(bytes[start..<gap], "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }),
            let first = bytes[gap...].firstIndex(where: { !isSpace($0) }),
            let last = bytes.lastIndex(where: { !isSpace($0) })
        else { return nil }
        return String(header[first...last])
    }

    enum LoginOutcome {
        case signedIn(User, session: String)
        /// Wrong password, unknown user, disabled user, empty password: one answer for all.
        case rejected
        /// Too many recent failures for this account or address; try again after this long.
        case limited(retryAfter: Int)
    }

    /// Signs a person in. Every failure takes the same path — a bcrypt check against the
    /// stored hash or a dummy one — and gives the same answer.
    func login(username rawUsername: String, password: String, address: String?, userAgent: String?) async throws -> LoginOutcome {
        // No username is longer than 64 characters or holds a NUL; what is counted and audited
        // of a longer or stranger one is cut and cleaned (the attempt fails all the same).
        let username = String(rawUsername.trimmingCharacters(in: .whitespaces).lowercased().unicodeScalars.filter { $0 != "\0" }.prefix(100))
        let attempt: Int64
        switch try await audit.beginLogin(
            username: username,
            address: address,
            window: settings.loginWindow,
            perAccount: settings.loginFailuresPerAccount,
            perAddress: settings.loginFailuresPerAddress
        )
        {
        case .limited(let until): return .limited(retryAfter: max(1, Int(until.timeIntervalSinceNow.rounded(.up))))
        case .allowed(let id): attempt = id
        }
        let account = try await users.credentials(username: username)
        let hasher = self.hasher
        let valid = await Self.offThread { hasher.verify(password, hash: account?.passwordHash) }
        guard valid, let user = account?.user else {
            try await audit.record(
                "login.failed",
                target: username,
                detail: ["username": username],
                by: AuditActor(userID: nil, name: "anonymous", remoteAddress: address)
            )
            return .rejected
        }
        try await audit.loginSucceeded(attempt: attempt)
        let session = Secrets.newSessionToken()
        let expires = Date().addingTimeInterval(Double(settings.sessionLifetime.components.seconds))
        try await sessions.create(
            user: user,
            tokenHash: Secrets.hash(session),
            expiresAt: expires,
            userAgent: userAgent,
            by: .user(user, from: address)
        )
        return .signedIn(user, session: session)
    }

    /// Hashes a new password off the cooperative pool (bcrypt takes a quarter second on purpose).
    func hashPassword(_ password: String) async -> String {
        let hasher = self.hasher
        return await Self.offThread { hasher.hash(password) }
    }

    func checkPassword(_ password: String, for user: User) async throws -> Bool {
        let stored = try await users.credentials(username: user.username)?.passwordHash
        let hasher = self.hasher
        return await Self.offThread { hasher.verify(password, hash: stored) }
    }

    /// Runs CPU-heavy work on a Dispatch thread, not on a thread the server's tasks share.
    static func offThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
        }
    }

    /// The session cookie: HttpOnly, SameSite=Lax, Secure behind a TLS proxy.
    func sessionCookie(_ value: String) -> Cookie {
        Cookie(
            name: Self.sessionCookie,
            value: value,
            maxAge: Int(settings.sessionLifetime.components.seconds),
            path: "/",
            secure: settings.behindTLSProxy,
            httpOnly: true,
            sameSite: .lax
        )
    }

    func expiredCookie(_ name: String, path: String = "/") -> Cookie {
        Cookie(name: name, value: "", maxAge: 0, path: path, secure: settings.behindTLSProxy, httpOnly: true, sameSite: .lax)
    }
}

extension Request {
    /// Whether the request comes from a page of this server, as far as the browser says:
    /// a present `Origin` must name this host, and `Sec-Fetch-Site` must not be cross-site.
    var isSameOrigin: Bool {
        if let site = headers[HTTPField.Name("Sec-Fetch-Site")!], site == "cross-site" { return false }
        guard let origin = headers[HTTPField.Name("Origin")!] else { return true }
        guard let host = head.authority, let url = URL(string: origin), let originHost = url.host else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority.lowercased() == host.lowercased()
    }
}
