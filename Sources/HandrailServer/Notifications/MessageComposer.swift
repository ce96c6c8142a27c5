import Foundation
import HandrailCore
import HandrailStore
import Synchronization

/// Makes a notification's payload, once, at its first attempt: the message in the form its
/// destination takes (the generic webhook's JSON, Slack's JSON, or an e-mail's subject and
/// text). Retries send the stored payload unchanged.
struct MessageComposer: Sendable {
    let runbooks: RunbookStore
    let versions = RunbookVersions()
    let linkKey: LinkKey
    /// `HANDRAIL_PUBLIC_URL`, without a trailing slash: links in messages.
    let publicURL: String?

    /// An e-mail's parts as the payload keeps them.
    struct Mail: Codable {
        var subject: String
        var text: String

        init(subject: String, text: String) {
            self.subject = subject
            self.text = text
        }

        init(_ payload: String) {
            self = (try? JSONDecoder().decode(Mail.self, from: Data(payload.utf8))) ?? Mail(subject: "[Handrail]", text: payload)
        }
    }

    func payload(_ n: ClaimedNotification) async throws -> String {
        let message = try await message(n)
        let data: Data
        switch n.kind {
        case .webhook: data = try message.webhookJSON(id: NotificationService.webhookID(n.id), at: n.createdAt)
        case .slack: data = try message.slackJSON()
        case .email: data = try JSONEncoder().encode(Mail(subject: message.subject, text: message.text))
        }
        return String(decoding: data, as: UTF8.self)
    }

    func message(_ n: ClaimedNotification) async throws -> NotificationMessage {
        switch n.event {
        case .test:
            return NotificationMessage(
                type: "test",
                headline: "Handrail test message for \(n.recipient)",
                lines: ["If you can read this, Handrail reaches you here."],
                incident: nil,
                detail: [:],
                url: publicURL
            )
        case .verify:
            let code = n.detail["code"] ?? ""
            return NotificationMessage(
                type: "verify",
                headline: "Your Handrail confirmation code: \(code)",
                lines: ["Enter it on your notifications page to receive notifications at this address. It expires in a day."]
                    + (publicURL.map { ["\($0)/account/notifications"] } ?? []),
                incident: nil,
                detail: ["code": code],
                url: publicURL.map { "\($0)/account/notifications" }
            )
        case .handoff:
            let d = n.detail
            let url = publicURL.flatMap { base in n.handoffID.map { "\(base)/rotations/\(d["rotation"] ?? "")/handoffs/\($0)" } }
            return NotificationMessage(
                type: "handoff.generated",
                headline: "Handoff for \(d["rotation"] ?? "a rotation"): \(d["from"] ?? "") → \(d["to"] ?? "")",
                lines: [
                    "From \(d["outgoing"] ?? "nobody") to \(d["incoming"] ?? "nobody"), who acknowledges it.",
                    "Still open: \(d["still_open"] ?? "0"); opened: \(d["opened"] ?? "0"); resolved: \(d["resolved"] ?? "0").",
                ] + (url.map { ["Read and acknowledge: \($0)"] } ?? []),
                incident: nil,
                detail: d.merging(n.handoffID.map { ["handoff": String($0)] } ?? [:]) { $1 },
                url: url
            )
        default:
            guard let number = n.incidentNumber, let facts = n.facts, let incident = try await summary(number, facts) else {
                return NotificationMessage(
                    type: n.event.rawValue,
                    headline: "Handrail: \(n.event.rawValue)",
                    lines: [],
                    incident: nil,
                    detail: n.detail,
                    url: publicURL
                )
            }
            var message = NotificationMessage.incident(n.event.rawValue, incident, detail: n.eventData.merging(n.detail) { $1 })
            // A person paged about an open incident gets signed acknowledge and resolve links.
            if n.toPerson, let base = publicURL, n.event == .escalation || n.event == .reminder, incident.state != .resolved {
                let key = try await linkKey.key()
                let expires = Int(Date().timeIntervalSince1970) + ActionLink.lifetime
                for action in ActionLink.Action.allCases {
                    let url = base + ActionLink(action: action, incident: number, user: n.recipient, expires: expires).path(key: key)
                    message.lines.append("\(action.rawValue.capitalized): \(url)")
                    message.detail["\(action.rawValue)_url"] = url
                }
            }
            return message
        }
    }

    /// What a message says about an incident, as it was when the message was claimed (its
    /// facts came with the claim), and the pinned runbook version from `versions` (a version
    /// never changes). A storm of 1,000 incidents drained in 12.3 s with the incident page's
    /// full read (five statements and a runbook decoded per message); see ARCHITECTURE.
    func summary(_ number: Int64, _ f: NotificationStore.IncidentFacts) async throws -> NotificationIncident? {
        var runbook: Runbook?
        if let id = f.runbookID, let version = f.runbookVersion {
            runbook = try await versions.runbook(id: id, version: version, store: runbooks)
        }
        let threshold = f.value.flatMap { value in runbook.flatMap { Self.rule(value: value, labels: f.labels, $0.thresholds) } }
        let next = runbook?.steps.first { !f.markedSteps.contains($0.index) }
        return NotificationIncident(
            number: number,
            title: f.title,
            severity: f.severity,
            state: f.state,
            owner: f.owner,
            value: f.value,
            threshold: threshold,
            nextStep: next.map { "\($0.index). \(Placeholders.fillText($0.title, labels: f.labels))" },
            url: publicURL.map { "\($0)/incidents/\(number)" }
        )
    }

    /// The runbook's threshold the value is read against: `critical at 0.25 (higher is worse)`.
    static func rule(value: Double, labels: [String: String], _ thresholds: [Threshold]) -> String? {
        guard let t = Threshold.applicable(thresholds, labels: labels) else {
            return nil
        }
        let limits = [
            t.warning.map { "warning at \(NumberText.plain($0))" }, t.critical.map { "critical at \(NumberText.plain($0))" },
        ]
        .compactMap { $0 }
        return "\(t.metric): \(limits.joined(separator: ", ")) (\(t.direction == .higher ? "higher" : "lower") is worse)"
    }
}

/// Runbook versions by id and number, read once: a synced version never changes.
final class RunbookVersions: Sendable {
    private let cache = Mutex<[String: Runbook]>([:])

    func runbook(id: String, version: Int, store: RunbookStore) async throws -> Runbook? {
        let key = "\(id)@\(version)"
        if let known = cache.withLock({ $0[key] }) { return known }
        guard let read = try await store.version(id: id, version)?.runbook else { return nil }
        cache.withLock { $0[key] = read }
        return read
    }
}

/// The key that signs action links (`server_secrets`), read once per process.
final class LinkKey: Sendable {
    let store: NotificationStore
    private let cached = Mutex<Data?>(nil)

    init(store: NotificationStore) { self.store = store }

    func key() async throws -> Data {
        if let known = cached.withLock({ $0 }) { return known }
        let read = try await store.serverKey("action_links")
        cached.withLock { $0 = read }
        return read
    }
}
