import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// Admin pages (people, roles, integration keys, the audit log) and every person's own
/// API tokens. Secrets (a token, a key, a one-time password) appear once, on the page that
/// answers the form which made them, and are never stored or shown again.
struct AdminPages {
    let pages: Pages
    let access: AccessController
    var auth: AuthService { access.auth }

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/admin", .role(.admin)) { _, _ in Response(status: .seeOther, headers: [.location: "/admin/users"]) }
        routes.on(.get, "/admin/users", .role(.admin)) { _, context in try await users(context) }
        routes.on(.post, "/admin/users", .role(.admin)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await users(context, error: $0, status: $1) }) {
                let input = AccessController.NewUser(
                    username: (f["username"] ?? "").trimmingCharacters(in: .whitespaces),
                    role: f["role"] ?? "",
                    displayName: Self.nonEmpty(f["display_name"]),
                    email: Self.nonEmpty(f["email"]),
                    password: nil
                )
                let created = try await access.createUser(input, context)
                return try await users(context, secret: ("One-time password for \(created.user.username)", created.password ?? ""))
            }
        }
        routes.on(.post, "/admin/users/:username", .role(.admin)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await users(context, error: $0, status: $1) }) {
                let change = AccessController.UserChange(role: Self.nonEmpty(f["role"]), disabled: f["disabled"].map { $0 == "true" })
                _ = try await access.updateUser(change, context)
                return Response(status: .seeOther, headers: [.location: "/admin/users"])
            }
        }
        routes.on(.post, "/admin/users/:username/reset-password", .role(.admin)) { _, context in
            try await WebController.answer({ try await users(context, error: $0, status: $1) }) {
                let reset = try await access.resetPassword(context)
                return try await users(context, secret: ("New one-time password for \(try context.parameters.require("username"))", reset.password))
            }
        }
        routes.on(.get, "/admin/integrations", .role(.admin)) { _, context in try await integrations(context) }
        routes.on(.post, "/admin/integrations", .role(.admin)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await integrations(context, error: $0, status: $1) }) {
                let input = AccessController.NewIntegration(
                    name: f["name"] ?? "",
                    kind: f["kind"] ?? "",
                    requireSignature: f["require_signature"] == "true"
                )
                let created = try await access.createIntegration(input, context)
                return try await integrations(context, secret: ("Integration key for \(created.name)", created.key ?? ""))
            }
        }
        routes.on(.post, "/admin/integrations/:name/revoke", .role(.admin)) { _, context in
            try await WebController.answer({ try await integrations(context, error: $0, status: $1) }) {
                _ = try await access.revokeIntegration(context)
                return Response(status: .seeOther, headers: [.location: "/admin/integrations"])
            }
        }
        routes.on(.get, "/admin/audit", .role(.admin)) { request, context in
            let before = request.uri.queryParameters.get("before", as: Int.self)
            let entries = try await auth.audit.list(limit: 100, before: before)
            let rows: [[String: Any]] = entries.map { e in
                [
                    "at": WebController.time(e.at), "actor": e.actor, "action": e.action, "target": e.target ?? "",
                    "detail": e.detail.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "),
                    "address": e.remoteAddress ?? "",
                ]
            }
            return try pages.render(
                "admin-audit.html",
                [
                    "title": "Audit log", "nav_admin": true, "entries": rows,
                    "older": entries.count == 100 ? entries.last.map { "/admin/audit?before=\($0.id)" } as Any : NSNull(),
                ],
                context: context
            )
        }
        routes.on(.get, "/account/tokens", .role(.viewer)) { _, context in try await tokens(context) }
        routes.on(.post, "/account/tokens", .role(.viewer)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await tokens(context, error: $0, status: $1) }) {
                var days: Int?
                if let text = Self.nonEmpty(f["expires_in_days"]) {
                    guard let n = Int(text) else { throw APIError(.badRequest, "must be a whole number of days", field: "expires_in_days") }
                    days = n
                }
                let created = try await access.createToken(.init(name: f["name"] ?? "", expiresInDays: days), context)
                return try await tokens(context, secret: ("API token \(created.name)", created.token ?? ""))
            }
        }
        routes.on(.post, "/account/tokens/:id/revoke", .role(.viewer)) { _, context in
            try await WebController.answer({ try await tokens(context, error: $0, status: $1) }) {
                _ = try await access.revokeToken(context)
                return Response(status: .seeOther, headers: [.location: "/account/tokens"])
            }
        }
    }

    static func nonEmpty(_ text: String?) -> String? {
        guard let t = text?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty else { return nil }
        return t
    }

    func users(
        _ context: HandrailRequestContext,
        secret: (String, String)? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let me = context.user?.username
        let list: [[String: Any]] = try await auth.users.list().map { u in
            [
                "username": u.username, "display_name": u.displayName, "email": u.email ?? "", "role": u.role.rawValue,
                "disabled": u.disabled, "must_change": u.mustChangePassword, "me": u.username == me,
                "roles": Role.allCases.map { ["value": $0.rawValue, "selected": $0 == u.role] },
            ]
        }
        return try pages.render(
            "admin-users.html",
            status: status,
            [
                "title": "People", "nav_admin": true, "users": list,
                "roles": Role.allCases.map { ["value": $0.rawValue, "selected": $0 == .responder] },
                "secret": secret.map { ["label": $0.0, "value": $0.1] } as Any, "error": error as Any,
            ],
            context: context
        )
    }

    func integrations(
        _ context: HandrailRequestContext,
        secret: (String, String)? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let list: [[String: Any]] = try await auth.integrations.list().map { k in
            [
                "name": k.name, "kind": k.kind.rawValue, "prefix": k.displayPrefix, "signed": k.requireSignature,
                "created": WebController.time(k.createdAt), "last_used": k.lastUsedAt.map(WebController.time) ?? "never",
                "revoked": k.revokedAt.map(WebController.time) as Any,
            ]
        }
        return try pages.render(
            "admin-integrations.html",
            status: status,
            [
                "title": "Integration keys", "nav_admin": true, "integrations": list, "kinds": IntegrationKind.allCases.map(\.rawValue),
                "secret": secret.map { ["label": $0.0, "value": $0.1] } as Any, "error": error as Any,
            ],
            context: context
        )
    }

    func tokens(
        _ context: HandrailRequestContext,
        secret: (String, String)? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        let list: [[String: Any]] = try await auth.tokens.list(userID: user.id).map { t in
            [
                "id": t.id, "name": t.name, "prefix": t.displayPrefix, "created": WebController.time(t.createdAt),
                "expires": t.expiresAt.map(WebController.time) ?? "never", "last_used": t.lastUsedAt.map(WebController.time) ?? "never",
                "revoked": t.revokedAt.map(WebController.time) as Any,
            ]
        }
        return try pages.render(
            "account-tokens.html",
            status: status,
            [
                "title": "Your API tokens", "tokens": list, "nav_admin": user.role >= .admin,
                "secret": secret.map { ["label": $0.0, "value": $0.1] } as Any, "error": error as Any,
            ],
            context: context
        )
    }
}
