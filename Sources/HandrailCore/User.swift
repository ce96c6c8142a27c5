public import Foundation

/// A person who can sign in.
public struct User: Sendable, Equatable, Codable {
    public var id: Int
    public var username: String
    public var displayName: String
    public var email: String?
    public var role: Role
    public var disabled: Bool
    /// Must choose a new password before doing anything else (first admin, after a reset).
    public var mustChangePassword: Bool
    public var createdAt: Date
    /// The zone pages show times in (an IANA name); nil: the browser's, else UTC.
    public var timeZone: String?

    public init(
        id: Int,
        username: String,
        displayName: String,
        email: String?,
        role: Role,
        disabled: Bool,
        mustChangePassword: Bool,
        createdAt: Date,
        timeZone: String? = nil
    ) {
        self.timeZone = timeZone
        self.id = id
        self.username = username
        self.displayName = displayName
        self.email = email
        self.role = role
        self.disabled = disabled
        self.mustChangePassword = mustChangePassword
        self.createdAt = createdAt
    }

    /// Lower-case letters, digits, `.`, `_`, `-`; starts with a letter or digit; 1–64 long.
    public static func validateUsername(_ username: String, field: String = "username") throws(ValidationError) {
        let ok =
            !username.isEmpty && username.count <= 64
            && username.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-" }
            && username.first.map { $0.isLetter || $0.isNumber } == true
        if !ok {
            throw ValidationError(field: field, message: "must be 1–64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
    }

    public static func validateEmail(_ email: String, field: String = "email") throws(ValidationError) {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        if parts.count != 2 || parts[0].isEmpty || !parts[1].contains(".") || email.count > 254 || email.contains(where: \.isWhitespace) {
            throw ValidationError(field: field, message: "is not an email address")
        }
    }
}

/// Who is asking: a person, or an alert source's integration key.
public enum Principal: Sendable, Equatable {
    case user(User)
    case integration(Integration)

    public var user: User? {
        if case .user(let u) = self { return u }
        return nil
    }
}

/// An alert source's identity.
public struct Integration: Sendable, Equatable, Codable {
    public var id: Int
    public var name: String
    public var kind: IntegrationKind
    /// Deliveries must carry a valid HMAC signature (Grafana's `X-Grafana-Alerting-Signature`).
    public var requireSignature: Bool
    /// …made with a timestamp no older than five minutes (so it cannot be replayed later).
    public var requireTimestamp: Bool

    public init(id: Int, name: String, kind: IntegrationKind, requireSignature: Bool, requireTimestamp: Bool = false) {
        self.id = id
        self.name = name
        self.kind = kind
        self.requireSignature = requireSignature
        self.requireTimestamp = requireTimestamp
    }
}

extension Access {
    /// Whether `principal` (nil: anonymous) connecting from loopback or not may call a route.
    public func allows(_ principal: Principal?, fromLoopback: Bool) -> Decision {
        switch self {
        case .everyone:
            return .allow
        case .loopbackOr(let role):
            if fromLoopback { return .allow }
            return Access.role(role).allows(principal, fromLoopback: false)
        case .role(let least):
            switch principal {
            case nil: return .unauthenticated
            case .integration: return .forbidden
            case .user(let user): return user.role >= least ? .allow : .forbidden
            }
        case .ingest(let kinds):
            switch principal {
            case nil: return .unauthenticated
            case .user: return .forbidden
            case .integration(let integration): return kinds.contains(integration.kind) ? .allow : .forbidden
            }
        }
    }

    public enum Decision: Sendable, Equatable {
        case allow
        /// 401: say who you are.
        case unauthenticated
        /// 403: known, but not allowed.
        case forbidden
    }
}

/// Who an audit entry names as having acted.
public struct AuditActor: Sendable, Equatable {
    public var userID: Int?
    public var name: String
    public var remoteAddress: String?

    public init(userID: Int?, name: String, remoteAddress: String?) {
        self.userID = userID
        self.name = name
        self.remoteAddress = remoteAddress
    }

    /// A person acting through the web UI or the API.
    public static func user(_ user: User, from address: String?) -> AuditActor {
        AuditActor(userID: user.id, name: user.username, remoteAddress: address)
    }

    /// An operator at the `handrail` command line (named by their OS login).
    public static func commandLine(osUser: String) -> AuditActor {
        AuditActor(userID: nil, name: "cli:\(osUser)", remoteAddress: nil)
    }

    /// Handrail itself (the first admin at first start).
    public static let system = AuditActor(userID: nil, name: "system", remoteAddress: nil)
}

/// A request that collides with what is stored (a taken username, a live key name): 409.
public struct ConflictError: Error, Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let message: String
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// A personal API token as listed (never the token itself).
public struct APIToken: Sendable, Equatable, Codable {
    public var id: Int
    public var userID: Int
    public var username: String
    public var name: String
    public var displayPrefix: String
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: Int,
        userID: Int,
        username: String,
        name: String,
        displayPrefix: String,
        createdAt: Date,
        expiresAt: Date?,
        lastUsedAt: Date?,
        revokedAt: Date?
    ) {
        self.id = id
        self.userID = userID
        self.username = username
        self.name = name
        self.displayPrefix = displayPrefix
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// An integration key as listed (never the key itself).
public struct IntegrationKeyRecord: Sendable, Equatable, Codable {
    public var id: Int
    public var name: String
    public var kind: IntegrationKind
    public var displayPrefix: String
    public var requireSignature: Bool
    public var requireTimestamp: Bool
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: Int,
        name: String,
        kind: IntegrationKind,
        displayPrefix: String,
        requireSignature: Bool,
        requireTimestamp: Bool = false,
        createdAt: Date,
        lastUsedAt: Date?,
        revokedAt: Date?
    ) {
        self.id = id
        self.name = name
        self.kind = kind
        self.displayPrefix = displayPrefix
        self.requireSignature = requireSignature
        self.requireTimestamp = requireTimestamp
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// One line of the audit log.
public struct AuditEntry: Sendable, Equatable, Codable {
    public var id: Int
    public var at: Date
    public var actor: String
    public var action: String
    public var target: String?
    public var detail: [String: String]
    public var remoteAddress: String?

    public init(id: Int, at: Date, actor: String, action: String, target: String?, detail: [String: String], remoteAddress: String?) {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
        self.remoteAddress = remoteAddress
    }
}
