import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// The API for people, tokens, integration keys and the audit log.
struct AccessController {
    let auth: AuthService

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/api/v1/me", .role(.viewer), beforePasswordChange: true) { _, context in try me(context) }
        routes.on(.put, "/api/v1/me/time-zone", .role(.viewer)) { request, context in
            let input = try await request.decodeJSON(TimeZoneInput.self, context: context)
            return UserBody(try await setTimeZone(input.timeZone, context))
        }
        routes.on(.get, "/api/v1/tokens", .role(.viewer)) { _, context in try await listTokens(context) }
        routes.on(.post, "/api/v1/tokens", .role(.viewer)) { request, context in try await createToken(request, context) }
        routes.on(.delete, "/api/v1/tokens/:id", .role(.viewer)) { _, context in try await revokeToken(context) }
        routes.on(.get, "/api/v1/users", .role(.admin)) { _, _ in try await auth.users.list().map(UserBody.init) }
        routes.on(.post, "/api/v1/users", .role(.admin)) { request, context in try await createUser(request, context) }
        routes.on(.patch, "/api/v1/users/:username", .role(.admin)) { request, context in try await updateUser(request, context) }
        routes.on(.post, "/api/v1/users/:username/reset-password", .role(.admin)) { _, context in try await resetPassword(context) }
        routes.on(.get, "/api/v1/integrations", .role(.admin)) { _, _ in try await auth.integrations.list().map { IntegrationBody($0) } }
        routes.on(.post, "/api/v1/integrations", .role(.admin)) { request, context in try await createIntegration(request, context) }
        routes.on(.delete, "/api/v1/integrations/:name", .role(.admin)) { _, context in try await revokeIntegration(context) }
        routes.on(.get, "/api/v1/audit", .role(.admin)) { request, _ in try await listAudit(request) }
    }

    // MARK: - Bodies

    struct UserBody: ResponseEncodable {
        let username: String, displayName: String, email: String?, role: String, disabled: Bool, mustChangePassword: Bool, createdAt: Date
        /// The person's zone for pages; absent: their browser's, else UTC.
        let timeZone: String?
        init(_ u: User) {
            timeZone = u.timeZone
            username = u.username
            displayName = u.displayName
            email = u.email
            role = u.role.rawValue
            disabled = u.disabled
            mustChangePassword = u.mustChangePassword
            createdAt = u.createdAt
        }
    }

    struct TokenBody: ResponseEncodable {
        let id: Int, username: String, name: String, prefix: String, createdAt: Date, expiresAt: Date?, lastUsedAt: Date?, revokedAt: Date?
        /// Only in the answer to the request that created it.
        let token: String?
        init(_ t: APIToken, token: String? = nil) {
            id = t.id
            username = t.username
            name = t.name
            prefix = t.displayPrefix
            createdAt = t.createdAt
            expiresAt = t.expiresAt
            lastUsedAt = t.lastUsedAt
            revokedAt = t.revokedAt
            self.token = token
        }
    }

    struct IntegrationBody: ResponseEncodable {
        let name: String, kind: String, prefix: String, requireSignature: Bool, requireTimestamp: Bool, createdAt: Date, lastUsedAt: Date?,
            revokedAt: Date?
        /// Only in the answer to the request that created it.
        let key: String?
        init(_ k: IntegrationKeyRecord, key: String? = nil) {
            name = k.name
            kind = k.kind.rawValue
            prefix = k.displayPrefix
            requireSignature = k.requireSignature
            requireTimestamp = k.requireTimestamp
            createdAt = k.createdAt
            lastUsedAt = k.lastUsedAt
            revokedAt = k.revokedAt
            self.key = key
        }
    }

    // MARK: - Handlers

    struct TimeZoneInput: Decodable { let timeZone: String? }

    /// Sets the zone pages show the signed-in person's times in; empty or nil: their
    /// browser's (API and pages).
    func setTimeZone(_ zone: String?, _ context: HandrailRequestContext) async throws -> User {
        guard let user = context.user else { throw APIError(.forbidden, "time zones are people's, not integration keys'") }
        let trimmed = zone?.trimmingCharacters(in: .whitespaces) ?? ""
        let name = trimmed.isEmpty ? nil : trimmed
        if let name, !PageTime.valid(name) {
            throw APIError(.badRequest, "must be a time zone name such as Europe/Berlin or UTC, not \(name.debugDescription)", field: "time_zone")
        }
        guard let updated = try await auth.users.setTimeZone(userID: user.id, name) else { throw APIError(.notFound, "no such user") }
        return updated
    }

    func me(_ context: HandrailRequestContext) throws -> UserBody {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        return UserBody(user)
    }

    func listTokens(_ context: HandrailRequestContext) async throws -> [TokenBody] {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        return try await auth.tokens.list(userID: user.id).map { TokenBody($0) }
    }

    struct NewToken: Decodable {
        let name: String
        let expiresInDays: Int?
    }

    func createToken(_ request: Request, _ context: HandrailRequestContext) async throws -> EditedResponse<TokenBody> {
        EditedResponse(status: .created, response: try await createToken(try await request.decodeJSON(NewToken.self, context: context), context))
    }

    /// Creates a token of the signed-in person; the answer holds the token, once (API and pages).
    func createToken(_ body: NewToken, _ context: HandrailRequestContext) async throws -> TokenBody {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        let name = body.name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count) else { throw APIError(.badRequest, "must be 1–100 characters", field: "name") }
        if let days = body.expiresInDays, !(1...3650).contains(days) {
            throw APIError(.badRequest, "must be between 1 and 3650", field: "expires_in_days")
        }
        let token = Secrets.newAPIToken()
        let record = try await auth.tokens.create(
            for: user,
            name: name,
            tokenHash: Secrets.hash(token),
            displayPrefix: Secrets.displayPrefix(token),
            expiresAt: body.expiresInDays.map { Date().addingTimeInterval(Double($0) * 86_400) },
            by: .user(user, from: context.clientAddress)
        )
        return TokenBody(record, token: token)
    }

    func revokeToken(_ context: HandrailRequestContext) async throws -> Response {
        guard let user = context.user else { throw APIError(.unauthorized, "sign in first") }
        guard let id = context.parameters.get("id", as: Int.self) else { throw APIError(.badRequest, "must be a number", field: "id") }
        let owner = user.role >= .admin ? nil : user.id
        guard try await auth.tokens.revoke(id: id, ownerID: owner, by: .user(user, from: context.clientAddress)) != nil else {
            throw APIError(.notFound, "no live token \(id) of yours")
        }
        return Response(status: .noContent)
    }

    struct NewUser: Decodable {
        let username: String
        let role: String
        let displayName: String?
        let email: String?
        let password: String?
    }

    struct CreatedUser: ResponseEncodable {
        let user: UserBody
        /// The generated one-time password, when none was given.
        let password: String?
    }

    func createUser(_ request: Request, _ context: HandrailRequestContext) async throws -> EditedResponse<CreatedUser> {
        EditedResponse(status: .created, response: try await createUser(try await request.decodeJSON(NewUser.self, context: context), context))
    }

    /// Creates a person; without a password, a one-time one to hand over (API and pages).
    func createUser(_ body: NewUser, _ context: HandrailRequestContext) async throws -> CreatedUser {
        guard let admin = context.user else { throw APIError(.unauthorized, "sign in first") }
        try User.validateUsername(body.username)
        let role = try Role.parse(body.role)
        if let email = body.email { try User.validateEmail(email) }
        let generated = body.password == nil ? Secrets.newPassword() : nil
        let password = body.password ?? generated!
        try PasswordHasher.validate(password)
        let user = try await auth.users.create(
            username: body.username,
            displayName: body.displayName ?? body.username,
            email: body.email,
            role: role,
            passwordHash: await auth.hashPassword(password),
            mustChangePassword: generated != nil,
            by: .user(admin, from: context.clientAddress)
        )
        return CreatedUser(user: UserBody(user), password: generated)
    }

    struct UserChange: Decodable {
        let role: String?
        let disabled: Bool?
    }

    func updateUser(_ request: Request, _ context: HandrailRequestContext) async throws -> UserBody {
        try await updateUser(try await request.decodeJSON(UserChange.self, context: context), context)
    }

    /// Changes the role of the person in the path, or disables/enables them (API and pages).
    func updateUser(_ body: UserChange, _ context: HandrailRequestContext) async throws -> UserBody {
        guard let admin = context.user else { throw APIError(.unauthorized, "sign in first") }
        let username = try context.parameters.require("username")
        guard body.role != nil || body.disabled != nil else { throw APIError(.badRequest, "give role or disabled", field: "role") }
        let actor = AuditActor.user(admin, from: context.clientAddress)
        if username == admin.username, body.disabled == true || (body.role.flatMap { Role(rawValue: $0) }.map { $0 < .admin } ?? false) {
            throw APIError(
                .conflict,
                "you cannot disable yourself or lower your own role; another admin can",
                field: body.disabled == true ? "disabled" : "role"
            )
        }
        var updated: User?
        if let roleName = body.role { updated = try await auth.users.setRole(username: username, to: try Role.parse(roleName), by: actor) }
        if let disabled = body.disabled { updated = try await auth.users.setDisabled(username: username, disabled, by: actor) }
        guard let updated else { throw APIError(.notFound, "no user \(username.debugDescription)") }
        return UserBody(updated)
    }

    struct NewPassword: ResponseEncodable { let password: String }

    func resetPassword(_ context: HandrailRequestContext) async throws -> NewPassword {
        guard let admin = context.user else { throw APIError(.unauthorized, "sign in first") }
        let username = try context.parameters.require("username")
        let password = Secrets.newPassword()
        guard
            try await auth.users.setPassword(
                username: username,
                hash: await auth.hashPassword(password),
                mustChange: true,
                by: .user(admin, from: context.clientAddress)
            ) != nil
        else { throw APIError(.notFound, "no user \(username.debugDescription)") }
        return NewPassword(password: password)
    }

    struct NewIntegration: Decodable {
        let name: String
        let kind: String
        let requireSignature: Bool?
        /// Implies `requireSignature`.
        var requireTimestamp: Bool? = nil
    }

    func createIntegration(_ request: Request, _ context: HandrailRequestContext) async throws -> EditedResponse<IntegrationBody> {
        EditedResponse(
            status: .created,
            response: try await createIntegration(try await request.decodeJSON(NewIntegration.self, context: context), context)
        )
    }

    /// Creates an integration key; the answer holds the key, once (API and pages).
    func createIntegration(_ body: NewIntegration, _ context: HandrailRequestContext) async throws -> IntegrationBody {
        guard let admin = context.user else { throw APIError(.unauthorized, "sign in first") }
        let kind = try IntegrationKind.parse(body.kind)
        let name = body.name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count) else { throw APIError(.badRequest, "must be 1–100 characters", field: "name") }
        let key = Secrets.newIntegrationKey()
        let record = try await auth.integrations.create(
            name: name,
            kind: kind,
            keyHash: Secrets.hash(key),
            displayPrefix: Secrets.displayPrefix(key),
            requireSignature: body.requireSignature ?? false,
            requireTimestamp: body.requireTimestamp ?? false,
            by: .user(admin, from: context.clientAddress)
        )
        return IntegrationBody(record, key: key)
    }

    func revokeIntegration(_ context: HandrailRequestContext) async throws -> Response {
        guard let admin = context.user else { throw APIError(.unauthorized, "sign in first") }
        let name = try context.parameters.require("name")
        guard let revoked = try await auth.integrations.revoke(name: name, by: .user(admin, from: context.clientAddress)) else {
            throw APIError(.notFound, "no live integration key named \(name.debugDescription)")
        }
        auth.keyCache.forget(integrationID: revoked.id)
        return Response(status: .noContent)
    }

    struct AuditBody: ResponseEncodable {
        let id: Int, at: Date, actor: String, action: String, target: String?, detail: [String: String], remoteAddress: String?
    }

    func listAudit(_ request: Request) async throws -> [AuditBody] {
        let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 100
        guard (1...1000).contains(limit) else { throw APIError(.badRequest, "must be between 1 and 1000", field: "limit") }
        let before = request.uri.queryParameters.get("before", as: Int.self)
        return try await auth.audit.list(limit: limit, before: before).map {
            AuditBody(id: $0.id, at: $0.at, actor: $0.actor, action: $0.action, target: $0.target, detail: $0.detail, remoteAddress: $0.remoteAddress)
        }
    }
}
