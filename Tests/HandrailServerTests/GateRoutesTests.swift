import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import Logging
import NIOCore
import Postgres
import TestSupport
import Testing

@testable import HandrailServer

/// A Flagger webhook payload from Tests/Fixtures/flagger (see its README for where each
/// came from), with `changes` applied to its top level and `metadata` to its metadata.
func flaggerPayload(_ hook: String, checksum: String? = nil, metadata: [String: String] = [:]) throws -> ByteBuffer {
    let url = TestDatabase.checkoutRoot.appendingPathComponent("Tests/Fixtures/flagger/\(hook).json")
    var body = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    if let checksum { body["checksum"] = checksum }
    var meta = body["metadata"] as? [String: String] ?? [:]
    meta.merge(metadata) { $1 }
    body["metadata"] = meta
    return ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
}

private func json(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
}

/// The field a 4xx answer names.
func errorField(_ r: TestResponse) -> String? { (jsonObject(r)["error"] as? [String: Any])?["field"] as? String }

typealias GateClient = RouterTestClient<RouterResponder<HandrailRequestContext>>

extension AccessFixture {
    /// Calls a Flagger hook as Flagger does: POST, JSON, no header but the content type,
    /// the key in the URL.
    func flagger(_ client: GateClient, _ hook: String, key: String, _ body: ByteBuffer) async throws -> TestResponse {
        try await client.execute("/api/v1/flagger/\(hook)?key=\(key)", method: .post, headers: [.contentType: "application/json"], body: body)
    }

    func decide(_ client: GateClient, gate: Any?, as role: Role, _ body: [String: Any]) async throws -> TestResponse {
        try await client.execute("/api/v1/gates/\(gate ?? "none")/decisions", method: .post, headers: headers(role), body: json(body))
    }
}

@Suite struct GateRoutesTests {
    /// The issue's story: no decision waits; a responder's "go" where the runbook needs a
    /// lead is refused and it still waits; a lead's "go" opens this release only; a new
    /// checksum waits again; keys cannot decide.
    @Test func aFlaggerGateOpensOnlyAfterAnAllowedPersonsGoAndOnlyForThatRelease() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "flagger-prod")
            // feature-drift lets lead and manager decide.
            let ask = try flaggerPayload("confirm-rollout", metadata: ["runbook": "feature-drift", "error_rate_ratio": "1.02"])

            let first = try await f.flagger(client, "confirm-rollout", key: key, ask)
            #expect(first.status == .conflict, "\(first.text)")
            var answer = jsonObject(first)
            #expect(answer["answer"] as? String == "wait")
            let gate = try #require(answer["gate"] as? Int)
            #expect((answer["message"] as? String)?.contains("waiting for a person's decision on confirm-rollout of model-serving/ranker") == true)
            let again = try await f.flagger(client, "confirm-rollout", key: key, ask)
            #expect(again.status == .conflict)
            #expect(jsonObject(again)["gate"] as? Int == gate)

            // People see it waiting, with the guards' values the controller sent.
            let waiting = try await client.execute("/api/v1/gates?waiting=true", method: .get, headers: f.headers(.viewer))
            let listed = try #require((jsonObject(waiting)["gates"] as? [[String: Any]])?.first)
            #expect(listed["id"] as? Int == gate)
            #expect(listed["times_asked"] as? Int == 2)
            #expect((listed["metadata"] as? [String: String])?["error_rate_ratio"] == "1.02")
            #expect((listed["metadata"] as? [String: String])?["runbook"] == nil)
            #expect(listed["answer"] as? String == "wait")

            // A responder may not decide where the runbook says lead and up.
            let refused = try await f.decide(client, gate: gate, as: .responder, ["kind": "go", "rationale": "looks fine"])
            #expect(refused.status == .forbidden, "\(refused.text)")
            #expect(refused.text.contains("feature-drift") && refused.text.contains("lead"), "\(refused.text)")
            #expect(try await f.flagger(client, "confirm-rollout", key: key, ask).status == .conflict)

            // Keys never decide, even with the route's shape right.
            let byKey = try await client.execute(
                "/api/v1/gates/\(gate)/decisions",
                method: .post,
                headers: [.authorization: "Bearer \(key)", .contentType: "application/json", .accept: "application/json"],
                body: json(["kind": "go", "rationale": "automation"])
            )
            #expect(byKey.status == .forbidden, "\(byKey.text)")

            // A decision says why.
            let noWhy = try await f.decide(client, gate: gate, as: .lead, ["kind": "go", "rationale": "  "])
            #expect(noWhy.status == .badRequest)
            #expect(errorField(noWhy) == "rationale", "\(noWhy.text)")
            let badKind = try await f.decide(client, gate: gate, as: .lead, ["kind": "yolo", "rationale": "x"])
            #expect(badKind.status == .badRequest)
            #expect(errorField(badKind) == "kind")
            #expect(try await f.decide(client, gate: 999_999, as: .lead, ["kind": "go", "rationale": "x"]).status == .notFound)

            let go = try await f.decide(
                client,
                gate: gate,
                as: .lead,
                ["kind": "go", "rationale": "offline eval +0.4% NDCG, guards quiet", "alternatives_considered": "hold until Monday"]
            )
            #expect(go.status == .created, "\(go.text)")
            answer = jsonObject(go)
            #expect(answer["answer"] as? String == "go")
            let decision = try #require((answer["decisions"] as? [[String: Any]])?.first)
            #expect(decision["decided_by"] as? String == "lead-user")
            #expect(decision["decided_by_role"] as? String == "lead")
            #expect((decision["guards"] as? [String: String])?["error_rate_ratio"] == "1.02")
            #expect(decision["alternatives_considered"] as? String == "hold until Monday")

            let opened = try await f.flagger(client, "confirm-rollout", key: key, ask)
            #expect(opened.status == .ok, "\(opened.text)")
            #expect(jsonObject(opened)["answer"] as? String == "go")

            // The next release of the same target is a new question.
            let next = try flaggerPayload("confirm-rollout", checksum: "77aa01f3c", metadata: ["runbook": "feature-drift"])
            let newRelease = try await f.flagger(client, "confirm-rollout", key: key, next)
            #expect(newRelease.status == .conflict)
            #expect(jsonObject(newRelease)["gate"] as? Int != gate)
            let stillWaiting = try await client.execute("/api/v1/gates?waiting=true", method: .get, headers: f.headers(.viewer))
            let ids = (jsonObject(stillWaiting)["gates"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }
            #expect(ids?.contains(gate) == false)
            #expect(ids?.count == 1)

            // The record is append-only in the database itself.
            await #expect(throws: PostgresError.self) { try await f.pool.execute("UPDATE gate_decisions SET kind = 'hold'") }
            await #expect(throws: PostgresError.self) { try await f.pool.execute("DELETE FROM gate_decisions") }
        }
    }

    /// Each traffic increase is its own question; a hold shuts a gate again; a rollback
    /// decided on the release answers the rollback hook and shuts every gate.
    @Test func trafficIncreasesAskOneByOneAndARecordedRollbackAnswersTheRollbackHook() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "flagger-prod")
            let increase = try flaggerPayload("confirm-traffic-increase")
            let step1 = try await f.flagger(client, "confirm-traffic-increase", key: key, increase)
            #expect(step1.status == .conflict)
            let gate1 = try #require(jsonObject(step1)["gate"] as? Int)
            // canary-guard-breach lets responders decide.
            #expect(try await f.decide(client, gate: gate1, as: .responder, ["kind": "go", "rationale": "10% looks healthy"]).status == .created)
            #expect(try await f.flagger(client, "confirm-traffic-increase", key: key, increase).status == .ok)
            // After the go, Flagger's next question is the next increase: it waits again.
            let step2 = try await f.flagger(client, "confirm-traffic-increase", key: key, increase)
            #expect(step2.status == .conflict)
            let gate2 = try #require(jsonObject(step2)["gate"] as? Int)
            #expect(gate2 != gate1)
            #expect((jsonObject(step2)["message"] as? String)?.contains("confirm-traffic-increase #2") == true)
            // A go then a hold: the newest decision on a gate is its answer.
            #expect(try await f.decide(client, gate: gate2, as: .lead, ["kind": "go", "rationale": "20% fine"]).status == .created)
            #expect(try await f.decide(client, gate: gate2, as: .lead, ["kind": "hold", "rationale": "p99 creeping, wait"]).status == .created)
            let held = try await client.execute("/api/v1/gates/\(gate2)", method: .get, headers: f.headers(.viewer))
            #expect(jsonObject(held)["answer"] as? String == "wait")

            let rollbackAsk = try flaggerPayload("rollback")
            let noRollback = try await f.flagger(client, "rollback", key: key, rollbackAsk)
            #expect(noRollback.status == .conflict, "\(noRollback.text)")
            let rollback = try await f.decide(
                client,
                gate: gate2,
                as: .responder,
                ["kind": "rollback", "rationale": "error rate 2.3x baseline for 6 minutes"]
            )
            #expect(rollback.status == .created, "\(rollback.text)")
            let rolledBack = try await f.flagger(client, "rollback", key: key, rollbackAsk)
            #expect(rolledBack.status == .ok, "\(rolledBack.text)")
            #expect(jsonObject(rolledBack)["answer"] as? String == "rollback")
            // Every gate of the release is shut now, even one that had a go.
            let shut = try await client.execute("/api/v1/gates/\(gate1)", method: .get, headers: f.headers(.viewer))
            #expect(jsonObject(shut)["answer"] as? String == "rollback")
            #expect(try await f.flagger(client, "confirm-promotion", key: key, try flaggerPayload("confirm-promotion")).status == .conflict)
            // The next release starts clean.
            #expect(try await f.flagger(client, "rollback", key: key, try flaggerPayload("rollback", checksum: "beef01")).status == .conflict)

            // A runbook that forbids rollback refuses one.
            let dq = try await f.flagger(
                client,
                "confirm-rollout",
                key: key,
                try flaggerPayload("confirm-rollout", checksum: "dq1", metadata: ["runbook": "data-quality-breach"])
            )
            let dqGate = try #require(jsonObject(dq)["gate"] as? Int)
            let forbidden = try await f.decide(client, gate: dqGate, as: .manager, ["kind": "rollback", "rationale": "x"])
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.text.contains("does not allow rollback"), "\(forbidden.text)")
        }
    }

    /// Flagger's event hook lands on the release's timeline; every bad input is a 400 that
    /// names its field and stores nothing; the key in the URL never reaches the logs.
    @Test func eventsAreKeptAndBadCallsAreRefusedByField() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "flagger-prod")
            let event = try await f.flagger(client, "event", key: key, try flaggerPayload("event"))
            #expect(event.status == .ok, "\(event.text)")
            let ask = try await f.flagger(client, "confirm-promotion", key: key, try flaggerPayload("confirm-promotion"))
            let gate = try #require(jsonObject(ask)["gate"] as? Int)
            let page = jsonObject(try await client.execute("/api/v1/gates/\(gate)", method: .get, headers: f.headers(.viewer)))
            let events = try #require(page["events"] as? [[String: Any]])
            #expect(events.first?["message"] as? String == "Advance ranker.model-serving canary weight 10")
            #expect(events.first?["event_type"] as? String == "Normal")
            #expect(events.first?["at"] as? String == "2025-12-01T10:00:00Z", "the controller's timestamp: \(events)")
            #expect(page["runbook"] as? String == "canary-guard-breach")

            func refused(_ hook: String, _ body: String, field: String, status: HTTPResponse.Status = .badRequest) async throws {
                let r = try await f.flagger(client, hook, key: key, ByteBuffer(string: body))
                #expect(r.status == status, "\(hook) \(body) → \(r.status) \(r.text)")
                #expect(errorField(r) == field, "\(hook) \(body) → \(r.text)")
            }
            try await refused("confirm-rollout", "{not json", field: "body")
            try await refused("confirm-rollout", "[1]", field: "body")
            try await refused("confirm-rollout", #"{"name":"ranker","namespace":"ns"}"#, field: "checksum")
            try await refused("confirm-rollout", #"{"name":7,"namespace":"ns","checksum":"c"}"#, field: "name")
            try await refused("confirm-rollout", #"{"name":"r","namespace":"ns","checksum":"c","metadata":{"a":1}}"#, field: "metadata.a")
            try await refused("confirm-rollout", #"{"name":"r","namespace":"ns","checksum":"c","metadata":"x"}"#, field: "metadata")
            try await refused(
                "confirm-rollout",
                #"{"name":"r","namespace":"ns","checksum":"c","metadata":{"runbook":"nope"}}"#,
                field: "metadata.runbook"
            )
            try await refused("event", #"{"name":"r","namespace":"ns","checksum":"c","metadata":{}}"#, field: "metadata.eventMessage")
            try await refused("pre-rollout", #"{"name":"r","namespace":"ns","checksum":"c"}"#, field: "hook", status: .notFound)
            let releases: Int = try await f.pool.query("SELECT count(*) AS n FROM releases")[0].decode("n")
            #expect(releases == 1, "a refused call stores nothing")

            // The wrong key kind, a dead key, no key.
            let am = try await f.flagger(client, "confirm-rollout", key: f.integrationKey, try flaggerPayload("confirm-rollout"))
            #expect(am.status == .forbidden, "\(am.text)")
            #expect(am.text.contains("alertmanager"))
            let dead = try await f.flagger(client, "confirm-rollout", key: "hr_int_nope", try flaggerPayload("confirm-rollout"))
            #expect(dead.status == .unauthorized)
            let none = try await client.execute(
                "/api/v1/flagger/confirm-rollout",
                method: .post,
                headers: [.contentType: "application/json"],
                body: try flaggerPayload("confirm-rollout")
            )
            #expect(none.status == .unauthorized)
            #expect(!f.logs.all.contains(key), "the key in the URL reached the log")
            let audit = try await client.execute("/api/v1/audit", method: .get, headers: f.headers(.admin))
            #expect(audit.status == .ok && !audit.text.contains(key))
            let metrics = try await client.execute("/metrics", method: .get, headers: f.headers(.viewer))
            #expect(metrics.status == .ok && metrics.text.contains("flagger") && !metrics.text.contains(key), "\(metrics.text.prefix(300))")
        }
    }

    /// A canary-guard alert on the release's target while a gate waits: the gate and the
    /// incident link to each other, the controller's events reach the incident's timeline,
    /// and a rollback decided on the incident answers the rollback hook.
    @Test func aGuardBreachIncidentLinksToTheGateAndItsRollbackRollsTheReleaseBack() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "flagger-prod")
            let step = try await f.flagger(client, "confirm-traffic-increase", key: key, try flaggerPayload("confirm-traffic-increase"))
            let gate = try #require(jsonObject(step)["gate"] as? Int)
            // An incident on another model, and the breach on this target.
            let other = ["alertname": "FeatureDriftHigh", "model": "fraud-scorer", "feature": "amount"]
            _ = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("o1", "firing", other)])
            )
            let breach = [
                "alertname": "CanaryGuardBreached", "model": "ranker", "rollout": "ranker", "namespace": "model-serving", "guard": "error_rate_ratio",
            ]
            let fired = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("g1", "firing", breach)])
            )
            let ref = try #require((jsonObject(fired)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)
            let staging = ["alertname": "ModelServingSLOBurn", "service": "ranker", "namespace": "staging"]
            _ = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("s1", "firing", staging)])
            )

            #expect(
                try await f.flagger(client, "confirm-traffic-increase", key: key, try flaggerPayload("confirm-traffic-increase")).status == .conflict
            )
            let shown = jsonObject(try await client.execute("/api/v1/gates/\(gate)", method: .get, headers: f.headers(.viewer)))
            let linked = try #require(shown["incidents"] as? [[String: Any]])
            #expect(linked.map { $0["ref"] as? String } == [ref], "only the breach on this target: \(linked)")

            // The controller's events reach the incident's timeline.
            #expect(try await f.flagger(client, "event", key: key, try flaggerPayload("event")).status == .ok)
            let incident = try await client.execute("/api/v1/incidents/\(ref)", method: .get, headers: f.headers(.viewer))
            #expect(incident.text.contains("Flagger: Advance ranker.model-serving canary weight 10"), "\(incident.text.prefix(2000))")

            // A hold at the gate while people look, with the guards the controller sent.
            #expect(
                try await f.decide(client, gate: gate, as: .lead, ["kind": "hold", "rationale": "guard breached; freeze at 10%"]).status == .created
            )
            // No rollback yet; then a responder (canary-guard-breach allows it) decides one on the incident.
            #expect(try await f.flagger(client, "rollback", key: key, try flaggerPayload("rollback")).status == .conflict)
            let decided = try await client.execute(
                "/api/v1/incidents/\(ref)/decisions",
                method: .post,
                headers: f.headers(.responder),
                body: ByteBuffer(
                    bytes: try JSONSerialization.data(withJSONObject: [
                        "kind": "rollback", "target": ["model": "ranker", "from_version": "2026-11-30", "to_version": "2026-11-02"],
                        "rationale": "error rate 2.4x baseline for 6 minutes",
                    ])
                )
            )
            #expect(decided.status == .created, "\(decided.text)")
            let rolledBack = try await f.flagger(client, "rollback", key: key, try flaggerPayload("rollback"))
            #expect(rolledBack.status == .ok, "\(rolledBack.text)")
            let after = jsonObject(try await client.execute("/api/v1/gates/\(gate)", method: .get, headers: f.headers(.viewer)))
            #expect(after["answer"] as? String == "rollback")
            #expect(
                try await f.flagger(client, "confirm-traffic-increase", key: key, try flaggerPayload("confirm-traffic-increase")).status == .conflict
            )

            // The incident's postmortem draft carries the gate's decisions.
            let draft = try #require(try await PostmortemGenerator(pool: f.pool).facts(number: IncidentRef.number(ref) ?? 0))
            let markdown = try DocumentRenderer(directory: TestDatabase.checkoutRoot.appendingPathComponent("templates")).postmortem(draft)
            #expect(markdown.contains("## Rollout decisions"))
            #expect(
                markdown.contains("- **hold** at model-serving/ranker (6d5f8c7b9), confirm-traffic-increase #1, by lead-user (lead)"),
                "\(markdown)"
            )
            #expect(markdown.contains("  - Why: guard breached; freeze at 10%"))
            #expect(markdown.contains("  - Guards seen: error_rate_ratio 1.1, model ranker, p99_latency_ratio 1.05, version 2026-11-30"))
        }
    }

    /// People see waiting rollouts on the Now page, open the gate's page (the guards, the
    /// runbook, who may decide, the incidents on the target) and decide through its form;
    /// someone the runbook does not allow sees why, and a posted decision is refused.
    @Test func theNowPageListsWaitingRolloutsAndTheGatePageTakesDecisions() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "flagger-prod")
            let asked = try await f.flagger(
                client,
                "confirm-promotion",
                key: key,
                try flaggerPayload("confirm-promotion", metadata: ["runbook": "feature-drift", "quality_proxy_drop": "0.01"])
            )
            let gate = try #require(jsonObject(asked)["gate"] as? Int)
            let breach = ["alertname": "CanaryGuardBreached", "model": "ranker", "rollout": "ranker"]
            let fired = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("g1", "firing", breach)])
            )
            let ref = try #require((jsonObject(fired)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)
            _ = try await f.flagger(
                client,
                "confirm-promotion",
                key: key,
                try flaggerPayload("confirm-promotion", metadata: ["runbook": "feature-drift"])
            )

            var responder = Browser(client)
            _ = try await responder.signIn("responder-user", AccessFixture.password)
            let now = try await responder.request("/")
            #expect(now.text.contains("Rollouts waiting for a decision"))
            #expect(now.text.contains(#"<a href="/gates/\#(gate)">model-serving/ranker</a>"#), "\(now.text)")
            let page = try await responder.request("/gates/\(gate)")
            #expect(page.status == .ok)
            #expect(page.text.contains("Waiting: the controller is told to wait"))
            #expect(page.text.contains("confirm-promotion (promote the canary)"))
            #expect(page.text.contains("<th scope=\"row\">model</th><td>ranker</td>"), "the guards the controller sent")
            #expect(page.text.contains(#"<a href="/runbooks/feature-drift">"#))
            #expect(page.text.contains(#"<a href="/incidents/\#(IncidentRef.number(ref) ?? 0)">\#(ref)</a>"#), "the breach on the target")
            #expect(page.text.contains("You cannot decide here: lead, manager, admin (from runbook feature-drift)"))
            #expect(!page.text.contains(#"id="decision-form""#))
            let csrf = try #require(Browser.csrfToken(in: page))
            let refused = try await responder.request(
                "/gates/\(gate)/decisions",
                method: .post,
                form: ["csrf_token": csrf, "kind": "go", "rationale": "fine"]
            )
            #expect(refused.status == .forbidden && refused.text.contains("feature-drift lets lead and up decide"), "\(refused.text)")
            // The incident's page links back to the rollout.
            let incident = try await responder.request("/incidents/\(IncidentRef.number(ref) ?? 0)")
            #expect(incident.text.contains("Rollouts on this target") && incident.text.contains(#"<a href="/gates/\#(gate)">"#))

            var lead = Browser(client)
            _ = try await lead.signIn("lead-user", AccessFixture.password)
            let leadPage = try await lead.request("/gates/\(gate)")
            #expect(leadPage.text.contains(#"id="decision-form""#))
            let leadCSRF = try #require(Browser.csrfToken(in: leadPage))
            let noWhy = try await lead.request(
                "/gates/\(gate)/decisions",
                method: .post,
                form: ["csrf_token": leadCSRF, "kind": "go", "rationale": ""]
            )
            #expect(noWhy.status == .badRequest && noWhy.text.contains("rationale: is required"), "\(noWhy.text)")
            let go = try await lead.request(
                "/gates/\(gate)/decisions",
                method: .post,
                form: [
                    "csrf_token": leadCSRF, "kind": "go", "rationale": "quality proxy within 1 point",
                    "alternatives_considered": "another day at 50%",
                ]
            )
            #expect(go.status == .seeOther && go.headers[.location] == "/gates/\(gate)#decisions")
            let after = try await lead.request("/gates/\(gate)")
            #expect(after.text.contains("Go: the controller is told it may promote the canary."))
            #expect(after.text.contains("go by lead-user") && after.text.contains("quality proxy within 1 point"))
            #expect(after.text.contains("Alternatives considered: another day at 50%"))
            #expect(try await f.flagger(client, "confirm-promotion", key: key, try flaggerPayload("confirm-promotion")).status == .ok)
            #expect(!(try await lead.request("/").text.contains("Rollouts waiting for a decision")))
            #expect(try await lead.request("/gates/999999").status == .notFound)
        }
    }

    /// A gate nobody decides past its wait limit raises an incident through ingestion (the
    /// canary-gate-waiting runbook, linked to the release), once; a decision clears it and
    /// the incident resolves itself.
    @Test func aGateWaitingPastItsLimitRaisesAnIncidentThatADecisionClears() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "flagger-prod")
            for (limit, ok) in [("5s", false), ("soon", false), ("99999999999d", false), ("31d", false), ("30m", true)] {
                let r = try await f.flagger(
                    client,
                    "confirm-promotion",
                    key: key,
                    try flaggerPayload("confirm-promotion", metadata: ["wait_limit": limit])
                )
                #expect((r.status == .conflict) == ok, "\(limit): \(r.status) \(r.text)")
                if !ok { #expect(errorField(r) == "metadata.wait_limit") }
            }
            let asked = try await f.flagger(
                client,
                "confirm-promotion",
                key: key,
                try flaggerPayload("confirm-promotion", metadata: ["wait_limit": "30m"])
            )
            let gate = try #require(jsonObject(asked)["gate"] as? Int)
            let watch = GateWatch(
                gates: GateStore(pool: f.pool),
                ingest: IngestStore(pool: f.pool),
                catalog: RunbookCatalog(store: RunbookStore(pool: f.pool)),
                publicURL: "https://handrail.example.com",
                logger: Logger(label: "test")
            )
            func waiting() async throws -> [[String: Any]] {
                let list = try await client.execute("/api/v1/incidents?runbook=canary-gate-waiting", method: .get, headers: f.headers(.viewer))
                return jsonObject(list)["incidents"] as? [[String: Any]] ?? []
            }
            try await watch.tick()
            #expect(try await waiting().isEmpty, "not overdue yet")
            try await f.pool.execute("UPDATE gates SET opened_at = now() - interval '31 minutes' WHERE id = \(Int64(gate))")
            try await watch.tick()
            try await watch.tick()
            let raised = try await waiting()
            #expect(raised.count == 1, "\(raised)")
            let ref = try #require(raised.first?["ref"] as? String)
            let detail = try await client.execute("/api/v1/incidents/\(ref)", method: .get, headers: f.headers(.viewer))
            #expect(
                detail.text.contains("model-serving/ranker at 6d5f8c7b9 has waited 31 min for a decision on confirm-promotion"),
                "\(detail.text.prefix(1500))"
            )
            #expect(detail.text.contains("https://handrail.example.com/gates/\(gate)"))
            // The controller's next question links the incident to the release.
            _ = try await f.flagger(client, "confirm-promotion", key: key, try flaggerPayload("confirm-promotion", metadata: ["wait_limit": "30m"]))
            let shown = jsonObject(try await client.execute("/api/v1/gates/\(gate)", method: .get, headers: f.headers(.viewer)))
            #expect((shown["incidents"] as? [[String: Any]])?.map { $0["ref"] as? String } == [ref])

            // A person decides (a hold is a decision too): the alert clears and the incident resolves.
            #expect(
                try await f.decide(client, gate: gate, as: .lead, ["kind": "hold", "rationale": "waiting for the Monday eval"]).status == .created
            )
            try await watch.tick()
            let after = jsonObject(try await client.execute("/api/v1/incidents/\(ref)", method: .get, headers: f.headers(.viewer)))
            #expect((after["incident"] as? [String: Any])?["state"] as? String == "resolved")
            try await watch.tick()
            #expect(try await waiting().count == 1, "raised once, cleared once")
        }
    }

    /// The owners' handoff (the release's runbook names the rotation) lists the rollout
    /// decisions of its window and the gates still waiting at its end.
    @Test func theHandoffListsRolloutsDecidedAndStillWaiting() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            try await f.makeRotation(client)
            let key = try await f.key(.canary, name: "flagger-prod")
            // feature-drift's owners are ml-platform.
            let meta = ["runbook": "feature-drift"]
            let first = try await f.flagger(client, "confirm-rollout", key: key, try flaggerPayload("confirm-rollout", metadata: meta))
            let gate = try #require(jsonObject(first)["gate"] as? Int)
            #expect(
                try await f.decide(client, gate: gate, as: .lead, ["kind": "go", "rationale": "shadow traffic clean for 48 h"]).status == .created
            )
            _ = try await f.flagger(client, "confirm-rollout", key: key, try flaggerPayload("confirm-rollout", metadata: meta))
            _ = try await f.flagger(client, "confirm-traffic-increase", key: key, try flaggerPayload("confirm-traffic-increase", metadata: meta))
            // Another team's rollout is not in ml-platform's handoff.
            _ = try await f.flagger(client, "confirm-rollout", key: key, try flaggerPayload("confirm-rollout", checksum: "other1"))

            let now = Date()
            let made = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs",
                method: .post,
                headers: f.headers(.lead),
                body: ByteBuffer(
                    bytes: try JSONSerialization.data(withJSONObject: [
                        "from": RFC3339.format(now.addingTimeInterval(-1800)), "to": RFC3339.format(now.addingTimeInterval(1800)),
                    ])
                )
            )
            #expect(made.status == .created, "\(made.text)")
            let id = try #require(jsonObject(made)["id"] as? Int)
            let md = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs/\(id)",
                headers: [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "text/markdown"]
            )
            let rollouts = try #require(md.text.components(separatedBy: "## Rollouts").last?.components(separatedBy: "## Runbook gaps").first)
            #expect(rollouts.contains("- go at **model-serving/ranker** (6d5f8c7b9), confirm-rollout, by lead-user"), "\(rollouts)")
            #expect(rollouts.contains("Why: shadow traffic clean for 48 h"))
            #expect(rollouts.contains("- Still waiting: **model-serving/ranker** (6d5f8c7b9), confirm-traffic-increase #1"))
            #expect(!rollouts.contains("other1"))
            #expect(!md.text.contains("A quiet window"))
        }
    }

    /// A person may open a gate before the controller asks; the controller's first question
    /// finds it (and takes the release over), and the person's record stays.
    @Test func aPersonOpensAGateThatTheControllerThenAsks() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            func open(_ body: [String: Any], as role: Role = .responder) async throws -> TestResponse {
                try await client.execute(
                    "/api/v1/gates",
                    method: .post,
                    headers: f.headers(role),
                    body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
                )
            }
            let release: [String: Any] = ["namespace": "model-serving", "name": "ranker", "checksum": "6d5f8c7b9"]
            let opened = try await open(release.merging(["stage": "confirm-promotion", "runbook": "canary-guard-breach"]) { $1 })
            #expect(opened.status == .created, "\(opened.text)")
            let gate = try #require(jsonObject(opened)["gate"] as? Int ?? jsonObject(opened)["id"] as? Int)
            #expect(jsonObject(opened)["controller"] as? String == "manual")
            #expect(errorField(try await open(release.merging(["stage": "soon"]) { $1 })) == "stage")
            #expect(errorField(try await open(release.merging(["runbook": "nope"]) { $1 })) == "runbook")
            #expect(errorField(try await open(["namespace": "x", "checksum": "y"])) == "name")
            #expect(errorField(try await open(release.merging(["wait_limit": "1s"]) { $1 })) == "wait_limit")
            #expect(try await open(release, as: .viewer).status == .forbidden)

            let key = try await f.key(.canary, name: "flagger-prod")
            let asked = try await f.flagger(client, "confirm-promotion", key: key, try flaggerPayload("confirm-promotion"))
            #expect(asked.status == .conflict)
            #expect(jsonObject(asked)["gate"] as? Int == gate)
            let shown = jsonObject(try await client.execute("/api/v1/gates/\(gate)", method: .get, headers: f.headers(.viewer)))
            #expect(shown["controller"] as? String == "flagger")
            #expect(shown["times_asked"] as? Int == 2)
        }
    }

    /// Argo Rollouts' web metric: always 200 with the decision as JSON, for the
    /// AnalysisTemplate in the README (`successCondition: result.decision == "go"`).
    @Test func argoRolloutsReadsTheSameGateAsJSON() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let key = try await f.key(.canary, name: "argo-prod")
            let headers: HTTPFields = [.authorization: "Bearer \(key)", .accept: "application/json"]
            let uri = "/api/v1/argo/gate?namespace=model-serving&name=ranker&checksum=5f7d9c&stage=confirm-promotion&runbook=serving-slo-burn"
            let first = try await client.execute(uri, method: .get, headers: headers)
            #expect(first.status == .ok, "\(first.text)")
            #expect(jsonObject(first)["decision"] as? String == "wait")
            let gate = try #require(jsonObject(first)["gate"] as? Int)
            #expect(try await f.decide(client, gate: gate, as: .responder, ["kind": "go", "rationale": "SLO burn flat"]).status == .created)
            #expect(jsonObject(try await client.execute(uri, method: .get, headers: headers))["decision"] as? String == "go")
            // The same release asked through Flagger's hook gets the same answer.
            let viaFlagger = try await f.flagger(
                client,
                "confirm-promotion",
                key: key,
                ByteBuffer(string: #"{"name":"ranker","namespace":"model-serving","checksum":"5f7d9c","phase":"Progressing"}"#)
            )
            #expect(viaFlagger.status == .ok)
            #expect(try await f.decide(client, gate: gate, as: .responder, ["kind": "rollback", "rationale": "SLO burn 14x"]).status == .created)
            #expect(jsonObject(try await client.execute(uri, method: .get, headers: headers))["decision"] as? String == "rollback")

            let missing = try await client.execute("/api/v1/argo/gate?namespace=x&checksum=c", method: .get, headers: headers)
            #expect(missing.status == .badRequest)
            #expect(errorField(missing) == "name")
            let badStage = try await client.execute("/api/v1/argo/gate?namespace=x&name=y&checksum=c&stage=later", method: .get, headers: headers)
            #expect(errorField(badStage) == "stage")
        }
    }
}
