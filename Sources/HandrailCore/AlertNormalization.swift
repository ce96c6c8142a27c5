public import Foundation

/// Whether an alert is firing or has cleared.
public enum AlertStatus: String, Sendable, Codable {
    case firing, resolved
}

/// One alert from any source, in one shape: what ingestion stores and groups.
public struct NormalizedAlert: Sendable, Equatable, Codable {
    public var source: IntegrationKind
    /// The alert's identity within its integration: Alertmanager's and Grafana's
    /// `fingerprint`, PagerDuty's and the generic format's `dedup_key`.
    public var fingerprint: String
    /// This alert's own status — never the group's.
    public var status: AlertStatus
    public var labels: [String: String]
    public var annotations: [String: String]
    public var startsAt: Date?
    /// `nil` means "no end" (Alertmanager's `0001-01-01T00:00:00Z`).
    public var endsAt: Date?
    /// The value a runbook's thresholds compare with, when the source sent one.
    public var value: Double?
    /// Every value Grafana sent (`values`), by reference id.
    public var values: [String: Double]
    public var generatorURL: String?
    /// Grafana's dashboard, panel and silence links, PagerDuty's links.
    public var links: [String: String]

    public init(
        source: IntegrationKind,
        fingerprint: String,
        status: AlertStatus,
        labels: [String: String],
        annotations: [String: String] = [:],
        startsAt: Date? = nil,
        endsAt: Date? = nil,
        value: Double? = nil,
        values: [String: Double] = [:],
        generatorURL: String? = nil,
        links: [String: String] = [:]
    ) {
        self.source = source
        self.fingerprint = fingerprint
        self.status = status
        self.labels = labels
        self.annotations = annotations
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.value = value
        self.values = values
        self.generatorURL = generatorURL
        self.links = links
    }
}

/// A delivery's alerts and what the source said about the delivery itself.
public struct AlertBatch: Sendable, Equatable {
    public var alerts: [NormalizedAlert]
    /// Alerts the sender left out (Alertmanager's `max_alerts`): logged and recorded.
    public var truncatedAlerts: Int
    public var receiver: String?
    public var groupKey: String?
}

/// Turns source payloads into `NormalizedAlert`s, naming the field at fault when it cannot.
public enum AlertNormalizer {
    // `alertmanager(_:source:)` is in AlertmanagerReader.swift: it reads the bytes directly.

    /// Handrail's own JSON format (`POST /api/v1/alerts/generic`), for senders that speak
    /// none of the others: one alert object, or `{"alerts": [...]}`. Each alert needs a
    /// `dedup_key` and an `alertname` (top level or in `labels`); see openapi.yaml.
    public static func generic(_ body: Data) throws(ValidationError) -> AlertBatch {
        let root = try object(try json(body), "body")
        var items: [(JSONValue, String)] = []
        if let list = root["alerts"] {
            guard case .array(let alerts) = list else { throw ValidationError(field: "alerts", message: "must be a list") }
            if alerts.isEmpty { throw ValidationError(field: "alerts", message: "must hold at least one alert") }
            try AlertLimits.count(alerts.count)
            items = alerts.enumerated().map { ($1, "alerts[\($0)].") }
        } else {
            items = [(.object(root), "")]
        }
        var normalized: [NormalizedAlert] = []
        for (item, prefix) in items {
            let alert = try object(item, prefix.isEmpty ? "body" : String(prefix.dropLast()))
            guard let key = alert["dedup_key"] else { throw ValidationError(field: prefix + "dedup_key", message: "is required") }
            guard case .string(let dedupKey) = key else { throw ValidationError(field: prefix + "dedup_key", message: "must be a string") }
            let trimmedKey = dedupKey.trimmingCharacters(in: .whitespaces)
            guard (1...255).contains(trimmedKey.count) else {
                throw ValidationError(field: prefix + "dedup_key", message: "must be 1 to 255 characters")
            }
            var status = AlertStatus.firing
            if let value = alert["status"], value != .null {
                guard case .string(let text) = value, let parsed = AlertStatus(rawValue: text.lowercased()) else {
                    throw ValidationError(field: prefix + "status", message: "must be firing or resolved")
                }
                status = parsed
            }
            var labels = try strings(alert["labels"], prefix + "labels", required: false)
            var annotations = try strings(alert["annotations"], prefix + "annotations", required: false)
            for field in ["alertname", "severity", "service"] {
                guard let value = alert[field], value != .null else { continue }
                guard case .string(let text) = value else { throw ValidationError(field: prefix + field, message: "must be a string") }
                labels[field] = text
            }
            for field in ["summary", "description"] {
                guard let value = alert[field], value != .null else { continue }
                guard case .string(let text) = value else { throw ValidationError(field: prefix + field, message: "must be a string") }
                annotations[field] = text
            }
            guard let alertname = labels["alertname"], !alertname.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError(field: prefix + "alertname", message: "is required (top level or in labels)")
            }
            var value: Double?
            if let raw = alert["value"], raw != .null {
                guard case .number(let number) = raw, number.isFinite else {
                    throw ValidationError(field: prefix + "value", message: "must be a number")
                }
                value = number
            }
            let links = try strings(alert["links"], prefix + "links", required: false)
            normalized.append(
                NormalizedAlert(
                    source: .generic,
                    fingerprint: trimmedKey,
                    status: status,
                    labels: labels,
                    annotations: annotations,
                    startsAt: try date(alert["starts_at"], prefix + "starts_at"),
                    endsAt: try date(alert["ends_at"], prefix + "ends_at"),
                    value: value ?? primaryValue(values: [:], labels: labels, annotations: annotations),
                    links: links
                )
            )
        }
        let batch = AlertBatch(alerts: normalized, truncatedAlerts: 0, receiver: nil, groupKey: nil)
        try AlertLimits.check(batch) { n, part in
            // The generic format names top-level alertname, severity and service (labels too).
            AlertLimits.webhookName(part, prefix: items[n].1, fingerprint: "dedup_key")
        }
        return batch
    }

    /// The value thresholds compare with: a `value` label or annotation; else, of Grafana's
    /// `values`, the first (by reference id) that is not a 0/1 condition result; else the first.
    static func primaryValue(values: [String: Double], labels: [String: String], annotations: [String: String]) -> Double? {
        if let text = labels["value"] ?? annotations["value"], let v = Double(text) { return v }
        let sorted = values.sorted { $0.key < $1.key }
        return sorted.first { $0.value != 0 && $0.value != 1 }?.value ?? sorted.first?.value
    }

    /// Alertmanager's own fingerprint is a hash of the label set; when a sender leaves it
    /// out, a hash of the sorted labels stands in, stable across deliveries.
    static func fingerprint(_ labels: [String: String]) -> String {
        let canonical = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1F}")
        return String(Digest.sha256Hex(canonical).prefix(16))
    }

    // MARK: - JSON helpers (each names the field at fault)

    static func json(_ body: Data) throws(ValidationError) -> JSONValue {
        do {
            return try JSONParser.parse(body)
        } catch {
            throw ValidationError(field: "body", message: "is not valid JSON (or nested deeper than \(JSONParser.maxDepth) levels)")
        }
    }

    static func object(_ value: JSONValue?, _ field: String) throws(ValidationError) -> [String: JSONValue] {
        guard case .object(let object) = value else { throw ValidationError(field: field, message: "must be a JSON object") }
        return object
    }

    static func text(_ value: JSONValue?) -> String? {
        if case .string(let s) = value { return s }
        return nil
    }

    static func strings(_ value: JSONValue?, _ field: String, required: Bool) throws(ValidationError) -> [String: String] {
        guard let value, value != .null else {
            if required { throw ValidationError(field: field, message: "is required") }
            return [:]
        }
        let object = try object(value, field)
        var result: [String: String] = [:]
        result.reserveCapacity(object.count)
        for (key, v) in object {
            guard case .string(let s) = v else { throw ValidationError(field: "\(field).\(key)", message: "must be a string") }
            result[key] = s
        }
        return result
    }

    /// An RFC 3339 time given by a person (a query parameter).
    public static func parseTime(_ text: String, _ field: String) throws(ValidationError) -> Date {
        guard let date = try date(text, field) else { throw ValidationError(field: field, message: "must be an RFC 3339 time") }
        return date
    }

    static func date(_ value: JSONValue?, _ field: @autoclosure () -> String) throws(ValidationError) -> Date? {
        guard let value, value != .null else { return nil }
        guard case .string(let text) = value else { throw ValidationError(field: field(), message: "must be an RFC 3339 time") }
        return try date(text, field())
    }

    /// RFC 3339 with or without fractions; Alertmanager's zero time (year 1) means none.
    static func date(_ text: String, _ field: @autoclosure () -> String) throws(ValidationError) -> Date? {
        if text.isEmpty { return nil }
        guard let date = RFC3339.parse(text) else {
            throw ValidationError(field: field(), message: "must be an RFC 3339 time, not \(text.prefix(40).debugDescription)")
        }
        return noneIfZero(date)
    }

    /// Alertmanager's zero time (year 1, `0001-01-01T00:00:00Z`) means "none"; so does any
    /// time before 1970.
    static func noneIfZero(_ date: Date) -> Date? {
        date.timeIntervalSince1970 < 0 ? nil : date
    }
}
