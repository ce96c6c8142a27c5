/// What one delivery and one alert may hold, from any source. Past a limit the delivery is
/// refused with 400 naming the field (senders do not retry 4xx), before anything is stored:
/// PostgreSQL cannot index a value past about 2.7 KB or store a NUL character, and a sender
/// that retries a 5xx for ever would block its whole group.
public enum AlertLimits {
    /// Alerts in one delivery. Alertmanager's `max_alerts: 1000` on the webhook makes it
    /// truncate larger groups itself (the count it left out is recorded).
    public static let alertsPerDelivery = 1_000
    /// An alert's identity: Alertmanager's `fingerprint`, a `dedup_key`.
    public static let fingerprint = 255
    public static let labelsPerAlert = 128
    public static let labelName = 256
    public static let labelValue = 1_024
    public static let annotationsPerAlert = 128
    public static let annotationValue = 16_384
    /// `generatorURL` and each link.
    public static let url = 4_096
    /// A delivery's `receiver` and `groupKey`.
    public static let deliveryField = 4_096

    /// The parts of an alert, for naming them as the sender did.
    public enum Part: Sendable {
        case fingerprint
        case labels
        case label(String)
        case annotations
        case annotation(String)
        case generatorURL
        case link(String)
        case value(String)
    }

    /// How Alertmanager, Grafana and the generic format name an alert's parts.
    public static func webhookName(_ part: Part, prefix: String, fingerprint: String = "fingerprint") -> String {
        switch part {
        case .fingerprint: prefix + fingerprint
        case .labels: prefix + "labels"
        case .label(let name): prefix + "labels." + name.prefix(40)
        case .annotations: prefix + "annotations"
        case .annotation(let name): prefix + "annotations." + name.prefix(40)
        case .generatorURL: prefix + "generatorURL"
        case .link(let name): prefix + "links." + name.prefix(40)
        case .value(let name): prefix + "values." + name.prefix(40)
        }
    }

    /// Checks a delivery: its size, its own fields and each alert.
    /// - Parameter name: how the sender names part of alert `n` (for example `alerts[3].labels.service`).
    public static func check(_ batch: AlertBatch, name: (Int, Part) -> String) throws(ValidationError) {
        try count(batch.alerts.count)
        try text(batch.receiver, deliveryField, "receiver")
        try text(batch.groupKey, deliveryField, "groupKey")
        for (n, alert) in batch.alerts.enumerated() { try check(alert) { name(n, $0) } }
    }

    /// Refuses a delivery of more than `alertsPerDelivery` alerts (checked before reading them).
    public static func count(_ n: Int) throws(ValidationError) {
        if n > alertsPerDelivery {
            throw ValidationError(
                field: "alerts",
                message:
                    "holds \(n) alerts; at most \(alertsPerDelivery) per delivery (Alertmanager: set max_alerts: \(alertsPerDelivery) on the webhook)"
            )
        }
    }

    /// Checks one alert against every limit and for NUL characters.
    public static func check(_ a: NormalizedAlert, name: (Part) -> String) throws(ValidationError) {
        if a.fingerprint.isEmpty { throw ValidationError(field: name(.fingerprint), message: "must not be empty") }
        try text(a.fingerprint, fingerprint, name(.fingerprint))
        if a.labels.count > labelsPerAlert { throw ValidationError(field: name(.labels), message: "must hold at most \(labelsPerAlert) labels") }
        for (key, value) in a.labels {
            try text(key, labelName, name(.label(key)), what: "name")
            try text(value, labelValue, name(.label(key)))
        }
        if a.annotations.count > annotationsPerAlert {
            throw ValidationError(field: name(.annotations), message: "must hold at most \(annotationsPerAlert) annotations")
        }
        for (key, value) in a.annotations {
            try text(key, labelName, name(.annotation(key)), what: "name")
            try text(value, annotationValue, name(.annotation(key)))
        }
        try text(a.generatorURL, url, name(.generatorURL))
        if a.values.count > labelsPerAlert { throw ValidationError(field: name(.value("")), message: "must hold at most \(labelsPerAlert) values") }
        for key in a.values.keys { try text(key, labelName, name(.value(key)), what: "name") }
        for (key, value) in a.links {
            try text(key, labelName, name(.link(key)), what: "name")
            try text(value, url, name(.link(key)))
        }
    }

    /// A text stored as is: at most `limit` characters, no NUL.
    public static func text(_ value: String?, _ limit: Int, _ field: @autoclosure () -> String, what: String = "") throws(ValidationError) {
        guard let value else { return }
        let subject = what.isEmpty ? "" : "its \(what) "
        // Characters never outnumber UTF-8 bytes: counting them is needed only past the limit in bytes.
        if value.utf8.count > limit, value.count > limit {
            throw ValidationError(field: field(), message: "\(subject)must be at most \(limit) characters (it has \(value.count))")
        }
        if value.utf8.contains(0) { throw ValidationError(field: field(), message: "\(subject)must not contain NUL characters (\\u0000)") }
    }
}
