public import Foundation

/// Reads an Alertmanager (or Grafana) webhook body straight into `NormalizedAlert`s, without
/// building a tree first: labels and annotations go from the bytes into their
/// `[String: String]` at once, and keys Handrail does not read (`groupLabels`,
/// `commonLabels`, …) are parsed and dropped. Reading is most of the server's own CPU per
/// delivery: 26 µs for a 10-alert group, where `JSONDecoder` takes 111 µs
/// (`handrail-bench bench-parse`).
///
/// The whole body is checked as JSON first (a syntax error anywhere wins), then in a fixed
/// order — `alerts` present and a list, then per alert: an object, `status`, `labels` (and
/// `alertname`), `annotations`, `values`, `startsAt`, `endsAt` — and the first failing one is
/// reported.
struct AlertmanagerReader {
    var r: JSONParser.Reader

    /// A label or annotation set as read: absent (missing or null), not an object, or a
    /// map with the first key whose value was not a string (or number, for `values`).
    enum Map<Value> {
        case absent
        case notObject
        case map([String: Value], badKey: String?)
    }

    /// One alert's fields, read in any order, checked afterwards in the fixed order.
    struct RawAlert {
        var isObject = true
        var status: JSONValue?
        var labels: Map<String> = .absent
        var annotations: Map<String> = .absent
        var values: Map<Double> = .absent
        var startsAt: Time = .absent
        var endsAt: Time = .absent
        var fingerprint: JSONValue?
        var generatorURL: JSONValue?
        var links: [String: String] = [:]
    }

    /// `startsAt` or `endsAt` as read: parsed straight from the bytes when it is a plain
    /// string (no `String` made: these were a fifth of a body's allocations), else the value.
    enum Time {
        case absent
        case time(Date?)
        case other(JSONValue)
    }

    struct Root {
        var isObject = true
        var alertsSeen = false
        var alertsIsList = false
        var alerts: [RawAlert] = []
        var truncated: JSONValue?
        var receiver: JSONValue?
        var groupKey: JSONValue?
    }

    init(_ body: Data) {
        r = JSONParser.Reader(bytes: [UInt8](body))
    }

    /// Parses the whole body; throws only for JSON that is not well formed (or too deep).
    mutating func read() throws(JSONParser.Failure) -> Root {
        var root = Root()
        r.skipSpace()
        guard r.i < r.bytes.count else { throw JSONParser.Failure(offset: r.i) }
        if r.bytes[r.i] != 0x7B {
            _ = try r.value(depth: 0)
            root.isObject = false
        } else {
            try object(depth: 0) { (reader: inout AlertmanagerReader, key: String) throws(JSONParser.Failure) in
                switch key {
                case "alerts":
                    root.alertsSeen = true
                    root.alerts = []
                    root.alertsIsList = reader.peek(0x5B)
                    if root.alertsIsList {
                        try reader.array(depth: 1) { (reader: inout AlertmanagerReader) throws(JSONParser.Failure) in
                            root.alerts.append(try reader.alert(depth: 2))
                        }
                    } else {
                        _ = try reader.r.value(depth: 1)
                    }
                case "truncatedAlerts": root.truncated = try reader.r.value(depth: 1)
                case "receiver": root.receiver = try reader.r.value(depth: 1)
                case "groupKey": root.groupKey = try reader.r.value(depth: 1)
                default: try reader.r.skip(depth: 1)
                }
            }
        }
        r.skipSpace()
        guard r.i == r.bytes.count else { throw JSONParser.Failure(offset: r.i) }
        return root
    }

    func peek(_ byte: UInt8) -> Bool { r.i < r.bytes.count && r.bytes[r.i] == byte }

    /// Calls `field` for each key of the object at the cursor, with the cursor on its value
    /// (which `field` must consume).
    mutating func object(depth: Int, _ field: (inout AlertmanagerReader, String) throws(JSONParser.Failure) -> Void) throws(JSONParser.Failure) {
        guard depth < JSONParser.maxDepth else { throw JSONParser.Failure(offset: r.i) }
        r.i += 1
        r.skipSpace()
        if peek(0x7D) {
            r.i += 1
            return
        }
        while true {
            r.skipSpace()
            guard peek(0x22) else { throw JSONParser.Failure(offset: r.i) }
            let key = try r.string()
            r.skipSpace()
            guard peek(0x3A) else { throw JSONParser.Failure(offset: r.i) }
            r.i += 1
            r.skipSpace()
            guard r.i < r.bytes.count else { throw JSONParser.Failure(offset: r.i) }
            try field(&self, key)
            r.skipSpace()
            if peek(0x2C) {
                r.i += 1
                continue
            }
            if peek(0x7D) {
                r.i += 1
                return
            }
            throw JSONParser.Failure(offset: r.i)
        }
    }

    mutating func array(depth: Int, _ item: (inout AlertmanagerReader) throws(JSONParser.Failure) -> Void) throws(JSONParser.Failure) {
        guard depth < JSONParser.maxDepth else { throw JSONParser.Failure(offset: r.i) }
        r.i += 1
        r.skipSpace()
        if peek(0x5D) {
            r.i += 1
            return
        }
        while true {
            r.skipSpace()
            guard r.i < r.bytes.count else { throw JSONParser.Failure(offset: r.i) }
            try item(&self)
            r.skipSpace()
            if peek(0x2C) {
                r.i += 1
                continue
            }
            if peek(0x5D) {
                r.i += 1
                return
            }
            throw JSONParser.Failure(offset: r.i)
        }
    }

    mutating func alert(depth: Int) throws(JSONParser.Failure) -> RawAlert {
        var a = RawAlert()
        guard peek(0x7B) else {
            _ = try r.value(depth: depth)
            a.isObject = false
            return a
        }
        try object(depth: depth) { (reader: inout AlertmanagerReader, key: String) throws(JSONParser.Failure) in
            switch key {
            case "status": a.status = try reader.r.value(depth: depth + 1)
            case "labels": a.labels = try reader.stringMap(depth: depth + 1)
            case "annotations": a.annotations = try reader.stringMap(depth: depth + 1)
            case "values": a.values = try reader.numberMap(depth: depth + 1)
            case "startsAt": a.startsAt = try reader.time(depth: depth + 1)
            case "endsAt": a.endsAt = try reader.time(depth: depth + 1)
            case "fingerprint": a.fingerprint = try reader.r.value(depth: depth + 1)
            case "generatorURL": a.generatorURL = try reader.r.value(depth: depth + 1)
            case "dashboardURL", "panelURL", "silenceURL":
                if case .string(let url) = try reader.r.value(depth: depth + 1) {
                    a.links[key] = url.isEmpty ? nil : url
                } else {
                    a.links[key] = nil
                }
            default: try reader.r.skip(depth: depth + 1)
            }
        }
        return a
    }

    mutating func time(depth: Int) throws(JSONParser.Failure) -> Time {
        if peek(0x22) {
            let start = r.i + 1
            var end = start
            while end < r.bytes.count, r.bytes[end] != 0x22, r.bytes[end] != 0x5C, r.bytes[end] >= 0x20, r.bytes[end] < 0x80 { end += 1 }
            if end < r.bytes.count, r.bytes[end] == 0x22, end > start {
                let parsed = r.bytes.withUnsafeBufferPointer { RFC3339.parse(utf8: UnsafeBufferPointer(rebasing: $0[start..<end])) }
                if let parsed {
                    r.i = end + 1
                    return .time(AlertNormalizer.noneIfZero(parsed))
                }
            }
        }
        // Anything else (empty, escaped, not a time, not a string) is read as a value and
        // judged as before.
        return .other(try r.value(depth: depth))
    }

    mutating func stringMap(depth: Int) throws(JSONParser.Failure) -> Map<String> {
        if peek(0x6E) {
            try r.literal("null")
            return .absent
        }
        guard peek(0x7B) else {
            _ = try r.value(depth: depth)
            return .notObject
        }
        var result: [String: String] = [:]
        result.reserveCapacity(8)
        var bad: String?
        try object(depth: depth) { (reader: inout AlertmanagerReader, key: String) throws(JSONParser.Failure) in
            if reader.peek(0x22) {
                result[key] = try reader.r.string()
            } else {
                _ = try reader.r.value(depth: depth + 1)
                result[key] = nil
                if bad == nil { bad = key }
            }
        }
        return .map(result, badKey: bad)
    }

    mutating func numberMap(depth: Int) throws(JSONParser.Failure) -> Map<Double> {
        if peek(0x6E) {
            try r.literal("null")
            return .absent
        }
        guard peek(0x7B) else {
            _ = try r.value(depth: depth)
            return .notObject
        }
        var result: [String: Double] = [:]
        var bad: String?
        try object(depth: depth) { (reader: inout AlertmanagerReader, key: String) throws(JSONParser.Failure) in
            if case .number(let n) = try reader.r.value(depth: depth + 1) {
                result[key] = n
            } else {
                result[key] = nil
                if bad == nil { bad = key }
            }
        }
        return .map(result, badKey: bad)
    }
}

extension AlertNormalizer {
    /// Alertmanager's webhook (version 4) and Grafana's webhook contact point (Alertmanager's
    /// fields plus `values`, `dashboardURL`, `panelURL`, `silenceURL`, …).
    public static func alertmanager(_ body: Data, source: IntegrationKind = .alertmanager) throws(ValidationError) -> AlertBatch {
        var reader = AlertmanagerReader(body)
        let root: AlertmanagerReader.Root
        do {
            root = try reader.read()
        } catch {
            throw ValidationError(field: "body", message: "is not valid JSON (or nested deeper than \(JSONParser.maxDepth) levels)")
        }
        guard root.isObject else { throw ValidationError(field: "body", message: "must be a JSON object") }
        guard root.alertsSeen else { throw ValidationError(field: "alerts", message: "is required") }
        guard root.alertsIsList else { throw ValidationError(field: "alerts", message: "must be a list") }
        try AlertLimits.count(root.alerts.count)
        var normalized: [NormalizedAlert] = []
        normalized.reserveCapacity(root.alerts.count)
        for (i, alert) in root.alerts.enumerated() {
            // Field names are made only for an error: a delivery that is fine makes none.
            func field(_ name: String = "") -> String { "alerts[\(i)]" + name }
            guard alert.isObject else { throw ValidationError(field: field(), message: "must be a JSON object") }
            guard case .string(let statusText) = alert.status else {
                throw ValidationError(field: field(".status"), message: alert.status == nil ? "is required" : "must be firing or resolved")
            }
            guard let status = AlertStatus(rawValue: statusText) else {
                throw ValidationError(field: field(".status"), message: "must be firing or resolved, not \(statusText.debugDescription)")
            }
            let labels = try map(alert.labels, field(".labels"), required: true, expected: "a string")
            guard let alertname = labels["alertname"], !alertname.isEmpty else {
                throw ValidationError(field: field(".labels.alertname"), message: "is required")
            }
            let annotations = try map(alert.annotations, field(".annotations"), required: false, expected: "a string")
            let values = try map(alert.values, field(".values"), required: false, expected: "a number")
            let fingerprint = text(alert.fingerprint).flatMap { $0.isEmpty ? nil : $0 } ?? Self.fingerprint(labels)
            normalized.append(
                NormalizedAlert(
                    source: source,
                    fingerprint: fingerprint,
                    status: status,
                    labels: labels,
                    annotations: annotations,
                    startsAt: try time(alert.startsAt, field(".startsAt")),
                    endsAt: try time(alert.endsAt, field(".endsAt")),
                    value: primaryValue(values: values, labels: labels, annotations: annotations),
                    values: values,
                    generatorURL: text(alert.generatorURL),
                    links: alert.links
                )
            )
        }
        var truncated = 0
        if case .number(let n) = root.truncated, n.isFinite, n > 0, n < 1e9 { truncated = Int(n) }
        let batch = AlertBatch(alerts: normalized, truncatedAlerts: truncated, receiver: text(root.receiver), groupKey: text(root.groupKey))
        try AlertLimits.check(batch) { n, part in AlertLimits.webhookName(part, prefix: "alerts[\(n)].") }
        return batch
    }

    static func time(_ t: AlertmanagerReader.Time, _ field: @autoclosure () -> String) throws(ValidationError) -> Date? {
        switch t {
        case .absent: return nil
        case .time(let date): return date
        case .other(let value): return try date(value, field())
        }
    }

    static func map<Value>(
        _ m: AlertmanagerReader.Map<Value>,
        _ field: @autoclosure () -> String,
        required: Bool,
        expected: String
    ) throws(ValidationError) -> [String: Value] {
        switch m {
        case .absent:
            if required { throw ValidationError(field: field(), message: "is required") }
            return [:]
        case .notObject:
            throw ValidationError(field: field(), message: "must be a JSON object")
        case .map(let values, let bad):
            if let bad { throw ValidationError(field: "\(field()).\(bad)", message: "must be \(expected)") }
            return values
        }
    }
}
