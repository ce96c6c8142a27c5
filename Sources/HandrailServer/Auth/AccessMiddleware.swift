import Foundation
import HTTPTypes
public import HandrailCore
import HandrailStore
public import Hummingbird
import Synchronization

/// Every route and the least access it declared, so the access of each route can be
/// listed, checked and tested; a route added without a declaration is not reachable.
public final class AccessRegistry: Sendable {
    private let entries = Mutex<[String: Access]>([:])

    static func key(_ method: HTTPRequest.Method, _ path: String) -> String { "\(method.rawValue) \(path)" }

    func record(_ method: HTTPRequest.Method, _ path: String, _ access: Access) {
        entries.withLock { $0[Self.key(method, path)] = access }
    }

    /// The access a route declared (`path` as the router spells it, e.g. `/api/v1/tokens/{id}`).
    public func access(method: HTTPRequest.Method, path: String) -> Access? {
        entries.withLock { $0[Self.key(method, path)] }
    }
}

/// Adds routes with their declared access: each gets the middleware that authenticates
/// the caller and enforces the declaration, and is recorded in the registry.
struct Routes {
    let router: Router<HandrailRequestContext>
    let registry: AccessRegistry
    let auth: AuthService

    /// - Parameters:
    ///   - beforePasswordChange: reachable by someone who must change their password first
    ///     (the change page itself, signing out).
    ///   - cachedKey: the integration key may come from the key cache, because everything
    ///     the route stores goes through statements that check the key is still live
    ///     (`IngestStore`). Only for such routes.
    func on<Output: ResponseGenerator>(
        _ method: HTTPRequest.Method,
        _ path: String,
        _ access: Access,
        beforePasswordChange: Bool = false,
        cachedKey: Bool = false,
        use handler: @escaping @Sendable (Request, HandrailRequestContext) async throws -> Output
    ) {
        // Keyed as the router spells the path (`/api/v1/tokens/{id}`), so a walk over
        // `router.routes` finds every declaration.
        registry.record(method, RouterPath(path).description, access)
        router.group()
            .add(middleware: AccessMiddleware(access: access, auth: auth, beforePasswordChange: beforePasswordChange, cachedKey: cachedKey))
            .on(RouterPath(path), method: method, use: handler)
    }
}

/// Authenticates the caller, enforces the route's declared access, and checks CSRF on
/// state-changing requests made with a session cookie.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = HandrailRequestContext
    let access: Access
    let auth: AuthService
    let beforePasswordChange: Bool
    let cachedKey: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        var request = request
        let proxies = auth.settings.believedProxies
        if !proxies.isEmpty {
            context.clientAddress = ForwardedFor.client(
                peer: context.clientAddress,
                header: request.headers[values: Self.forwardedFor],
                trusted: proxies
            )
        }
        if access != .everyone || request.headers[.authorization] != nil || request.cookies[AuthService.sessionCookie] != nil {
            (context.principal, context.sessionToken) = try await auth.authenticate(request, cachedKey: cachedKey)
        }
        // PagerDuty's Events API authenticates by `routing_key` alone and ignores any
        // Authorization header (its clients may send the REST API's `Token token=…`).
        if context.principal == nil, case .ingest(let kinds) = access, kinds.contains(.pagerduty) {
            let body = try await request.collectBody(limit: Self.maximumSignedBody)
            let event = try? JSONParser.parse(Data(body.readableBytesView))
            context.eventBody = .some(event)
            context.principal = try await Self.routingKeyPrincipal(event, auth: auth)
        }
        // Flagger cannot send headers with a webhook: a canary controller's key may come in
        // the URL, as `?key=` (the request log leaves query strings out).
        if context.principal == nil, case .ingest(let kinds) = access, kinds.contains(.canary),
            let key = request.uri.queryParameters.get("key"), !key.isEmpty
        {
            context.principal = try await auth.integrations.authenticate(keyHash: Secrets.hash(key)).map(Principal.integration)
        }
        switch access.allows(context.principal, fromLoopback: context.isLoopback) {
        case .allow:
            break
        case .unauthenticated:
            if Self.wantsJSON(request) || access.isIngest {
                // Something was sent and is not a live key, token or session: say that, not "sign in".
                let routingKey = context.eventBody??["routing_key"]?.stringValue
                if request.headers[.authorization] != nil || routingKey?.isEmpty == false || request.uri.queryParameters.get("key") != nil {
                    throw APIError(
                        .unauthorized,
                        access.isIngest
                            ? "the integration key was not recognised (mistyped, or revoked); keys are made with `handrail integrations create`"
                            : "the token was not recognised (mistyped, expired or revoked)",
                        headers: [.wwwAuthenticate: "Bearer"]
                    )
                }
                throw Self.authenticationRequired
            }
            let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            return Response(
                status: .seeOther,
                headers: [.location: "/login?next=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/")]
            )
        case .forbidden:
            if case .integration(let integration) = context.principal {
                throw APIError(.forbidden, Self.wrongPath(integration.kind, ingest: access.isIngest))
            }
            throw APIError(.forbidden, "your role does not allow this")
        }
        if case .integration(let integration) = context.principal, integration.requireSignature {
            try await Self.checkSignature(&request, integration: integration)
        }
        if let session = context.sessionToken, ![.get, .head, .options].contains(request.method) {
            try await Self.checkCSRF(&request, session: session)
        }
        if let user = context.user, user.mustChangePassword, !beforePasswordChange, access != .everyone {
            if Self.wantsJSON(request) { throw APIError(.forbidden, "change your password first (at /account/password)") }
            return Response(status: .seeOther, headers: [.location: "/account/password"])
        }
        // People read times in their zone (integrations and anonymous callers: UTC).
        let browser = request.cookies[PageTime.cookie]?.value.removingPercentEncoding
        guard context.user != nil || browser != nil else { return try await next(request, context) }
        return try await PageTime.$current.withValue(PageTime.choose(setting: context.user?.timeZone, browser: browser)) {
            try await next(request, context)
        }
    }

    /// Where an integration key of `kind` delivers, said to a key sent elsewhere.
    static func wrongPath(_ kind: IntegrationKind, ingest: Bool) -> String {
        let path =
            switch kind {
            case .alertmanager: "POST /api/v1/alerts/alertmanager"
            case .grafana: "POST /api/v1/alerts/grafana"
            case .generic: "POST /api/v1/alerts/generic"
            case .pagerduty: "POST /v2/enqueue (or /v2/change/enqueue)"
            case .canary: "POST /api/v1/flagger/{hook}?key=… (or GET /api/v1/argo/gate)"
            }
        return ingest
            ? "this is \(kind == .alertmanager ? "an" : "a") \(kind.rawValue) key: it delivers to \(path)"
            : "integration keys only deliver alerts; this \(kind.rawValue) key delivers to \(path)"
    }

    /// What a request without live credentials gets from the API.
    static let authenticationRequired = APIError(
        .unauthorized,
        "authentication required: a Bearer token, or sign in",
        headers: [.wwwAuthenticate: "Bearer"]
    )

    /// API paths and non-HTML clients get JSON errors; pages get redirects.
    static func wantsJSON(_ request: Request) -> Bool {
        let path = request.uri.path
        if path.hasPrefix("/api/") || path.hasPrefix("/v2/") || path == "/metrics" { return true }
        // Pages redirect to the sign-in page, unless the client asks for JSON and not HTML.
        let accept = request.headers[.accept] ?? ""
        return accept.contains("application/json") && !accept.contains("text/html")
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// PagerDuty's Events API carries the integration key in the body, as `routing_key`.
    static func routingKeyPrincipal(_ event: JSONValue?, auth: AuthService) async throws -> Principal? {
        guard let key = event?["routing_key"]?.stringValue?.trimmingCharacters(in: .whitespaces), !key.isEmpty else { return nil }
        return try await auth.integrations.authenticate(keyHash: Secrets.hash(key)).map(Principal.integration)
    }

    /// A body read before its sender is known (PagerDuty's `routing_key`, a signature) is
    /// held to the ingestion limit, whoever sends it.
    static let maximumSignedBody = IngestController.maxBody

    /// For keys that require it: an HMAC-SHA256 signature over the body (Grafana's
    /// `X-Grafana-Alerting-Signature`, optionally with a timestamp no older than five
    /// minutes), keyed with the integration key the request presents.
    static func checkSignature(_ request: inout Request, integration: Integration) async throws {
        guard let header = request.headers[.authorization], let key = header.split(separator: " ", maxSplits: 1).last.map(String.init) else {
            throw APIError(.unauthorized, "integration \(integration.name.debugDescription) requires a signature, which is keyed with its Bearer key")
        }
        let body = try await request.collectBody(limit: maximumSignedBody)
        let headers = request.headers
        let timestamp = WebhookSignature.timestampHeaders.compactMap { headers[HTTPField.Name($0)!] }.first
        if integration.requireTimestamp, timestamp == nil {
            throw APIError(
                .unauthorized,
                "integration \(integration.name.debugDescription) requires a signed timestamp (\(WebhookSignature.timestampHeaders[0]))",
                field: WebhookSignature.timestampHeaders[0]
            )
        }
        switch WebhookSignature.verify(
            body: body.readableBytesView,
            signature: request.headers[HTTPField.Name(WebhookSignature.signatureHeader)!],
            timestamp: timestamp,
            secret: key,
            now: Date()
        )
        {
        case .valid: return
        case .missing:
            throw APIError(
                .unauthorized,
                "this integration requires the \(WebhookSignature.signatureHeader) header",
                field: WebhookSignature.signatureHeader
            )
        case .mismatch: throw APIError(.unauthorized, "the signature does not match the body", field: WebhookSignature.signatureHeader)
        case .stale:
            throw APIError(
                .unauthorized,
                "the signature's timestamp is more than five minutes away from now (a replay?)",
                field: "X-Grafana-Alerting-Signature-Timestamp"
            )
        }
    }

    /// The token comes in the `X-CSRF-Token` header (scripts) or the form's `csrf_token`
    /// field (pages); a foreign `Origin` is refused either way.
    static func checkCSRF(_ request: inout Request, session: String) async throws {
        guard request.isSameOrigin else { throw APIError(.forbidden, "cross-site request refused") }
        var presented = request.headers[AuthService.csrfHeader]
        if presented == nil, request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
            let body = try await request.collectBody(upTo: 1 << 20)
            presented = try FormFields(String(buffer: body))[AuthService.csrfField]
        }
        guard let presented, Secrets.constantTimeEqual(presented, Secrets.csrfToken(session: session)) else {
            throw APIError(.forbidden, "missing or wrong CSRF token", field: AuthService.csrfField)
        }
    }
}

/// `application/x-www-form-urlencoded` fields (the last value wins).
struct FormFields {
    let values: [String: String]

    /// - Throws: `ValidationError` naming a field that holds a NUL character (`%00`), which
    ///   PostgreSQL text cannot hold.
    init(_ body: String) throws(ValidationError) {
        var values: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            let name = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if name.utf8.contains(0) || value.utf8.contains(0) {
                throw ValidationError(field: String(name.prefix(40)), message: "must not contain NUL characters (%00)")
            }
            values[name] = value
        }
        self.values = values
    }

    subscript(_ name: String) -> String? { values[name] }
}

extension Access {
    /// Alert endpoints: machines call them, so they never answer with a sign-in redirect.
    var isIngest: Bool {
        if case .ingest = self { return true }
        return false
    }
}
