public import Foundation

/// An event in PagerDuty's Events API v2 format (`POST /v2/enqueue`).
public struct PagerDutyEvent: Sendable, Equatable {
    public enum Action: String, Sendable {
        case trigger, acknowledge, resolve
    }

    public let action: Action
    public let routingKey: String
    /// The caller's, or one generated for a trigger without it (as PagerDuty does).
    public let dedupKey: String
    /// For triggers: the alert the event describes.
    public let alert: NormalizedAlert?

    /// The answer PagerDuty gives to a bad event: `400 {"status": "invalid event", "message": …, "errors": […]}`.
    public struct Invalid: Error, Sendable, Equatable {
        public let errors: [String]
        public var message: String { "Event object is invalid" }
    }

    static let severities = ["critical", "error", "warning", "info"]

    /// Parses and validates an event, collecting every problem as PagerDuty lists them.
    /// - Parameter newDedupKey: makes the key for a trigger that has none.
    public static func parse(_ body: Data, now: Date = Date(), newDedupKey: () -> String = { UUID().uuidString.lowercased() }) throws(Invalid) -> PagerDutyEvent {
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw Invalid(errors: ["Event object is not valid JSON"])
        }
        var errors: [String] = []
        let routingKey = object["routing_key"] as? String ?? ""
        if routingKey.count != 32 { errors.append("Length of 'routing_key' is incorrect (should be 32 characters)") }
        let action = (object["event_action"] as? String).flatMap(Action.init(rawValue:))
        if action == nil { errors.append("'event_action' is missing or invalid (should be trigger, acknowledge or resolve)") }
        var dedupKey = (object["dedup_key"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        if let key = dedupKey, key.count > 255 { errors.append("'dedup_key' is too long (maximum 255 characters)") }
        if action != nil && action != .trigger && dedupKey == nil { errors.append("'dedup_key' is required for \(action!.rawValue) events") }

        var alert: NormalizedAlert?
        if action == .trigger {
            let payload = object["payload"] as? [String: Any]
            if payload == nil { errors.append("'payload' is missing or not an object") }
            let summary = payload?["summary"] as? String ?? ""
            let source = payload?["source"] as? String ?? ""
            let severity = payload?["severity"] as? String ?? ""
            if payload != nil {
                if summary.isEmpty { errors.append("'payload.summary' is missing or blank") }
                if summary.count > 1024 { errors.append("'payload.summary' is too long (maximum 1024 characters)") }
                if source.isEmpty { errors.append("'payload.source' is missing or blank") }
                if !severities.contains(severity) { errors.append("'payload.severity' is invalid (should be critical, error, warning or info)") }
            }
            var startsAt: Date?
            if let text = payload?["timestamp"] as? String {
                do { startsAt = try AlertNormalizer.date(text, "payload.timestamp") } catch { errors.append("'payload.timestamp' is not a valid ISO 8601 time") }
            }
            if errors.isEmpty, let payload {
                let key = dedupKey ?? newDedupKey()
                dedupKey = key
                var labels = ["alertname": (payload["class"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? summary, "source": source,
                              "severity": severity == "error" ? "critical" : severity]
                for name in ["component", "group", "class"] {
                    if let value = payload[name] as? String, !value.isEmpty { labels[name] = value }
                }
                var annotations = ["summary": summary]
                var value: Double?
                if let details = payload["custom_details"] as? [String: Any] {
                    for (k, v) in details {
                        if let s = v as? String { annotations[k] = s }
                        else if let n = v as? NSNumber { annotations[k] = n.stringValue }
                        else if let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) { annotations[k] = String(decoding: data, as: UTF8.self) }
                    }
                    value = (details["value"] as? NSNumber)?.doubleValue ?? (details["value"] as? String).flatMap(Double.init)
                }
                var links: [String: String] = [:]
                if let url = object["client_url"] as? String { links["client_url"] = url }
                for (i, link) in ((object["links"] as? [[String: Any]]) ?? []).enumerated() {
                    if let href = link["href"] as? String { links["link\(i)"] = href }
                }
                let made = NormalizedAlert(
                    source: .pagerduty, fingerprint: key, status: .firing, labels: labels, annotations: annotations,
                    startsAt: startsAt ?? now, value: value, links: links)
                do {
                    try AlertLimits.check(made, name: fieldName)
                    alert = made
                } catch {
                    errors.append("'\(error.field)' \(error.message)")
                }
            }
        }
        if action != .trigger, let key = dedupKey {
            do { try AlertLimits.text(key, AlertLimits.fingerprint, "dedup_key") } catch { errors.append("'dedup_key' \(error.message)") }
        }
        guard errors.isEmpty, let action, let dedupKey else { throw Invalid(errors: errors) }
        return PagerDutyEvent(action: action, routingKey: routingKey, dedupKey: dedupKey, alert: alert)
    }

    /// Where each part of the alert came from in the event.
    static func fieldName(_ part: AlertLimits.Part) -> String {
        switch part {
        case .fingerprint: "dedup_key"
        case .labels: "payload"
        case .label("alertname"): "payload.class"
        case .label(let name): "payload.\(name.prefix(40))"
        case .annotations: "payload.custom_details"
        case .annotation("summary"): "payload.summary"
        case .annotation(let name): "payload.custom_details.\(name.prefix(40))"
        case .generatorURL, .link: "links"
        case .value: "payload.custom_details"
        }
    }
}
