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
    public static func parse(
        _ body: Data,
        now: Date = Date(),
        newDedupKey: () -> String = { UUID().uuidString.lowercased() }
    ) throws(Invalid) -> PagerDutyEvent {
        try parse(json: try? JSONParser.parse(body), now: now, newDedupKey: newDedupKey)
    }

    /// The same, from a body already parsed (nil: it was not JSON).
    public static func parse(
        json: JSONValue?,
        now: Date = Date(),
        newDedupKey: () -> String = { UUID().uuidString.lowercased() }
    ) throws(Invalid) -> PagerDutyEvent {
        guard case .object(let object) = json else { throw Invalid(errors: ["Event object is not valid JSON"]) }
        var errors: [String] = []
        let routingKey = object["routing_key"]?.stringValue ?? ""
        if routingKey.count != 32 { errors.append("Length of 'routing_key' is incorrect (should be 32 characters)") }
        let action = object["event_action"]?.stringValue.flatMap(Action.init(rawValue:))
        if action == nil { errors.append("'event_action' is missing or invalid (should be trigger, acknowledge or resolve)") }
        var dedupKey = object["dedup_key"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        if let key = dedupKey, key.count > 255 { errors.append("'dedup_key' is too long (maximum 255 characters)") }
        if let action, action != .trigger, dedupKey == nil { errors.append("'dedup_key' is required for \(action.rawValue) events") }

        var alert: NormalizedAlert?
        if action == .trigger {
            var payload: [String: JSONValue]?
            if case .object(let p) = object["payload"] { payload = p }
            if payload == nil { errors.append("'payload' is missing or not an object") }
            let summary = payload?["summary"]?.stringValue ?? ""
            let source = payload?["source"]?.stringValue ?? ""
            let severity = payload?["severity"]?.stringValue ?? ""
            if payload != nil {
                if summary.isEmpty { errors.append("'payload.summary' is missing or blank") }
                if summary.count > 1024 { errors.append("'payload.summary' is too long (maximum 1024 characters)") }
                if source.isEmpty { errors.append("'payload.source' is missing or blank") }
                if !severities.contains(severity) { errors.append("'payload.severity' is invalid (should be critical, error, warning or info)") }
            }
            var startsAt: Date?
            if let text = payload?["timestamp"]?.stringValue {
                do { startsAt = try AlertNormalizer.date(text, "payload.timestamp") } catch {
                    errors.append("'payload.timestamp' is not a valid ISO 8601 time")
                }
            }
            if errors.isEmpty, let payload {
                let key = dedupKey ?? newDedupKey()
                dedupKey = key
                var labels = [
                    "alertname": payload["class"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? summary, "source": source,
                    "severity": severity == "error" ? "critical" : severity,
                ]
                for name in ["component", "group", "class"] {
                    if let value = payload[name]?.stringValue, !value.isEmpty { labels[name] = value }
                }
                var annotations = ["summary": summary]
                var value: Double?
                if case .object(let details) = payload["custom_details"] {
                    for (k, v) in details { annotations[k] = text(v) }
                    switch details["value"] {
                    case .number(let n): value = n
                    case .string(let s): value = Double(s)
                    default: break
                    }
                }
                var links: [String: String] = [:]
                if let url = object["client_url"]?.stringValue { links["client_url"] = url }
                if case .array(let items) = object["links"] {
                    for (i, link) in items.enumerated() {
                        if let href = link["href"]?.stringValue { links["link\(i)"] = href }
                    }
                }
                let made = NormalizedAlert(
                    source: .pagerduty,
                    fingerprint: key,
                    status: .firing,
                    labels: labels,
                    annotations: annotations,
                    startsAt: startsAt ?? now,
                    value: value?.isFinite == true ? value : nil,
                    links: links
                )
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

    /// A custom detail as annotation text: strings as they are, other values as compact JSON.
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return s
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .array, .object:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
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
