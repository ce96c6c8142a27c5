import Foundation
import HandrailCore
import HandrailStore

/// A secret shown once, right after it was made (a token, a key, a first password).
struct ShownSecret: PageModel {
    var label: String
    var value: String
}

/// A choice in a `<select>`.
struct Option: PageModel {
    var value: String
    var selected: Bool
}

/// `admin-users.html`: everyone, with their role and state.
struct UsersPage: PageModel {
    struct Row: PageModel {
        var username: String
        var displayName: String
        var email: String
        var role: String
        var disabled: Bool
        var mustChange: Bool
        /// The visitor: they cannot disable themselves.
        var me: Bool
        var roles: [Option]
    }

    var title = "People"
    var navAdmin = true
    var users: [Row]
    /// The roles a new person may get; responder preselected.
    var roles: [Option]
    var secret: ShownSecret?
    var error: String?

    init(_ users: [User], me: String?, secret: ShownSecret?, error: String?) {
        self.users = users.map { u in
            Row(
                username: u.username,
                displayName: u.displayName,
                email: u.email ?? "",
                role: u.role.rawValue,
                disabled: u.disabled,
                mustChange: u.mustChangePassword,
                me: u.username == me,
                roles: Role.allCases.map { Option(value: $0.rawValue, selected: $0 == u.role) }
            )
        }
        roles = Role.allCases.map { Option(value: $0.rawValue, selected: $0 == .responder) }
        self.secret = secret
        self.error = error
    }
}

/// `admin-integrations.html`: every integration key, without its secret.
struct IntegrationsPage: PageModel {
    struct Row: PageModel {
        var name: String
        var kind: String
        var prefix: String
        var signed: Bool
        var created: String
        var lastUsed: String
        var revoked: String?
    }

    var title = "Integration keys"
    var navAdmin = true
    var integrations: [Row]
    var kinds = IntegrationKind.allCases.map(\.rawValue)
    var secret: ShownSecret?
    var error: String?

    init(_ keys: [IntegrationKeyRecord], secret: ShownSecret?, error: String?) {
        let time = WebController.time
        integrations = keys.map { k in
            Row(
                name: k.name,
                kind: k.kind.rawValue,
                prefix: k.displayPrefix,
                signed: k.requireSignature,
                created: time(k.createdAt),
                lastUsed: k.lastUsedAt.map(time) ?? "never",
                revoked: k.revokedAt.map(time)
            )
        }
        self.secret = secret
        self.error = error
    }
}

/// `account-tokens.html`: the visitor's own API tokens.
struct TokensPage: PageModel {
    struct Row: PageModel {
        var id: Int
        var name: String
        var prefix: String
        var created: String
        var expires: String
        var lastUsed: String
        var revoked: String?
    }

    var title = "Your API tokens"
    var tokens: [Row]
    var navAdmin: Bool
    var secret: ShownSecret?
    var error: String?

    init(_ tokens: [APIToken], user: User, secret: ShownSecret?, error: String?) {
        let time = WebController.time
        self.tokens = tokens.map { t in
            Row(
                id: t.id,
                name: t.name,
                prefix: t.displayPrefix,
                created: time(t.createdAt),
                expires: t.expiresAt.map(time) ?? "never",
                lastUsed: t.lastUsedAt.map(time) ?? "never",
                revoked: t.revokedAt.map(time)
            )
        }
        navAdmin = user.role >= .admin
        self.secret = secret
        self.error = error
    }
}

/// `admin-audit.html`: the newest audit entries, a hundred a page.
struct AuditPage: PageModel {
    struct Row: PageModel {
        var at: String
        var actor: String
        var action: String
        var target: String
        var detail: String
        var address: String
    }

    var title = "Audit log"
    var navAdmin = true
    var entries: [Row]
    var older: String?

    init(_ entries: [AuditEntry], limit: Int) {
        self.entries = entries.map { e in
            Row(
                at: WebController.time(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target ?? "",
                detail: e.detail.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "),
                address: e.remoteAddress ?? ""
            )
        }
        older = entries.count == limit ? entries.last.map { "/admin/audit?before=\($0.id)" } : nil
    }
}
