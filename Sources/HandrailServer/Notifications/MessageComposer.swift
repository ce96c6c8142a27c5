import Foundation
import HandrailCore
import HandrailStore

/// Makes a notification's payload, once, at its first attempt: the message in the form its
/// destination takes (the generic webhook's JSON, Slack's JSON, or an e-mail's subject and
/// text). Retries send the stored payload unchanged.
struct MessageComposer: Sendable {
    let incidents: IncidentStore
    let runbooks: RunbookStore
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
            guard let number = n.incidentNumber, let incident = try await summary(number) else {
                return NotificationMessage(
                    type: n.event.rawValue,
                    headline: "Handrail: \(n.event.rawValue)",
                    lines: [],
                    incident: nil,
                    detail: n.detail,
                    url: publicURL
                )
            }
            return NotificationMessage.incident(n.event.rawValue, incident, detail: n.eventData.merging(n.detail) { $1 })
        }
    }

    /// What a message says about an incident, as it is now.
    func summary(_ number: Int64) async throws -> NotificationIncident? {
        guard let d = try await incidents.detail(number: number) else { return nil }
        let alert = d.alerts.first { $0.status == .firing } ?? d.alerts.first
        var threshold: String?
        if let r = d.runbook, let value = alert?.value, let pinned = try await runbooks.version(id: r.id, r.version) {
            threshold = Self.rule(value: value, labels: alert?.labels ?? d.incident.labels, pinned.runbook.thresholds)
        }
        let next = d.steps.first { $0.outcome == nil || $0.outcome == .undone }
        return NotificationIncident(
            number: number,
            title: d.incident.title,
            severity: d.incident.severity,
            state: d.incident.state,
            owner: d.incident.owner,
            value: alert?.value,
            threshold: threshold,
            nextStep: next.map { "\($0.index). \($0.title)" },
            url: publicURL.map { "\($0)/incidents/\(number)" }
        )
    }

    /// The runbook's threshold the value is read against: `critical at 0.25 (higher is worse)`.
    static func rule(value: Double, labels: [String: String], _ thresholds: [Threshold]) -> String? {
        guard let t = thresholds.first(where: { $0.metric == labels["metric"] }) ?? (thresholds.count == 1 ? thresholds.first : nil) else {
            return nil
        }
        let limits = [
            t.warning.map { "warning at \(NotificationMessage.number($0))" }, t.critical.map { "critical at \(NotificationMessage.number($0))" },
        ]
        .compactMap { $0 }
        return "\(t.metric): \(limits.joined(separator: ", ")) (\(t.direction == .higher ? "higher" : "lower") is worse)"
    }
}
