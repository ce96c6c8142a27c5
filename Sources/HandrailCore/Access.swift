/// What a person may do, from least to most. Each role can do what the roles before it can.
public enum Role: String, CaseIterable, Comparable, Sendable, Codable {
    case viewer, responder, lead, manager, admin

    public static func < (a: Role, b: Role) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses a role name, with an error that lists the valid ones.
    public static func parse(_ text: String, field: String = "role") throws(ValidationError) -> Role {
        guard let role = Role(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return role
    }
}

/// The source format an integration key sends alerts in; `canary` is a canary
/// controller's key (Flagger's webhooks, Argo Rollouts' web metric), which asks gates.
public enum IntegrationKind: String, CaseIterable, Sendable, Codable {
    case alertmanager, grafana, pagerduty, generic, canary

    public static func parse(_ text: String, field: String = "kind") throws(ValidationError) -> IntegrationKind {
        guard let kind = IntegrationKind(rawValue: text.lowercased()) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return kind
    }
}

/// Who may call a route. Every route declares one; nothing is reachable by default.
public enum Access: Sendable, Hashable, CustomStringConvertible {
    /// Anyone, signed in or not (health checks, the login page, the API description).
    case everyone
    /// A signed-in person with at least this role (session cookie or API token).
    case role(Role)
    /// An alert source's integration key of one of these kinds, and nothing else.
    case ingest(Set<IntegrationKind>)
    /// Anyone connecting from this machine; others need at least this role
    /// (the `/metrics` default: scrapers on loopback need no credentials).
    case loopbackOr(Role)

    public var description: String {
        switch self {
        case .everyone: "everyone"
        case .role(let role): "\(role.rawValue) and up"
        case .ingest(let kinds): "integration keys (\(kinds.map(\.rawValue).sorted().joined(separator: ", ")))"
        case .loopbackOr(let role): "loopback, or \(role.rawValue) and up"
        }
    }
}

/// A problem with one field of a request, said so that a person can fix it.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field at fault, as the client named it (`username`, `labels.alertname`, …).
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}
