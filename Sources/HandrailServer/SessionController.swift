import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird

/// Signing in and out, the start page, and changing one's password.
struct SessionController {
    let auth: AuthService
    let pages: Pages

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/login", .everyone) { request, context in try await showLogin(request, context) }
        routes.on(.post, "/login", .everyone) { request, context in try await login(request, context) }
        routes.on(.post, "/logout", .role(.viewer), beforePasswordChange: true) { request, context in try await logout(request, context) }
        routes.on(.get, "/account/password", .role(.viewer), beforePasswordChange: true) { _, context in
            try pages.render("password.html", PasswordPage(required: context.user?.mustChangePassword == true), context: context)
        }
        routes.on(.post, "/account/password", .role(.viewer), beforePasswordChange: true) { request, context in
            try await changePassword(request, context)
        }
    }

    /// A same-origin path to go to after signing in; anything else is `/`. Judged as a
    /// browser reads it: tabs and line breaks are dropped first (so `/\t/evil` is `//evil`),
    /// then only a printable-ASCII path without a backslash, scheme or authority passes.
    static func safeNext(_ next: String?) -> String {
        guard let next else { return "/" }
        let path = String(next.unicodeScalars.filter { $0 != "\t" && $0 != "\n" && $0 != "\r" })
        guard path.hasPrefix("/"), !path.hasPrefix("//"),
            path.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) && $0 != "\\" })
        else { return "/" }
        return path
    }

    func showLogin(
        _ request: Request,
        _ context: HandrailRequestContext,
        error: String? = nil,
        username: String = "",
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        if context.user != nil, error == nil {
            return Response(status: .seeOther, headers: [.location: Self.safeNext(request.uri.queryParameters.get("next"))])
        }
        // Login CSRF: a random token in a cookie that only /login sees, echoed by the form.
        let token = Secrets.newSessionToken()
        var response = try pages.render(
            "login.html",
            status: status,
            LoginPage(loginCsrf: token, next: Self.safeNext(request.uri.queryParameters.get("next")), error: error, username: username),
            context: context.signedOut
        )
        response.setCookie(
            Cookie(
                name: AuthService.loginCSRFCookie,
                value: token,
                maxAge: 3600,
                path: "/login",
                secure: auth.settings.behindTLSProxy,
                httpOnly: true,
                sameSite: .strict
            )
        )
        return response
    }

    func login(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        var request = request
        guard request.isSameOrigin else { throw APIError(.forbidden, "cross-site request refused") }
        let form = try FormFields(String(buffer: try await request.collectBody(limit: 64 * 1024)))
        guard let expected = request.cookies[AuthService.loginCSRFCookie]?.value, let presented = form[AuthService.csrfField],
            !expected.isEmpty, Secrets.constantTimeEqual(expected, presented)
        else {
            throw APIError(.forbidden, "missing or wrong CSRF token; reload the sign-in page", field: AuthService.csrfField)
        }
        let username = form["username"] ?? ""
        switch try await auth.login(
            username: username,
            password: form["password"] ?? "",
            address: context.clientAddress,
            userAgent: request.headers[.userAgent]
        ) {
        case .rejected:
            return try await showLogin(request, context, error: "Wrong username or password.", username: username, status: .unauthorized)
        case .limited(let seconds):
            var response = try await showLogin(
                request,
                context,
                error: "Too many failed sign-ins. Try again in \(max(1, seconds / 60)) minute(s).",
                username: username,
                status: .tooManyRequests
            )
            response.headers[.retryAfter] = String(seconds)
            return response
        case .signedIn(let user, let session):
            // The session that came in (if any) ends: a new id at every sign-in.
            if let old = request.cookies[AuthService.sessionCookie]?.value, !old.isEmpty {
                try await auth.sessions.end(tokenHash: Secrets.hash(old), by: .user(user, from: context.clientAddress))
            }
            let destination = user.mustChangePassword ? "/account/password" : Self.safeNext(form["next"])
            var response = Response(status: .seeOther, headers: [.location: destination])
            response.setCookie(auth.sessionCookie(session))
            response.setCookie(auth.expiredCookie(AuthService.loginCSRFCookie, path: "/login"))
            return response
        }
    }

    func logout(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        if let session = context.sessionToken, let user = context.user {
            try await auth.sessions.end(tokenHash: Secrets.hash(session), by: .user(user, from: context.clientAddress))
        }
        var response = Response(status: .seeOther, headers: [.location: "/login"])
        response.setCookie(auth.expiredCookie(AuthService.sessionCookie))
        return response
    }

    func changePassword(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        var request = request
        let form = try FormFields(String(buffer: try await request.collectBody(limit: 64 * 1024)))
        func again(_ error: String) throws -> Response {
            try pages.render(
                "password.html",
                status: .badRequest,
                PasswordPage(required: user.mustChangePassword, error: error),
                context: context
            )
        }
        let new = form["new_password"] ?? ""
        guard try await auth.checkPassword(form["current_password"] ?? "", for: user) else { return try again("The current password is wrong.") }
        guard new == form["confirm_password"] else { return try again("The two new passwords differ.") }
        do { try PasswordHasher.validate(new, field: "new password") } catch { return try again("The \(error.description).") }
        _ = try await auth.users.setPassword(
            username: user.username,
            hash: await auth.hashPassword(new),
            mustChange: false,
            keepSession: context.sessionToken.map(Secrets.hash),
            by: .user(user, from: context.clientAddress)
        )
        return Response(status: .seeOther, headers: [.location: "/"])
    }
}

extension HandrailRequestContext {
    /// The same request seen as anonymous (the sign-in page shows no user menu).
    var signedOut: HandrailRequestContext {
        var copy = self
        copy.principal = nil
        copy.sessionToken = nil
        return copy
    }
}
