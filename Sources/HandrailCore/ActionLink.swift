import Crypto
public import Foundation

/// The acknowledge and resolve links in a message to a person: signed with the server's key,
/// for one action on one incident by one person, until they expire. Following one opens a
/// confirmation page that still needs that person signed in; nothing happens by URL alone.
public struct ActionLink: Sendable, Equatable {
    public enum Action: String, Sendable, CaseIterable {
        case acknowledge, resolve
    }

    /// A link in a message works for a day.
    public static let lifetime = 86400

    public let action: Action
    public let incident: Int64
    public let user: String
    /// Unix seconds.
    public let expires: Int

    public init(action: Action, incident: Int64, user: String, expires: Int) {
        self.action = action
        self.incident = incident
        self.user = user
        self.expires = expires
    }

    /// base64url of HMAC-SHA256 over `action:incident:user:expires`.
    public func signature(key: Data) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(action.rawValue):\(incident):\(user):\(expires)".utf8), using: SymmetricKey(data: key))
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The link's path and query (below the public URL).
    public func path(key: Data) -> String {
        let user = self.user.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? self.user
        return "/incidents/\(incident)/confirm?action=\(action.rawValue)&user=\(user)&expires=\(expires)&sig=\(signature(key: key))"
    }

    /// Whether `signature` is this link's, and it has not expired at `now`.
    public func isValid(signature: String, key: Data, now: Date) -> Bool {
        Int(now.timeIntervalSince1970) < expires && Secrets.constantTimeEqual(signature, self.signature(key: key))
    }
}
