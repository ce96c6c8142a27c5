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
            let page = AuditPage(try await auth.audit.list(limit: 100, before: before), limit: 100)
            return try pages.render("admin-audit.html", page, context: context)
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
        let page = UsersPage(
            try await auth.users.list(),
            me: context.user?.username,
            secret: secret.map { ShownSecret(label: $0.0, value: $0.1) },
            error: error
        )
        return try pages.render("admin-users.html", status: status, page, context: context)
    }

    func integrations(
        _ context: HandrailRequestContext,
        secret: (String, String)? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let page = IntegrationsPage(try await auth.integrations.list(), secret: secret.map { ShownSecret(label: $0.0, value: $0.1) }, error: error)
        return try pages.render("admin-integrations.html", status: status, page, context: context)
    }

    func tokens(
        _ context: HandrailRequestContext,
        secret: (String, String)? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        let page = TokensPage(
            try await auth.tokens.list(userID: user.id),
            user: user,
            secret: secret.map { ShownSecret(label: $0.0, value: $0.1) },
            error: error
        )
        return try pages.render("account-tokens.html", status: status, page, context: context)
    }
}
