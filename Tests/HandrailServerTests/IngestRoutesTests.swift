import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import NIOCore
import Postgres
import TestSupport
import Testing

@testable import HandrailServer

/// An Alertmanager webhook (version 4) body, as Alertmanager sends it.
func alertmanagerBody(_ alerts: [(fingerprint: String, status: String, labels: [String: String])], groupStatus: String = "firing") -> ByteBuffer {
    let items: [[String: Any]] = alerts.map { a in
        [
            "status": a.status, "labels": a.labels, "annotations": a.status == "resolved" ? [:] : ["summary": "drift on \(a.labels["model"] ?? "?")"],
            "startsAt": "2026-11-22T09:00:00.000Z", "endsAt": a.status == "resolved" ? "2026-11-22T09:30:00Z" : "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=x", "fingerprint": a.fingerprint,
        ]
    }
    let body: [String: Any] = [
        "version": "4", "groupKey": "{}:{alertname=\"FeatureDriftHigh\"}", "truncatedAlerts": 0, "status": groupStatus,
        "receiver": "handrail\\prod", "groupLabels": ["alertname": "FeatureDriftHigh"], "commonLabels": [:], "commonAnnotations": [:],
        "externalURL": "http://alertmanager:9093", "alerts": items,
    ]
    return ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: body))
}

func jsonObject(_ r: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(r.text.utf8))) as? [String: Any] ?? [:]
}

extension AccessFixture {
    func headers(_ role: Role) -> HTTPFields {
        [.authorization: "Bearer \(tokens[role]!)", .accept: "application/json", .contentType: "application/json"]
    }
    var amHeaders: HTTPFields { [.authorization: "Bearer \(integrationKey)", .contentType: "application/json"] }

    /// A new live integration key of that kind.
    func key(_ kind: IntegrationKind, name: String) async throws -> String {
        let key = Secrets.newIntegrationKey()
        _ = try await IntegrationKeyStore(pool: pool).create(
            name: name,
            kind: kind,
            keyHash: Secrets.hash(key),
            displayPrefix: "p",
            requireSignature: false,
            by: .system
        )
        return key
    }

    func syncRunbooks() async throws {
        _ = try await RunbookDirectory.sync(TestDatabase.checkoutRoot.appendingPathComponent("runbooks"), store: RunbookStore(pool: pool), by: "test")
    }
}

@Suite struct IngestRoutesTests {
    @Test func anAlertmanagerGroupOpensOneIncidentThatPeopleCanRead() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let labels1 = ["alertname": "FeatureDriftHigh", "model": "ranker", "feature": "age"]
            let labels2 = ["alertname": "FeatureDriftHigh", "model": "ranker", "feature": "country"]
            let sent = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("a1", "firing", labels1), ("a2", "firing", labels2)])
            )
            #expect(sent.status == .ok)
            let answer = jsonObject(sent)
            let alerts = try #require(answer["alerts"] as? [[String: Any]])
            #expect(alerts.count == 2)
            let ref = try #require(alerts.first?["incident"] as? String)
            #expect(alerts.allSatisfy { $0["incident"] as? String == ref })
            // A new trace id per delivery, 64 random bits shaped 8-4-4, unless the sender sent one.
            let traceID = try #require(sent.headers[HTTPField.Name("X-Request-Id")!])
            #expect(traceID.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}/) != nil, "\(traceID)")
            #expect(Set((0..<100).map { _ in IngestController.newRequestID() }).count == 100)

            let again = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("a1", "firing", labels1), ("a2", "firing", labels2)])
            )
            #expect((jsonObject(again)["alerts"] as? [[String: Any]])?.compactMap { $0["result"] as? String } == ["repeat", "repeat"])

            let detail = try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer))
            #expect(detail.status == .ok)
            let body = jsonObject(detail)
            #expect((body["incident"] as? [String: Any])?["state"] as? String == "triggered")
            #expect((body["incident"] as? [String: Any])?["delivery_count"] as? Int == 4)
            #expect((body["runbook"] as? [String: Any])?["id"] as? String == "feature-drift")
            #expect((body["runbook_reason"] as? String)?.contains("alertname=\"FeatureDriftHigh\"") == true)
            #expect((body["alerts"] as? [[String: Any]])?.count == 2)
            #expect(((body["alerts"] as? [[String: Any]])?.first?["labels"] as? [String: String])?["feature"] == "age")
            #expect((body["steps"] as? [[String: Any]])?.isEmpty == false)
            #expect((body["url"] as? String)?.hasSuffix("/incidents/\(ref.dropFirst(4))") == true)
            let number = String(ref.dropFirst(4))
            #expect(try await client.execute("/api/v1/incidents/\(number)", headers: f.headers(.viewer)).status == .ok)

            let list = jsonObject(try await client.execute("/api/v1/incidents?state=triggered&model=ranker", headers: f.headers(.viewer)))
            #expect((list["incidents"] as? [[String: Any]])?.count == 1)
            let none = jsonObject(try await client.execute("/api/v1/incidents?state=resolved", headers: f.headers(.viewer)))
            #expect((none["incidents"] as? [[String: Any]])?.isEmpty == true)
            let badState = try await client.execute("/api/v1/incidents?state=sleeping", headers: f.headers(.viewer))
            #expect(badState.status == .badRequest)
            #expect((jsonObject(badState)["error"] as? [String: Any])?["field"] as? String == "state")

            // Resolve one: still open. Resolve both: feature-drift says auto_resolve false.
            _ = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("a1", "resolved", labels1), ("a2", "firing", labels2)])
            )
            let cleared = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("a1", "resolved", labels1), ("a2", "resolved", labels2)], groupStatus: "resolved")
            )
            #expect(
                (jsonObject(cleared)["alerts"] as? [[String: Any]])?.contains { $0["incident_result"] as? String == "all_alerts_cleared" } == true
            )
            let after = jsonObject(try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer)))
            #expect((after["incident"] as? [String: Any])?["state"] as? String == "triggered")
            #expect((after["incident"] as? [String: Any])?["open_alerts"] as? Int == 0)
            #expect((after["alerts"] as? [[String: Any]])?.first?["annotations"] as? [String: String] == ["summary": "drift on ranker"])
        }
    }

    @Test func aDeliveryOfManyAlertsIsOneTimelineEntryNamingThem() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let group = (1...7).map { ("b\($0)", "firing", ["alertname": "FeatureDriftHigh", "model": "ranker", "feature": "f\($0)"]) }
            let sent = try await client.execute("/api/v1/alerts/alertmanager", method: .post, headers: f.amHeaders, body: alertmanagerBody(group))
            let ref = try #require((jsonObject(sent)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)
            _ = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody(group.map { ($0.0, "resolved", $0.2) }, groupStatus: "resolved")
            )
            let number = try #require(Int64(ref.dropFirst(4)))
            let timeline = try #require(try await IncidentStore(pool: f.pool).detail(number: number)).timeline
            #expect(timeline.map(\.type.rawValue) == ["opened", "alert_added", "alert_cleared", "all_alerts_cleared"])
            let lines = timeline.map(PostmortemDocument.describe)
            #expect(
                lines[1] == "7 alerts FeatureDriftHigh (b1), FeatureDriftHigh (b2), FeatureDriftHigh (b3), FeatureDriftHigh (b4), "
                    + "FeatureDriftHigh (b5) and 2 more added"
            )
            #expect(lines[2] == "7 alerts b1, b2, b3, b4, b5 and 2 more cleared by am")
        }
    }

    @Test func badDeliveriesAreRefusedNamingTheFieldAndStoreNothing() async throws {
        try await AccessFixture.with { f, client in
            let bad = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: ByteBuffer(string: "{not json")
            )
            #expect(bad.status == .badRequest)
            #expect((jsonObject(bad)["error"] as? [String: Any])?["field"] as? String == "body")
            let noAlerts = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: ByteBuffer(string: #"{"version":"4"}"#)
            )
            #expect((jsonObject(noAlerts)["error"] as? [String: Any])?["field"] as? String == "alerts")
            let noName = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("x", "firing", ["model": "m"])])
            )
            #expect((jsonObject(noName)["error"] as? [String: Any])?["field"] as? String == "alerts[0].labels.alertname")
            let huge = ByteBuffer(string: #"{"alerts": [], "pad": ""# + String(repeating: "x", count: 600 << 10) + #""}"#)
            let tooBig = try await client.execute("/api/v1/alerts/alertmanager", method: .post, headers: f.amHeaders, body: huge)
            #expect(tooBig.status == .contentTooLarge)
            let unknown = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: [.authorization: "Bearer \(Secrets.newIntegrationKey())"],
                body: alertmanagerBody([])
            )
            #expect(unknown.status == .unauthorized)
            let wrongKind = try await client.execute("/api/v1/alerts/generic", method: .post, headers: f.amHeaders, body: ByteBuffer(string: "{}"))
            #expect(wrongKind.status == .forbidden)
            let stored = try await f.pool.query(
                "SELECT (SELECT count(*) FROM alerts) AS alerts, (SELECT count(*) FROM deliveries WHERE outcome = 'rejected') AS rejected"
            )
            #expect(try stored[0].decode("alerts", as: Int.self) == 0)
            #expect(try stored[0].decode("rejected", as: Int.self) == 3)
        }
    }

    /// A key the server has cached, revoked elsewhere (another replica, the CLI): its next
    /// delivery, well-formed or not, gets 401 and stores nothing; the server then forgets it.
    @Test func aKeyRevokedOutsideThisServerIsRefusedOnItsNextDelivery() async throws {
        try await AccessFixture.with { f, client in
            let group = alertmanagerBody([("r1", "firing", ["alertname": "FeatureDriftHigh", "model": "ranker"])])
            let first = try await client.execute("/api/v1/alerts/alertmanager", method: .post, headers: f.amHeaders, body: group)
            #expect(first.status == .ok)
            _ = try await IntegrationKeyStore(pool: f.pool).revoke(name: "am", by: .system)
            // Still cached: the refused delivery's log entry finds the key revoked.
            let bad = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: ByteBuffer(string: "{not json")
            )
            #expect(bad.status == .unauthorized)
            let resend = try await client.execute("/api/v1/alerts/alertmanager", method: .post, headers: f.amHeaders, body: group)
            #expect(resend.status == .unauthorized)
            // Another key, cached too, revoked after its first delivery: the resend statement refuses it.
            let other = try await f.key(.alertmanager, name: "am-two")
            let otherHeaders: HTTPFields = [.authorization: "Bearer \(other)", .contentType: "application/json"]
            #expect(try await client.execute("/api/v1/alerts/alertmanager", method: .post, headers: otherHeaders, body: group).status == .ok)
            _ = try await IntegrationKeyStore(pool: f.pool).revoke(name: "am-two", by: .system)
            let otherResend = try await client.execute("/api/v1/alerts/alertmanager", method: .post, headers: otherHeaders, body: group)
            #expect(otherResend.status == .unauthorized)
            let stored = try await f.pool.query(
                "SELECT (SELECT sum(delivery_count) FROM alerts) AS deliveries, (SELECT count(*) FROM deliveries) AS logged"
            )
            #expect(try stored[0].decode("deliveries", as: Int.self) == 2)
            #expect(try stored[0].decode("logged", as: Int.self) == 2)
            #expect(f.logs.all.contains("delivery with a revoked integration key refused"))
        }
    }

    @Test func pagerDutyEventsAnswerAsPagerDutyDoes() async throws {
        try await AccessFixture.with { f, client in
            let key = try await f.key(.pagerduty, name: "pd")
            func send(_ path: String, _ event: [String: Any]) async throws -> TestResponse {
                try await client.execute(
                    path,
                    method: .post,
                    headers: [.contentType: "application/json"],
                    body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: event))
                )
            }
            let trigger = try await send(
                "/v2/enqueue",
                [
                    "routing_key": key, "event_action": "trigger",
                    "payload": ["summary": "GPU memory high on trainer-3", "source": "trainer-3", "severity": "critical", "class": "GPUMemoryHigh"],
                ]
            )
            #expect(trigger.status == .accepted)
            let answer = jsonObject(trigger)
            #expect(answer["status"] as? String == "success")
            #expect(answer["message"] as? String == "Event processed")
            let dedup = try #require(answer["dedup_key"] as? String)
            let ack = try await send("/v2/enqueue/", ["routing_key": key, "event_action": "acknowledge", "dedup_key": dedup])
            #expect(ack.status == .accepted)
            let change = try await send("/v2/change/enqueue", ["routing_key": key, "payload": ["summary": "deploy trainer v42", "source": "ci"]])
            #expect(change.status == .accepted)
            let resolve = try await send("/v2/enqueue", ["routing_key": key, "event_action": "resolve", "dedup_key": dedup])
            #expect(resolve.status == .accepted)
            #expect(jsonObject(resolve)["dedup_key"] as? String == dedup)
            let again = try await send("/v2/enqueue", ["routing_key": key, "event_action": "resolve", "dedup_key": dedup])
            #expect(again.status == .accepted)

            let list = jsonObject(try await client.execute("/api/v1/incidents", headers: f.headers(.viewer)))
            let incident = try #require((list["incidents"] as? [[String: Any]])?.first)
            #expect(incident["state"] as? String == "resolved")
            #expect(incident["severity"] as? String == "critical")
            let detail = jsonObject(try await client.execute("/api/v1/incidents/\(incident["number"] as! Int)", headers: f.headers(.viewer)))
            let types = (detail["timeline"] as? [[String: Any]])?.compactMap { $0["type"] as? String }
            #expect(types == ["opened", "alert_added", "acknowledged", "change", "alert_cleared", "resolved"])

            let invalid = try await send("/v2/enqueue", ["routing_key": key, "event_action": "trigger", "payload": ["summary": "x"]])
            #expect(invalid.status == .badRequest)
            #expect(jsonObject(invalid)["status"] as? String == "invalid event")
            #expect((jsonObject(invalid)["errors"] as? [String])?.contains { $0.contains("payload.source") } == true)
            let unknownKey = try await send("/v2/enqueue", ["routing_key": Secrets.newIntegrationKey(), "event_action": "trigger"])
            #expect(unknownKey.status == .unauthorized)
        }
    }

    @Test func genericAlertsAndPeopleWorkingTheIncident() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.generic, name: "batch-jobs")
            let headers: HTTPFields = [.authorization: "Bearer \(key)", .contentType: "application/json"]
            let missing = try await client.execute(
                "/api/v1/alerts/generic",
                method: .post,
                headers: headers,
                body: ByteBuffer(string: #"{"alertname":"X"}"#)
            )
            #expect(missing.status == .badRequest)
            #expect((jsonObject(missing)["error"] as? [String: Any])?["field"] as? String == "dedup_key")
            let sent = try await client.execute(
                "/api/v1/alerts/generic",
                method: .post,
                headers: headers,
                body: ByteBuffer(
                    string: """
                        {"dedup_key": "drift-ranker", "alertname": "FeatureDriftHigh", "labels": {"model": "ranker"}, "value": 0.4, "summary": "PSI 0.4"}
                        """
                )
            )
            #expect(sent.status == .ok)
            let ref = try #require((jsonObject(sent)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)

            // Viewers read, responders change; integration keys never do either.
            let byViewer = try await client.execute("/api/v1/incidents/\(ref)/acknowledge", method: .post, headers: f.headers(.viewer))
            #expect(byViewer.status == .forbidden)
            let byKey = try await client.execute("/api/v1/incidents/\(ref)/acknowledge", method: .post, headers: headers)
            #expect(byKey.status == .forbidden)
            let ack = try await client.execute("/api/v1/incidents/\(ref)/acknowledge", method: .post, headers: f.headers(.responder))
            #expect(ack.status == .ok)
            #expect((jsonObject(ack)["incident"] as? [String: Any])?["state"] as? String == "acknowledged")
            let twice = try await client.execute("/api/v1/incidents/\(ref)/acknowledge", method: .post, headers: f.headers(.responder))
            #expect(twice.status == .conflict)
            let skipNoReason = try await client.execute(
                "/api/v1/incidents/\(ref)/steps/1",
                method: .post,
                headers: f.headers(.responder),
                body: ByteBuffer(string: #"{"outcome": "skipped"}"#)
            )
            #expect(skipNoReason.status == .badRequest)
            #expect((jsonObject(skipNoReason)["error"] as? [String: Any])?["field"] as? String == "note")
            let done = try await client.execute(
                "/api/v1/incidents/\(ref)/steps/1",
                method: .post,
                headers: f.headers(.responder),
                body: ByteBuffer(string: #"{"outcome": "done"}"#)
            )
            #expect(done.status == .ok)
            #expect((jsonObject(done)["steps"] as? [[String: Any]])?.first?["by"] as? String == "responder-user")
            let note = try await client.execute(
                "/api/v1/incidents/\(ref)/notes",
                method: .post,
                headers: f.headers(.responder),
                body: ByteBuffer(string: #"{"text": "upstream schema change"}"#)
            )
            #expect(note.status == .ok)
            let resolved = try await client.execute(
                "/api/v1/incidents/\(ref)/resolve",
                method: .post,
                headers: f.headers(.responder),
                body: ByteBuffer(string: #"{"note": "reverted the schema"}"#)
            )
            #expect((jsonObject(resolved)["incident"] as? [String: Any])?["state"] as? String == "resolved")
            let timeline = (jsonObject(resolved)["timeline"] as? [[String: Any]]) ?? []
            #expect(timeline.last?["actor"] as? String == "responder-user")
            #expect((timeline.last?["data"] as? [String: Any])?["note"] as? String == "reverted the schema")
            let missingIncident = try await client.execute("/api/v1/incidents/INC-9999", headers: f.headers(.viewer))
            #expect(missingIncident.status == .notFound)

            let metrics = try await client.execute("/metrics", headers: f.headers(.viewer))
            #expect(
                metrics.text.contains(#"handrail_alerts_received_total{source="generic",outcome="stored"} 1"#)
                    || metrics.text.contains(#"handrail_alerts_received_total{outcome="stored",source="generic"} 1"#)
            )
            #expect(metrics.text.contains("handrail_ingest_duration_seconds"))
            #expect(metrics.text.contains("handrail_open_incidents 0"))
        }
    }
}

@Suite struct GrafanaRouteTests {
    @Test func aSignedGrafanaDeliveryKeepsValuesAndLinksAndTruncationIsRecorded() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            var fixture =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: TestDatabase.checkoutRoot.appendingPathComponent("Tests/Fixtures/grafana-webhook-firing.json"))
                ) as! [String: Any]
            fixture["truncatedAlerts"] = 3
            let body = try JSONSerialization.data(withJSONObject: fixture)
            let key = f.signedIntegrationKey
            let headers: HTTPFields = [
                .authorization: "Bearer \(key)", .contentType: "application/json",
                HTTPField.Name(WebhookSignature.signatureHeader)!: WebhookSignature.sign(body, secret: key),
            ]
            let unsigned = try await client.execute(
                "/api/v1/alerts/grafana",
                method: .post,
                headers: [.authorization: "Bearer \(key)"],
                body: ByteBuffer(bytes: body)
            )
            #expect(unsigned.status == .unauthorized)
            let sent = try await client.execute("/api/v1/alerts/grafana", method: .post, headers: headers, body: ByteBuffer(bytes: body))
            #expect(sent.status == .ok)
            let ref = try #require((jsonObject(sent)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)
            let detail = jsonObject(try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer)))
            let alert = try #require((detail["alerts"] as? [[String: Any]])?.first)
            #expect(alert["source"] as? String == "grafana")
            #expect((alert["values"] as? [String: Any])?.isEmpty == false, "Grafana's values are kept")
            #expect((alert["links"] as? [String: String])?.keys.contains("dashboardURL") == true)
            let truncated = try await f.pool.query("SELECT truncated_alerts FROM deliveries WHERE source = 'grafana' AND outcome = 'stored'")
            #expect(try truncated[0].decode("truncated_alerts", as: Int.self) == 3)
            #expect(f.logs.all.contains("max_alerts"))
        }
    }
}

@Suite struct IntegrationKeyCacheTests {
    @Test func aKeyIsReadAgainAfterItsAgeAndForgottenWhenRevoked() async throws {
        let cache = IntegrationKeyCache(maxAge: .milliseconds(200))
        let am = Integration(id: 1, name: "am", kind: .alertmanager, requireSignature: false)
        let graf = Integration(id: 2, name: "graf", kind: .grafana, requireSignature: true)
        cache.remember(am, keyHash: "h1")
        cache.remember(graf, keyHash: "h2")
        #expect(cache.integration(keyHash: "h1")?.name == "am")
        #expect(cache.integration(keyHash: "unknown") == nil)
        cache.forget(integrationID: 1)
        #expect(cache.integration(keyHash: "h1") == nil)
        #expect(cache.integration(keyHash: "h2")?.requireSignature == true)
        try await Task.sleep(for: .milliseconds(300))
        #expect(cache.integration(keyHash: "h2") == nil)
    }
}
