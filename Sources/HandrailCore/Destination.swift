import Foundation

/// How a message travels: e-mail (the machine's sendmail), a generic webhook (signed, see
/// `StandardWebhook`), or a Slack-compatible incoming webhook (Mattermost and Rocket.Chat
/// take the same JSON).
public enum DestinationKind: String, Sendable, Codable, CaseIterable {
    case email, webhook, slack
}

/// What a notification is about: an incident's event (the outbox's writer, migration 0011),
/// an escalation step or reminder, a scheduled handoff, a test, or an e-mail's code.
public enum NotificationEvent: String, Sendable, Codable, CaseIterable {
    case opened, acknowledged, mitigated, resolved, reopened
    case ownerChanged = "owner_changed"
    case decisionRecorded = "decision_recorded"
    case escalation, reminder, handoff, test, verify
}

/// Where a notification stands: waiting (or retrying), delivered, or failed for good.
public enum NotificationState: String, Sendable, Codable, CaseIterable {
    case pending, delivered, failed
}

/// A pending row of an incident's chain: its next step, or the next reminder to its owner.
public enum EscalationKind: String, Sendable, Codable, CaseIterable {
    case step, reminder
}

/// A destination as given by a person, checked: an e-mail address, or an http(s) URL.
public struct Destination: Sendable, Equatable {
    public let kind: DestinationKind
    public let address: String
    /// What pages and answers show after creation: the e-mail address, or a URL's scheme and
    /// host and the last four characters (webhook URLs are secrets).
    public let hint: String

    /// - Throws: `ValidationError` naming `field` when the address is not one `kind` takes.
    public init(kind: DestinationKind, address raw: String, field: String = "address") throws(ValidationError) {
        let address = raw.trimmingCharacters(in: .whitespaces)
        self.kind = kind
        self.address = address
        switch kind {
        case .email:
            guard Self.isEmail(address) else { throw ValidationError(field: field, message: "must be an e-mail address such as ana@example.com") }
            hint = address
        case .webhook, .slack:
            guard address.utf8.count <= 2000 else { throw ValidationError(field: field, message: "must be at most 2000 characters") }
            guard let url = URLComponents(string: address), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                let host = url.host, !host.isEmpty
            else { throw ValidationError(field: field, message: "must be an http:// or https:// URL") }
            guard url.user == nil, url.password == nil else {
                throw ValidationError(field: field, message: "must not carry a user name or password (use the secret Handrail signs with)")
            }
            guard !address.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else {
                throw ValidationError(field: field, message: "must not contain spaces or control characters")
            }
            let port = url.port.map { ":\($0)" } ?? ""
            hint = "\(scheme)://\(host)\(port)/…\(address.suffix(4))"
        }
    }

    /// One `@`, no spaces, quotes, brackets or control characters, and a domain with a dot;
    /// at most 254 characters. (What a header and sendmail can carry safely, not all of RFC 5322.)
    static func isEmail(_ text: String) -> Bool {
        guard text.utf8.count <= 254 else { return false }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            !text.hasPrefix("-")
        else { return false }
        return !text.unicodeScalars.contains { s in s.value <= 0x20 || s.value == 0x7F || "<>()[]\\,;:\"".unicodeScalars.contains(s) }
    }
}

/// Where outgoing requests may go. Loopback, link-local (cloud metadata), private,
/// shared, unique-local, multicast and unspecified addresses are refused unless an
/// administrator allows them (`HANDRAIL_WEBHOOK_ALLOW`): a webhook must not be a way into
/// the network Handrail runs in.
public enum OutboundAddress {
    public static let refused: [(range: AddressRange, name: String)] = [
        ("0.0.0.0/8", "this network"), ("127.0.0.0/8", "loopback"), ("::1/128", "loopback"), ("::/128", "unspecified"),
        ("169.254.0.0/16", "link-local (cloud metadata)"), ("fe80::/10", "link-local"),
        ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"), ("fc00::/7", "unique-local"),
        ("224.0.0.0/4", "multicast"), ("ff00::/8", "multicast"), ("240.0.0.0/4", "reserved"),
    ].compactMap { text, name in AddressRange(text).map { ($0, name) } }

    /// Why `address` is refused (`"loopback"`, …); nil when it may be reached.
    public static func refusal(_ address: IPAddress, allow: [AddressRange]) -> String? {
        if allow.contains(where: { $0.contains(address) }) { return nil }
        return refused.first { $0.range.contains(address) }?.name
    }
}
