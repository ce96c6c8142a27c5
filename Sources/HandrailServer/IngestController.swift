import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import Logging
import Metrics
import NIOCore
import Postgres
import Synchronization

/// Where monitors deliver: Alertmanager, Grafana, PagerDuty Events v2 and generic JSON.
/// A 2xx is answered only after the delivery is committed; database trouble answers 503
/// (senders retry 5xx), never 4xx, and never 2xx for something not stored.
struct IngestController {
    let ingest: IngestStore
    let incidents: IncidentStore
    let catalog: RunbookCatalog
    let metrics: IngestMetrics
    /// The webhook routes know their key from this cache; `IngestStore` checks it is live.
    let keyCache: IntegrationKeyCache
    let logger: Logger

    /// The largest body accepted from a monitor.
    static let maxBody = 512 << 10

    func addRoutes(to routes: Routes) {
        routes.on(.post, "/api/v1/alerts/alertmanager", .ingest([.alertmanager]), cachedKey: true) { request, context in
            try await webhook(request, context, source: .alertmanager) { try AlertNormalizer.alertmanager($0, source: .alertmanager) }
        }
        routes.on(.post, "/api/v1/alerts/grafana", .ingest([.grafana]), cachedKey: true) { request, context in
            try await webhook(request, context, source: .grafana) { try AlertNormalizer.alertmanager($0, source: .grafana) }
        }
        routes.on(.post, "/api/v1/alerts/generic", .ingest([.generic]), cachedKey: true) { request, context in
            try await webhook(request, context, source: .generic) { try AlertNormalizer.generic($0) }
        }
        // The router treats `/v2/enqueue/` (what some PagerDuty clients send) as this same route.
        routes.on(.post, "/v2/enqueue", .ingest([.pagerduty])) { request, context in try await pagerDuty(request, context) }
        routes.on(.post, "/v2/change/enqueue", .ingest([.pagerduty])) { request, context in try await change(request, context) }
    }

    // MARK: - Webhooks (Alertmanager, Grafana, generic)

    /// The answer to a stored delivery, written by hand (every delivery gets one):
    /// `{"status": "stored", "delivery_id": …, "alerts": [{"fingerprint", "result",
    /// "incident", "incident_number", "incident_result"}]}`.
    static func answer(_ report: IngestReport) -> String {
        var w = JSONText()
        w.object { w in
            w.field("status", "stored")
            w.field("delivery_id", report.deliveryID)
            w.field("alerts", report.alerts) { w, alert in
                w.object { w in
                    w.field("fingerprint", alert.fingerprint)
                    w.field("result", alert.result.rawValue)
                    w.field("incident", alert.incidentNumber.map(IncidentRef.display))
                    w.field("incident_number", alert.incidentNumber)
                    w.field("incident_result", alert.incident?.rawValue)
                }
            }
        }
        return w.text
    }

    func webhook(
        _ request: Request,
        _ context: HandrailRequestContext,
        source: IntegrationKind,
        normalize: (Data) throws -> AlertBatch
    ) async throws -> Response {
        let start = ContinuousClock.now
        let (integration, requestID, body) = try await received(request, context)
        let batch: AlertBatch
        do {
            batch = try normalize(body)
        } catch {
            metrics.received(source, outcome: "rejected", count: 1)
            try await recordRejected(integration, source, requestID, error)
            throw error
        }
        if batch.truncatedAlerts > 0 {
            logger.warning(
                "the sender left alerts out of a delivery (max_alerts)",
                metadata: [
                    "integration": "\(integration.name)", "truncated_alerts": "\(batch.truncatedAlerts)", "request_id": "\(requestID)",
                ]
            )
        }
        let runbooks = try await withRetry { try await catalog.candidates() }
        let delivery = Delivery(
            integration: integration,
            source: source,
            alerts: batch.alerts,
            runbooks: runbooks,
            receiver: batch.receiver,
            groupKey: batch.groupKey,
            truncatedAlerts: batch.truncatedAlerts,
            requestID: requestID
        )
        let report = try await store(delivery, source: source)
        metrics.latency(source, since: start)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", Self.requestIDHeader: requestID],
            body: .init(byteBuffer: ByteBuffer(string: Self.answer(report)))
        )
    }

    // MARK: - PagerDuty Events API v2

    struct PagerDutyAnswer: Encodable {
        let status: String
        let message: String
        let dedupKey: String?
        let errors: [String]?
    }

    func pagerDuty(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let (integration, requestID, body) = try await received(request, context)
        let event: PagerDutyEvent
        do {
            event = try PagerDutyEvent.parse(json: context.eventBody ?? (try? JSONParser.parse(body)))
        } catch {
            metrics.received(.pagerduty, outcome: "rejected", count: 1)
            try await recordRejected(
                integration,
                .pagerduty,
                requestID,
                ValidationError(field: "event", message: error.errors.joined(separator: "; "))
            )
            return try Self.pagerDutyResponse(
                .badRequest,
                PagerDutyAnswer(status: "invalid event", message: error.message, dedupKey: nil, errors: error.errors),
                requestID
            )
        }
        switch event.action {
        case .trigger:
            guard let alert = event.alert else { throw APIError(.badRequest, "a trigger needs a payload", field: "payload") }
            let runbooks = try await withRetry { try await catalog.candidates() }
            _ = try await store(
                Delivery(integration: integration, source: .pagerduty, alerts: [alert], runbooks: runbooks, requestID: requestID),
                source: .pagerduty
            )
        case .acknowledge:
            _ = try await withRetry { try await incidents.acknowledgeAlert(integration: integration, dedupKey: event.dedupKey, requestID: requestID) }
            metrics.received(.pagerduty, outcome: "stored", count: 1)
        case .resolve:
            let cleared = NormalizedAlert(source: .pagerduty, fingerprint: event.dedupKey, status: .resolved, labels: [:], endsAt: Date())
            _ = try await store(
                Delivery(integration: integration, source: .pagerduty, alerts: [cleared], runbooks: [], requestID: requestID),
                source: .pagerduty
            )
        }
        metrics.latency(.pagerduty, since: start)
        return try Self.pagerDutyResponse(
            .accepted,
            PagerDutyAnswer(status: "success", message: "Event processed", dedupKey: event.dedupKey, errors: nil),
            requestID
        )
    }

    /// Change events (deploys, config pushes): on the timeline of open incidents of the key.
    func change(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        let (integration, requestID, body) = try await received(request, context)
        var object: [String: JSONValue]?
        if case .object(let parsed) = context.eventBody ?? (try? JSONParser.parse(body)) { object = parsed }
        var errors: [String] = []
        if object == nil { errors.append("Event object is not valid JSON") }
        var payload: [String: JSONValue]?
        if case .object(let parsed) = object?["payload"] { payload = parsed }
        if object != nil, payload == nil { errors.append("'payload' is missing or not an object") }
        let summary = payload?["summary"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if payload != nil, summary.isEmpty { errors.append("'payload.summary' is missing or blank") }
        if summary.count > 1024 { errors.append("'payload.summary' is too long (maximum 1024 characters)") }
        if let payload { errors += Self.unstorableChange(payload, links: object?["links"]) }
        guard errors.isEmpty, let payload else {
            metrics.received(.pagerduty, outcome: "rejected", count: 1)
            try await recordRejected(integration, .pagerduty, requestID, ValidationError(field: "event", message: errors.joined(separator: "; ")))
            return try Self.pagerDutyResponse(
                .badRequest,
                PagerDutyAnswer(status: "invalid event", message: "Event object is invalid", dedupKey: nil, errors: errors),
                requestID
            )
        }
        var data: [String: JSONValue] = ["summary": .string(summary)]
        if let source = payload["source"]?.stringValue { data["source"] = .string(source) }
        if let timestamp = payload["timestamp"]?.stringValue { data["timestamp"] = .string(timestamp) }
        if let details = payload["custom_details"] { data["custom_details"] = details }
        var links: [JSONValue] = []
        if case .array(let items) = object?["links"] {
            links = items.compactMap { $0["href"]?.stringValue }.map(JSONValue.string)
        }
        if !links.isEmpty { data["links"] = .array(links) }
        let touched = try await withRetry {
            try await incidents.recordChange(integration: integration, summary: summary, data: .object(data), requestID: requestID)
        }
        metrics.received(.pagerduty, outcome: "change", count: 1)
        logger.info("change event recorded", metadata: ["integration": "\(integration.name)", "incidents": "\(touched.count)"])
        return try Self.pagerDutyResponse(
            .accepted,
            PagerDutyAnswer(status: "success", message: "Change event processed", dedupKey: nil, errors: nil),
            requestID
        )
    }

    /// What of a change event PostgreSQL could not store, as PagerDuty words its errors.
    static func unstorableChange(_ payload: [String: JSONValue], links: JSONValue?) -> [String] {
        var errors: [String] = []
        for name in ["summary", "source", "timestamp"] {
            do { try AlertLimits.text(payload[name]?.stringValue, AlertLimits.labelValue, "payload.\(name)") } catch {
                errors.append("'\(error.field)' \(error.message)")
            }
        }
        for bad in [payload["custom_details"]?.unstorable(at: "payload.custom_details"), links?.unstorable(at: "links")] {
            if let bad { errors.append("'\(bad.field)' \(bad.message)") }
        }
        return errors
    }

    static func pagerDutyResponse(_ status: HTTPResponse.Status, _ answer: PagerDutyAnswer, _ requestID: String) throws -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status,
            headers: [.contentType: "application/json", requestIDHeader: requestID],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(answer)))
        )
    }

    // MARK: - Shared

    /// What every delivery starts with: who sent it, its trace id, its body (size-capped).
    func received(_ request: Request, _ context: HandrailRequestContext) async throws -> (Integration, String, Data) {
        (try integrationOf(context), Self.requestID(request), try await Self.body(request))
    }

    func integrationOf(_ context: HandrailRequestContext) throws -> Integration {
        guard case .integration(let integration) = context.principal else { throw APIError(.unauthorized, "an integration key is required") }
        return integration
    }

    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    /// The sender's request id when it sent one (to trace a delivery end to end), else a new one.
    static func requestID(_ request: Request) -> String {
        if let id = request.headers[requestIDHeader], !id.isEmpty, id.count <= 100 { return id }
        return newRequestID()
    }

    /// A new id shaped as before (`1f3a9c0e-77b2-4d05`: 64 bits in hex). `UUID()` opened
    /// and read `/dev/urandom` on every delivery, and `UInt64.random` asks the kernel each
    /// time; a trace id needs to be unique, not secret: a SplitMix64 sequence from a random
    /// start, one atomic add per id.
    static func newRequestID() -> String {
        var z = requestIDState.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return String(unsafeUninitializedCapacity: 18) { out in
            var n = 0
            for k in 0..<16 {
                if k == 8 || k == 12 {
                    out[n] = UInt8(ascii: "-")
                    n += 1
                }
                let digit = UInt8((z >> UInt64(60 - 4 * k)) & 0xF)
                out[n] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                n += 1
            }
            return n
        }
    }

    private static let requestIDState = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    static func body(_ request: Request) async throws -> Data {
        var request = request
        return Data(try await request.collectBody(limit: maxBody).readableBytesView)
    }

    /// Stores the delivery, retrying transient database trouble a few times; counts outcomes.
    func store(_ delivery: Delivery, source: IntegrationKind) async throws -> IngestReport {
        do {
            let report = try await ingest.ingest(delivery)  // retries by itself
            metrics.received(source, outcome: "stored", count: max(1, delivery.alerts.count))
            return report
        } catch let error as IntegrationRevoked {
            metrics.received(source, outcome: "rejected", count: max(1, delivery.alerts.count))
            throw revoked(error)
        } catch {
            metrics.received(source, outcome: "failed", count: max(1, delivery.alerts.count))
            throw error
        }
    }

    /// Runs a database call under the one retry policy (`Retry`).
    func withRetry<T>(_ body: () async throws -> T) async throws -> T {
        try await Retry.run(logger: logger, body)
    }

    /// The answer to a delivery whose key was revoked after the key cache read it (here, on
    /// another replica, or from the CLI): what any revoked key gets, and the key forgotten.
    func revoked(_ error: IntegrationRevoked) -> APIError {
        keyCache.forget(integrationID: error.integration.id)
        logger.notice("delivery with a revoked integration key refused", metadata: ["integration": "\(error.integration.name)"])
        return AccessMiddleware.authenticationRequired
    }

    /// Logs a refused delivery (and records it, to trace it later). Throws only when the key
    /// turned out to be revoked: the sender then gets 401, not the validation error.
    func recordRejected(_ integration: Integration, _ source: IntegrationKind, _ requestID: String, _ error: any Error) async throws {
        let text = (error as? ValidationError)?.description ?? String(describing: error)
        logger.notice("delivery rejected", metadata: ["integration": "\(integration.name)", "error": "\(text)", "request_id": "\(requestID)"])
        do {
            try await ingest.recordRejected(integration: integration, source: source, requestID: requestID, error: text)
        } catch let error as IntegrationRevoked {
            throw revoked(error)
        } catch {
            logger.warning("could not record a rejected delivery", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}

/// Alerts received by source and outcome, and how long ingestion takes. The handles are
/// made once per label set and kept (making one per delivery showed in profiles).
final class IngestMetrics: Sendable {
    let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[IntegrationKind: Metrics.Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func received(_ source: IntegrationKind, outcome: String, count: Int) {
        let key = source.rawValue + "/" + outcome
        let counter = counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(
                label: "handrail_alerts_received_total",
                dimensions: [("source", source.rawValue), ("outcome", outcome)],
                factory: factory
            )
            cache[key] = counter
            return counter
        }
        counter.increment(by: count)
    }

    func latency(_ source: IntegrationKind, since start: ContinuousClock.Instant) {
        let timer = timers.withLock { cache in
            if let timer = cache[source] { return timer }
            let timer = Metrics.Timer(
                label: "handrail_ingest_duration_seconds",
                dimensions: [("source", source.rawValue)],
                preferredDisplayUnit: .seconds,
                factory: factory
            )
            cache[source] = timer
            return timer
        }
        timer.recordInterval(start.duration(to: .now))
    }
}
