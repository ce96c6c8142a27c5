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

private func json(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
}

private func iso(_ date: Date) -> String { RFC3339.format(date) }

private let driftLabels = ["alertname": "FeatureDriftHigh", "model": "ranker", "feature": "age"]

extension AccessFixture {
    /// ml-platform (the owners of feature-drift): lead-user and responder-user weekly, and
    /// responder-user covering the hour around now, so who is on call now is known.
    func makeRotation(_ client: RouterTestClient<RouterResponder<HandrailRequestContext>>) async throws {
        let created = try await client.execute(
            "/api/v1/rotations",
            method: .post,
            headers: headers(.lead),
            body: json([
                "name": "ml-platform", "members": ["lead-user", "responder-user"], "time_zone": "Europe/Berlin",
                "shift_length": "1w", "handoff": "Monday 09:00", "start_date": "2026-01-05",
            ])
        )
        #expect(created.status == .created, "\(created.text)")
        let now = Date()
        let cover = try await client.execute(
            "/api/v1/rotations/ml-platform/overrides",
            method: .post,
            headers: headers(.lead),
            body: json([
                "user": "responder-user", "from": iso(now.addingTimeInterval(-3600)), "to": iso(now.addingTimeInterval(3600)),
                "reason": "swap with lead",
            ])
        )
        #expect(cover.status == .created, "\(cover.text)")
    }

    func fireDrift(_ client: RouterTestClient<RouterResponder<HandrailRequestContext>>, status: String = "firing") async throws -> String {
        let sent = try await client.execute(
            "/api/v1/alerts/alertmanager",
            method: .post,
            headers: amHeaders,
            body: alertmanagerBody([("d1", status, driftLabels)])
        )
        #expect(sent.status == .ok, "\(sent.text)")
        return ((jsonObject(sent)["alerts"] as? [[String: Any]])?.first?["incident"] as? String) ?? "none"
    }
}

@Suite struct RotationRoutesTests {
    @Test func leadsEditRotationsEveryoneReadsWhoIsOnCall() async throws {
        try await AccessFixture.with { f, client in
            let refused = try await client.execute(
                "/api/v1/rotations",
                method: .post,
                headers: f.headers(.responder),
                body: json([
                    "name": "x", "members": ["responder-user"], "time_zone": "UTC", "shift_length": "1w", "handoff": "09:00",
                    "start_date": "2026-01-05",
                ])
            )
            #expect(refused.status == .forbidden)
            let badZone = try await client.execute(
                "/api/v1/rotations",
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "name": "x", "members": ["responder-user"], "time_zone": "Europe/Atlantis", "shift_length": "1w", "handoff": "09:00",
                    "start_date": "2026-01-05",
                ])
            )
            #expect(badZone.status == .badRequest)
            #expect(badZone.text.contains("\"field\":\"time_zone\""))
            let unknown = try await client.execute(
                "/api/v1/rotations",
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "name": "x", "members": ["responder-user", "nobody"], "time_zone": "UTC", "shift_length": "1w", "handoff": "09:00",
                    "start_date": "2026-01-05",
                ])
            )
            #expect(unknown.status == .badRequest)
            #expect(unknown.text.contains("\"field\":\"members[1]\""))
            let count = try await f.pool.query("SELECT count(*) AS n FROM rotations")[0].decode("n", as: Int.self)
            #expect(count == 0)

            try await f.makeRotation(client)
            let again = try await client.execute(
                "/api/v1/rotations",
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "name": "ml-platform", "members": ["lead-user"], "time_zone": "UTC", "shift_length": "1d", "handoff": "09:00",
                    "start_date": "2026-01-05",
                ])
            )
            #expect(again.status == .conflict)

            // The override holds now; outside it, the schedule.
            let now = try await client.execute("/api/v1/rotations/ml-platform/oncall", headers: f.headers(.viewer))
            #expect(jsonObject(now)["user"] as? String == "responder-user")
            #expect((jsonObject(now)["override"] as? [String: Any])?["reason"] as? String == "swap with lead")
            // Shift 0 (from Monday 5 January 2026, 09:00 Berlin) is lead-user's, shift 1 responder-user's.
            let first = try await client.execute("/api/v1/rotations/ml-platform/oncall?at=2026-01-07T12:00:00Z", headers: f.headers(.viewer))
            #expect(jsonObject(first)["user"] as? String == "lead-user")
            #expect(jsonObject(first)["until"] as? String == "2026-01-12T08:00:00Z")
            let second = try await client.execute("/api/v1/rotations/ml-platform/oncall?at=2026-01-12T08:00:00Z", headers: f.headers(.viewer))
            #expect(jsonObject(second)["user"] as? String == "responder-user")
            let badAt = try await client.execute("/api/v1/rotations/ml-platform/oncall?at=tuesday", headers: f.headers(.viewer))
            #expect(badAt.status == .badRequest)

            let shifts = try await client.execute(
                "/api/v1/rotations/ml-platform/shifts?from=2026-01-07T00:00:00Z&count=3",
                headers: f.headers(.viewer)
            )
            let list = try #require(jsonObject(shifts)["shifts"] as? [[String: Any]])
            #expect(list.compactMap { $0["scheduled"] as? String } == ["lead-user", "responder-user", "lead-user"])
            #expect(list.first?["from"] as? String == "2026-01-05T08:00:00Z")

            // Edit: one member now; the audit log has both changes.
            let edited = try await client.execute(
                "/api/v1/rotations/ml-platform",
                method: .put,
                headers: f.headers(.lead),
                body: json([
                    "members": ["manager-user"], "time_zone": "Europe/Berlin", "shift_length": "1w", "handoff": "Monday 09:00",
                    "start_date": "2026-01-05",
                ])
            )
            #expect(edited.status == .ok, "\(edited.text)")
            let later = try await client.execute("/api/v1/rotations/ml-platform/oncall?at=2026-01-12T08:00:00Z", headers: f.headers(.viewer))
            #expect(jsonObject(later)["user"] as? String == "manager-user")
            let audited = try await f.pool.query("SELECT action FROM audit_log WHERE action LIKE 'rotation.%' ORDER BY id").map {
                try $0.decode("action", as: String.self)
            }
            #expect(audited == ["rotation.created", "rotation.override_added", "rotation.updated"])

            let listed = try await client.execute("/api/v1/rotations", headers: f.headers(.viewer))
            let rotations = try #require(jsonObject(listed)["rotations"] as? [[String: Any]])
            #expect(rotations.first?["on_call"] as? String == "responder-user")
        }
    }
}

@Suite struct OwnershipRoutesTests {
    @Test func anIncidentIsOwnedByWhoeverIsOnCallAndOwnershipHistoryReadsInOrder() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            try await f.makeRotation(client)
            let ref = try await f.fireDrift(client)

            var detail = jsonObject(try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer)))
            var incident = try #require(detail["incident"] as? [String: Any])
            #expect(incident["owner"] as? String == "responder-user")
            #expect(incident["owner_pending"] as? Bool == true)
            let opened = (detail["timeline"] as? [[String: Any]])?.first { $0["type"] as? String == "opened" }
            #expect(((opened?["data"] as? [String: Any])?["owner_reason"] as? String)?.contains("responder-user covers ml-platform") == true)

            // Acknowledging accepts the assignment.
            let ack = try await client.execute("/api/v1/incidents/\(ref)/acknowledge", method: .post, headers: f.headers(.responder))
            #expect(ack.status == .ok)
            incident = try #require(jsonObject(ack)["incident"] as? [String: Any])
            #expect(incident["owner_pending"] as? Bool == false)

            let mine = try await client.execute("/api/v1/incidents?owner=me", headers: f.headers(.responder))
            #expect((jsonObject(mine)["incidents"] as? [[String: Any]])?.count == 1)
            let notMine = try await client.execute("/api/v1/incidents?owner=me", headers: f.headers(.lead))
            #expect((jsonObject(notMine)["incidents"] as? [[String: Any]])?.count == 0)

            // take → assign → accept → hand over.
            let take = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/owner",
                method: .post,
                headers: f.headers(.lead),
                body: json(["action": "take", "reason": "I know this model"])
            )
            #expect(take.status == .ok, "\(take.text)")
            let noReason = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/owner",
                method: .post,
                headers: f.headers(.lead),
                body: json(["action": "assign", "to": "manager-user"])
            )
            #expect(noReason.status == .badRequest)
            #expect(noReason.text.contains("\"field\":\"reason\""))
            let toViewer = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/owner",
                method: .post,
                headers: f.headers(.lead),
                body: json(["action": "assign", "to": "viewer-user", "reason": "x"])
            )
            #expect(toViewer.status == .badRequest)
            #expect(toViewer.text.contains("\"field\":\"to\""))
            let assign = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/owner",
                method: .post,
                headers: f.headers(.lead),
                body: json(["action": "assign", "to": "manager-user", "reason": "needs a manager's call"])
            )
            incident = try #require(jsonObject(assign)["incident"] as? [String: Any])
            #expect(incident["owner"] as? String == "manager-user")
            #expect(incident["owner_pending"] as? Bool == true)
            let wrongAccept = try await client.execute("/api/v1/incidents/\(ref)/roles/owner/accept", method: .post, headers: f.headers(.responder))
            #expect(wrongAccept.status == .conflict)
            let accept = try await client.execute("/api/v1/incidents/\(ref)/roles/owner/accept", method: .post, headers: f.headers(.manager))
            #expect((jsonObject(accept)["incident"] as? [String: Any])?["owner_pending"] as? Bool == false)
            let notHolder = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/owner",
                method: .post,
                headers: f.headers(.lead),
                body: json(["action": "hand_over", "to": "responder-user", "reason": "shift ends"])
            )
            #expect(notHolder.status == .conflict)
            let handOver = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/owner",
                method: .post,
                headers: f.headers(.manager),
                body: json(["action": "hand_over", "to": "responder-user", "reason": "my shift ends"])
            )
            #expect(handOver.status == .ok)
            let scribe = try await client.execute(
                "/api/v1/incidents/\(ref)/roles/scribe",
                method: .post,
                headers: f.headers(.lead),
                body: json(["action": "take"])
            )
            #expect(scribe.status == .ok)

            detail = jsonObject(try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer)))
            let changes = try #require(detail["timeline"] as? [[String: Any]]).filter {
                ["role_changed", "role_accepted"].contains($0["type"] as? String)
            }
            let story = changes.map { e -> String in
                let d = e["data"] as? [String: Any] ?? [:]
                if e["type"] as? String == "role_accepted" { return "\(d["role"]!): \(d["user"]!) accepted" }
                return
                    "\(d["role"]!): \(d["action"]!) \(d["from"] as? String ?? "-") → \(d["to"]!) by \(e["actor"]!)\((d["reason"] as? String).map { " (\($0))" } ?? "")"
            }
            #expect(
                story == [
                    "owner: rotation - → responder-user by am (responder-user covers ml-platform (override) as the incident opens)",
                    "owner: responder-user accepted",
                    "owner: take responder-user → lead-user by lead-user (I know this model)",
                    "owner: assign lead-user → manager-user by lead-user (needs a manager's call)",
                    "owner: manager-user accepted",
                    "owner: hand_over manager-user → responder-user by manager-user (my shift ends)",
                    "scribe: take - → lead-user by lead-user",
                ]
            )
            let roles = try #require(detail["roles"] as? [[String: Any]])
            #expect(roles.map { "\($0["role"]!)=\($0["user"]!) pending=\($0["pending"] ?? "?")" }.count == 2)
            #expect(roles.first?["role"] as? String == "owner" && roles.first?["user"] as? String == "responder-user")
        }
    }

    @Test func withNoRotationTheIncidentIsUnownedAndSaysWhy() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let ref = try await f.fireDrift(client)
            let detail = jsonObject(try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer)))
            #expect((detail["incident"] as? [String: Any])?["owner"] == nil || (detail["incident"] as? [String: Any])?["owner"] is NSNull)
            let opened = (detail["timeline"] as? [[String: Any]])?.first { $0["type"] as? String == "opened" }
            #expect((opened?["data"] as? [String: Any])?["owner_reason"] as? String == "there is no rotation \"ml-platform\" (the runbook's owners)")
        }
    }
}

@Suite struct DecisionRoutesTests {
    @Test func decisionsAreRecordedByAllowedPeopleExecutedAndGivenAnOutcome() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let ref = try await f.fireDrift(client)
            let path = "/api/v1/incidents/\(ref)/decisions"
            let rollback: [String: Any] = [
                "kind": "rollback", "target": ["model": "ranker", "from_version": "v42", "to_version": "v41"],
                "rationale": "drift started with v42", "customer_impact": "rankings stale for 20 min", "alternatives_considered": "hold",
            ]
            let byKey = try await client.execute(path, method: .post, headers: f.amHeaders, body: json(rollback))
            #expect(byKey.status == .forbidden)
            // feature-drift lets lead and up decide.
            let byResponder = try await client.execute(path, method: .post, headers: f.headers(.responder), body: json(rollback))
            #expect(byResponder.status == .forbidden)
            #expect(byResponder.text.contains("runbook feature-drift lets lead and up record decisions; you are responder"))
            var noRationale = rollback
            noRationale["rationale"] = "  "
            let missing = try await client.execute(path, method: .post, headers: f.headers(.lead), body: json(noRationale))
            #expect(missing.status == .badRequest)
            #expect(missing.text.contains("\"field\":\"rationale\""))
            let badKind = try await client.execute(
                path,
                method: .post,
                headers: f.headers(.lead),
                body: json(rollback.merging(["kind": "panic"]) { $1 })
            )
            #expect(badKind.text.contains("\"field\":\"kind\""))
            #expect(try await f.pool.query("SELECT count(*) AS n FROM decisions")[0].decode("n", as: Int.self) == 0)

            let recorded = try await client.execute(path, method: .post, headers: f.headers(.lead), body: json(rollback))
            #expect(recorded.status == .created, "\(recorded.text)")
            let decision = jsonObject(recorded)
            let id = try #require(decision["id"] as? Int)
            #expect(decision["decided_by"] as? String == "lead-user")
            #expect(decision["status"] as? String == "awaiting_execution")
            #expect(decision["verification_window"] as? Int == 1800)

            let outcomeEarly = try await client.execute(
                "\(path)/\(id)/outcome",
                method: .post,
                headers: f.headers(.lead),
                body: json(["outcome": "effective"])
            )
            #expect(outcomeEarly.status == .conflict)
            // Executing a decision follows the same policy as recording it.
            let executedByResponder = try await client.execute(
                "\(path)/\(id)/execute",
                method: .post,
                headers: f.headers(.responder),
                body: json(["note": "argo rollback done"])
            )
            #expect(executedByResponder.status == .forbidden)
            #expect(executedByResponder.text.contains("runbook feature-drift lets lead and up record decisions; you are responder"))
            let executed = try await client.execute(
                "\(path)/\(id)/execute",
                method: .post,
                headers: f.headers(.lead),
                body: json(["note": "argo rollback done"])
            )
            #expect(executed.status == .ok, "\(executed.text)")
            // The alert still fires and the window is open: no proposal yet.
            var proposal = try #require(jsonObject(executed)["proposal"] as? [String: Any])
            #expect(proposal["outcome"] == nil)
            #expect((proposal["check"] as? String)?.hasPrefix("1 of 1 alert still firing") == true)

            // The monitor clears the alert: Handrail proposes "effective".
            _ = try await f.fireDrift(client, status: "resolved")
            let read = jsonObject(try await client.execute("\(path)/\(id)", headers: f.headers(.viewer)))
            proposal = try #require(read["proposal"] as? [String: Any])
            #expect(proposal["outcome"] as? String == "effective")
            let override = try await client.execute(
                "\(path)/\(id)/outcome",
                method: .post,
                headers: f.headers(.lead),
                body: json(["outcome": "reverted"])
            )
            #expect(override.status == .badRequest)
            #expect(override.text.contains("\"field\":\"note\""))
            let confirmed = try await client.execute(
                "\(path)/\(id)/outcome",
                method: .post,
                headers: f.headers(.lead),
                body: json(["outcome": "effective"])
            )
            #expect(confirmed.status == .ok)
            let outcome = try #require(jsonObject(confirmed)["outcome"] as? [String: Any])
            #expect(outcome["confirmed_by"] as? String == "lead-user")
            #expect(outcome["proposed"] as? String == "effective")
            #expect((outcome["check"] as? String)?.hasPrefix("all 1 alert") == true)
            let twice = try await client.execute(
                "\(path)/\(id)/outcome",
                method: .post,
                headers: f.headers(.lead),
                body: json(["outcome": "effective"])
            )
            #expect(twice.status == .conflict, "\(twice.text)")

            // A change of mind supersedes; the old one shows as superseded and is not carried out.
            let hold = try await client.execute(
                path,
                method: .post,
                headers: f.headers(.manager),
                body: json([
                    "kind": "hold", "target": ["model": "ranker"], "rationale": "wait for the retrain",
                ])
            )
            let holdID = try #require(jsonObject(hold)["id"] as? Int)
            let forward = try await client.execute(
                path,
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "kind": "roll_forward", "target": ["model": "ranker", "to_version": "v43"], "rationale": "v43 fixes it", "supersedes": holdID,
                ])
            )
            #expect(forward.status == .created)
            let again = try await client.execute(
                path,
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "kind": "hold", "target": ["model": "ranker"], "rationale": "no", "supersedes": holdID,
                ])
            )
            #expect(again.status == .conflict)
            let foreign = try await client.execute(
                path,
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "kind": "hold", "target": ["model": "ranker"], "rationale": "no", "supersedes": 99999,
                ])
            )
            #expect(foreign.status == .badRequest)
            let runSuperseded = try await client.execute("\(path)/\(holdID)/execute", method: .post, headers: f.headers(.lead))
            #expect(runSuperseded.status == .conflict)
            let all = try #require(jsonObject(try await client.execute(path, headers: f.headers(.viewer)))["decisions"] as? [[String: Any]])
            #expect(all.compactMap { $0["status"] as? String } == ["effective", "superseded", "awaiting_execution"])
            #expect(all[1]["superseded_by"] as? Int == all[2]["id"] as? Int)

            let timeline = try #require(
                jsonObject(try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer)))["timeline"] as? [[String: Any]]
            )
            #expect(
                timeline.compactMap { $0["type"] as? String }.filter { $0.hasPrefix("decision_") }
                    == ["decision_recorded", "decision_executed", "decision_outcome", "decision_recorded", "decision_recorded"]
            )
        }
    }
}

@Suite struct HandoffRoutesTests {
    @Test func aHandoffIsGeneratedStoredReadInThreeFormatsAndAcknowledgedOnce() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            try await f.makeRotation(client)
            let ref = try await f.fireDrift(client)
            _ = try await client.execute(
                "/api/v1/incidents/\(ref)/steps/1",
                method: .post,
                headers: f.headers(.responder),
                body: json(["outcome": "skipped", "note": "dashboard down"])
            )
            _ = try await client.execute(
                "/api/v1/incidents/\(ref)/decisions",
                method: .post,
                headers: f.headers(.lead),
                body: json([
                    "kind": "rollback", "target": ["model": "ranker", "from_version": "v42", "to_version": "v41"],
                    "rationale": "drift began with v42",
                ])
            )
            let now = Date()
            let window = ["from": iso(now.addingTimeInterval(-1800)), "to": iso(now.addingTimeInterval(1800))]
            let byViewer = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs",
                method: .post,
                headers: f.headers(.viewer),
                body: json(window)
            )
            #expect(byViewer.status == .forbidden)
            let badWeek = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs",
                method: .post,
                headers: f.headers(.lead),
                body: json(["week": "2026-W99"])
            )
            #expect(badWeek.status == .badRequest && badWeek.text.contains("\"field\":\"week\""))
            let made = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs",
                method: .post,
                headers: f.headers(.lead),
                body: json(window)
            )
            #expect(made.status == .created, "\(made.text)")
            let handoff = jsonObject(made)
            let id = try #require(handoff["id"] as? Int)
            #expect(handoff["incoming"] as? String == "responder-user")
            #expect(handoff["generated_by"] as? String == "lead-user")
            #expect((handoff["content_hash"] as? String)?.count == 64)

            let md = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs/\(id)",
                headers: [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "text/markdown"]
            )
            #expect(md.headers[.contentType]?.hasPrefix("text/markdown") == true)
            #expect(md.text.contains("**\(ref)**"))
            #expect(md.text.contains("rollback of ranker v42 → v41 by lead-user"))
            #expect(md.text.contains("skipped by responder-user: dashboard down"))
            let html = try await client.execute("/api/v1/rotations/ml-platform/handoffs/\(id)?format=html", headers: f.headers(.viewer))
            #expect(html.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(html.text.contains("<h1>Handoff: ml-platform</h1>"))
            #expect(html.headers[.contentSecurityPolicy] != nil)
            let read = try await client.execute("/api/v1/rotations/ml-platform/handoffs/\(id)", headers: f.headers(.viewer))
            let asJSON = jsonObject(read)
            #expect(((asJSON["document"] as? [String: Any])?["still_open"] as? [[String: Any]])?.first?["ref"] as? String == ref)
            // The answer to the POST is written directly; it is the same JSON, byte for byte,
            // as reading the stored handoff back through the API's encoder.
            #expect(made.text == read.text)

            let viewerAck = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs/\(id)/acknowledge",
                method: .post,
                headers: f.headers(.viewer)
            )
            #expect(viewerAck.status == .forbidden)
            // A lead is not the incoming on-call: acknowledging as such is refused, with the way to act for them.
            let leadAck = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs/\(id)/acknowledge",
                method: .post,
                headers: f.headers(.lead)
            )
            #expect(leadAck.status == .forbidden && leadAck.text.contains("only the incoming on-call (responder-user)"))
            #expect(leadAck.text.contains("on_behalf"))
            let ack = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs/\(id)/acknowledge",
                method: .post,
                headers: f.headers(.responder)
            )
            #expect(ack.status == .ok, "\(ack.text)")
            #expect(jsonObject(ack)["acknowledged_by"] as? String == "responder-user")
            #expect(jsonObject(ack)["acknowledged_on_behalf"] as? Bool == false)
            let twice = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs/\(id)/acknowledge",
                method: .post,
                headers: f.headers(.lead),
                body: ByteBuffer(string: #"{"on_behalf": true}"#)
            )
            #expect(twice.status == .conflict, "\(twice.text)")
            let listed = try #require(
                jsonObject(try await client.execute("/api/v1/rotations/ml-platform/handoffs", headers: f.headers(.viewer)))["handoffs"]
                    as? [[String: Any]]
            )
            #expect(listed.count == 1 && listed[0]["markdown"] == nil)

            // The stored document never changes.
            await #expect(throws: PostgresError.self) { try await f.pool.execute("UPDATE handoffs SET markdown = 'nothing happened'") }
            await #expect(throws: PostgresError.self) { try await f.pool.execute("DELETE FROM handoffs") }
        }
    }
}

@Suite struct PostmortemRoutesTests {
    @Test func aPostmortemIsDraftedWrittenReviewedByAManagerAndPublishedReadOnly() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            try await f.makeRotation(client)
            let ref = try await f.fireDrift(client)
            let base = "/api/v1/incidents/\(ref)/postmortem"
            let early = try await client.execute(base, method: .post, headers: f.headers(.responder))
            #expect(early.status == .conflict, "an open incident gets no postmortem yet")
            _ = try await client.execute(
                "/api/v1/incidents/\(ref)/resolve",
                method: .post,
                headers: f.headers(.responder),
                body: json(["note": "rolled back"])
            )
            let byViewer = try await client.execute(base, method: .post, headers: f.headers(.viewer))
            #expect(byViewer.status == .forbidden)
            let made = try await client.execute(base, method: .post, headers: f.headers(.responder))
            #expect(made.status == .created, "\(made.text)")
            #expect(jsonObject(made)["state"] as? String == "draft")
            #expect(try await client.execute(base, method: .post, headers: f.headers(.responder)).status == .conflict)

            let edit = try await client.execute(
                "\(base)/sections/root_cause",
                method: .put,
                headers: f.headers(.responder),
                body: json(["markdown": "The **v42** feature pipeline dropped a column."])
            )
            #expect(edit.status == .ok, "\(edit.text)")
            _ = try await client.execute(
                "\(base)/sections/root_cause",
                method: .put,
                headers: f.headers(.lead),
                body: json(["markdown": "The **v42** feature pipeline dropped the `age` column."])
            )
            let badSection = try await client.execute(
                "\(base)/sections/blame",
                method: .put,
                headers: f.headers(.lead),
                body: json(["markdown": "x"])
            )
            #expect(badSection.status == .badRequest)
            let item = try await client.execute(
                "\(base)/action-items",
                method: .post,
                headers: f.headers(.responder),
                body: json(["title": "Schema check in the feature pipeline", "owner": "lead-user", "due_date": "2026-12-15"])
            )
            #expect(item.status == .created, "\(item.text)")
            let itemID = try #require((jsonObject(item)["action_items"] as? [[String: Any]])?.first?["id"] as? Int)

            // Regenerating the facts keeps what people wrote.
            _ = try await client.execute("\(base)/regenerate", method: .post, headers: f.headers(.responder))
            let read = jsonObject(try await client.execute(base, headers: f.headers(.viewer)))
            let section = try #require((read["sections"] as? [[String: Any]])?.first)
            #expect(section["markdown"] as? String == "The **v42** feature pipeline dropped the `age` column.")
            #expect((section["history"] as? [[String: Any]])?.compactMap { $0["by"] as? String } == ["responder-user", "lead-user"])

            // Review: the required sections first; a lead cannot approve; a manager can, and it is recorded.
            #expect(try await client.execute("\(base)/approve", method: .post, headers: f.headers(.manager)).status == .conflict, "not submitted yet")
            let unfilled = try await client.execute("\(base)/submit", method: .post, headers: f.headers(.responder))
            #expect(unfilled.status == .conflict && unfilled.text.contains("\"field\":\"impact\""), "\(unfilled.text)")
            #expect(unfilled.text.contains("needs Summary of impact before review"), "\(unfilled.text)")
            let impact = try await client.execute(
                "\(base)/sections/impact",
                method: .put,
                headers: f.headers(.responder),
                body: json(["markdown": "Ranking served stale scores for 40 minutes."])
            )
            #expect(impact.status == .ok)
            #expect(try await client.execute("\(base)/submit", method: .post, headers: f.headers(.responder)).status == .ok)
            #expect(try await client.execute("\(base)/approve", method: .post, headers: f.headers(.lead)).status == .forbidden)
            let approved = try await client.execute("\(base)/approve", method: .post, headers: f.headers(.manager))
            #expect(jsonObject(approved)["approved_by"] as? String == "manager-user")
            #expect(try await client.execute("\(base)/publish", method: .post, headers: f.headers(.manager)).status == .ok)

            // Published: read-only, by the API and by the database; action items still tracked.
            let late = try await client.execute("\(base)/sections/went_well", method: .put, headers: f.headers(.admin), body: json(["markdown": "x"]))
            #expect(late.status == .conflict)
            #expect(try await client.execute("\(base)/regenerate", method: .post, headers: f.headers(.admin)).status == .conflict)
            let lateItem = try await client.execute(
                "\(base)/action-items",
                method: .post,
                headers: f.headers(.admin),
                body: json(["title": "x", "owner": "lead-user", "due_date": "2026-12-15"])
            )
            #expect(lateItem.status == .conflict)
            // The open item is in the rotation's handoff until it is done.
            let now = Date()
            let window = ["from": iso(now.addingTimeInterval(-1800)), "to": iso(now.addingTimeInterval(1800))]
            let handoff = jsonObject(
                try await client.execute("/api/v1/rotations/ml-platform/handoffs", method: .post, headers: f.headers(.lead), body: json(window))
            )
            #expect(
                (handoff["markdown"] as? String)?.contains("**\(ref)** Schema check in the feature pipeline: owner lead-user, due 2026-12-15") == true
            )
            let done = try await client.execute(
                "\(base)/action-items/\(itemID)",
                method: .post,
                headers: f.headers(.lead),
                body: json(["status": "done"])
            )
            #expect((jsonObject(done)["action_items"] as? [[String: Any]])?.first?["status"] as? String == "done")
            await #expect(throws: PostgresError.self) { try await f.pool.execute("UPDATE postmortems SET state = 'draft'") }
            await #expect(throws: PostgresError.self) {
                try await f.pool.execute(
                    "INSERT INTO postmortem_section_edits (postmortem_id, section, markdown, edited_by) SELECT id, 'went_well', 'x', 1 FROM postmortems"
                )
            }

            let md = try await client.execute(base, headers: [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "text/markdown"])
            #expect(md.text.hasPrefix("# Postmortem: \(ref)"))
            #expect(md.text.contains("The **v42** feature pipeline dropped the `age` column."), "what people write is Markdown, kept as written")
            #expect(md.text.contains("- Schema check in the feature pipeline: owner lead-user, due 2026-12-15, done"))
            #expect(md.text.contains("> Approved by manager-user at"))
            // The severity says which rule decided it (no value, no label: the runbook's default).
            #expect(md.text.contains("## Severity\n\nwarning: the runbook's default severity"), "\(md.text)")
            #expect(!md.text.contains("**Draft"))
            let html = try await client.execute("\(base)?format=html", headers: f.headers(.viewer))
            #expect(html.text.contains("<strong>v42</strong>"))
            let listed = jsonObject(try await client.execute("/api/v1/postmortems?state=published", headers: f.headers(.viewer)))
            #expect((listed["postmortems"] as? [[String: Any]])?.first?["incident"] as? String == ref)
        }
    }

    @Test func theAuthorDoesNotApproveAndAReopenedIncidentSendsItsPostmortemBackForRevision() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let ref = try await f.fireDrift(client)
            let base = "/api/v1/incidents/\(ref)/postmortem"
            _ = try await client.execute("/api/v1/incidents/\(ref)/resolve", method: .post, headers: f.headers(.responder), body: json([:]))
            #expect(try await client.execute(base, method: .post, headers: f.headers(.manager)).status == .created)
            let empty = try await client.execute("\(base)/submit", method: .post, headers: f.headers(.manager))
            #expect(empty.status == .conflict, "empty sections are not reviewed")
            #expect(empty.text.contains("needs Summary of impact, Root cause, at least one action item before review"), "\(empty.text)")
            for (section, text) in [("impact", "Stale scores for 40 minutes."), ("root_cause", "A dropped column.")] {
                let put = try await client.execute(
                    "\(base)/sections/\(section)",
                    method: .put,
                    headers: f.headers(.manager),
                    body: json(["markdown": text])
                )
                #expect(put.status == .ok)
            }
            _ = try await client.execute(
                "\(base)/action-items",
                method: .post,
                headers: f.headers(.manager),
                body: json(["title": "Schema check", "owner": "lead-user", "due_date": "2026-12-15"])
            )
            // A reviewer is someone who exists.
            let nobody = try await client.execute("\(base)/reviewer", method: .put, headers: f.headers(.manager), body: json(["reviewer": "ghost"]))
            #expect(nobody.status == .badRequest && nobody.text.contains("\"field\":\"reviewer\""))
            let assigned = try await client.execute(
                "\(base)/reviewer",
                method: .put,
                headers: f.headers(.manager),
                body: json(["reviewer": "admin-user"])
            )
            #expect(jsonObject(assigned)["reviewer"] as? String == "admin-user")
            #expect(try await client.execute("\(base)/submit", method: .post, headers: f.headers(.manager)).status == .ok)

            // The author does not approve their own postmortem; the database refuses it too.
            let own = try await client.execute("\(base)/approve", method: .post, headers: f.headers(.manager))
            #expect(own.status == .forbidden && own.text.contains("someone else approves it"), "\(own.text)")
            await #expect(throws: PostgresError.self) {
                try await f.pool.execute("UPDATE postmortems SET state = 'approved', approved_by = submitted_by, approved_at = now()")
            }
            await #expect(throws: PostgresError.self, "only an administrator overrides") {
                try await f.pool.execute(
                    "UPDATE postmortems SET state = 'approved', approved_by = submitted_by, approved_at = now(), approval_override_reason = 'x'"
                )
            }
            let approved = try await client.execute("\(base)/approve", method: .post, headers: f.headers(.admin))
            #expect(approved.status == .ok && jsonObject(approved)["approved_by"] as? String == "admin-user")
            #expect(try await client.execute("\(base)/publish", method: .post, headers: f.headers(.manager)).status == .ok)
            let notYet = try await client.execute("\(base)/revise", method: .post, headers: f.headers(.manager))
            #expect(notYet.status == .conflict, "a published postmortem stays read-only until its incident reopens")

            // The alert fires again: the incident reopens and the postmortem needs revision.
            #expect(try await f.fireDrift(client) == ref)
            let flagged = try await client.execute(base, headers: f.headers(.viewer))
            #expect(jsonObject(flagged)["needs_revision"] as? Bool == true)
            let md = try await client.execute("\(base)?format=md", headers: f.headers(.viewer))
            #expect(md.text.contains("**Needs revision: the incident reopened after this postmortem was published.**"), "\(md.text)")
            #expect(try await client.execute("\(base)/revise", method: .post, headers: f.headers(.lead)).status == .forbidden)
            let revised = try await client.execute("\(base)/revise", method: .post, headers: f.headers(.manager))
            #expect(jsonObject(revised)["state"] as? String == "draft" && jsonObject(revised)["revision_opened_by"] as? String == "manager-user")
            let stale = try await client.execute("\(base)/submit", method: .post, headers: f.headers(.manager))
            #expect(stale.status == .conflict && stale.text.contains("\"field\":\"facts\""), "\(stale.text)")
            _ = try await client.execute("/api/v1/incidents/\(ref)/resolve", method: .post, headers: f.headers(.responder), body: json([:]))
            _ = try await client.execute("\(base)/regenerate", method: .post, headers: f.headers(.responder))
            let again = try await client.execute("\(base)/submit", method: .post, headers: f.headers(.responder))
            #expect(again.status == .ok && jsonObject(again)["needs_revision"] as? Bool == false, "\(again.text)")

            // An administrator approving what they submitted says why, on the record.
            _ = try await f.pool.execute("UPDATE postmortems SET state = 'draft', submitted_by = NULL, submitted_at = NULL")
            #expect(try await client.execute("\(base)/submit", method: .post, headers: f.headers(.admin)).status == .ok)
            let bare = try await client.execute("\(base)/approve", method: .post, headers: f.headers(.admin))
            #expect(bare.status == .forbidden && bare.text.contains("\"field\":\"override_reason\""))
            let overridden = try await client.execute(
                "\(base)/approve",
                method: .post,
                headers: f.headers(.admin),
                body: json(["override_reason": "the only manager is on leave"])
            )
            #expect(jsonObject(overridden)["approval_override_reason"] as? String == "the only manager is on leave", "\(overridden.text)")
            let approvedMD = try await client.execute("\(base)?format=md", headers: f.headers(.viewer))
            #expect(approvedMD.text.contains("(who submitted it; an administrator's override: the only manager is on leave)"))
        }
    }
}

@Suite struct DecisionProposalTests {
    @Test func aResponderProposesALeadConfirmsOrRejectsAndLateDecisionsAreMarked() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let ref = try await f.fireDrift(client)
            let decision: [String: Any] = [
                "kind": "rollback", "target": ["model": "ranker", "from_version": "v42", "to_version": "v41"],
                "rationale": "PSI 0.31 on age since the v42 retrain",
            ]
            // feature-drift lets leads and up decide: a responder's decision is refused, a proposal is not.
            let refused = try await client.execute(
                "/api/v1/incidents/\(ref)/decisions",
                method: .post,
                headers: f.headers(.responder),
                body: json(decision)
            )
            #expect(refused.status == .forbidden)
            let proposed = try await client.execute(
                "/api/v1/incidents/\(ref)/proposals",
                method: .post,
                headers: f.headers(.responder),
                body: json(decision)
            )
            #expect(proposed.status == .created, "\(proposed.text)")
            #expect(jsonObject(proposed)["status"] as? String == "open" && jsonObject(proposed)["proposed_by"] as? String == "responder-user")
            let first = try #require(jsonObject(proposed)["id"] as? Int)
            // A responder cannot confirm their own (or anyone's) proposal here; a lead can.
            let selfConfirm = try await client.execute(
                "/api/v1/incidents/\(ref)/proposals/\(first)/confirm",
                method: .post,
                headers: f.headers(.responder)
            )
            #expect(selfConfirm.status == .forbidden)
            let confirmed = try await client.execute("/api/v1/incidents/\(ref)/proposals/\(first)/confirm", method: .post, headers: f.headers(.lead))
            #expect(confirmed.status == .created, "\(confirmed.text)")
            let d = jsonObject(confirmed)
            #expect(d["decided_by"] as? String == "lead-user" && d["proposed_by"] as? String == "responder-user")
            #expect(d["proposal_id"] as? Int == first && d["late"] as? Bool == false && d["kind"] as? String == "rollback")
            let twice = try await client.execute(
                "/api/v1/incidents/\(ref)/proposals/\(first)/reject",
                method: .post,
                headers: f.headers(.lead),
                body: json(["reason": "x"])
            )
            #expect(twice.status == .conflict, "a proposal is answered once")

            // A second proposal is rejected, with a reason, on the record.
            let other = try await client.execute(
                "/api/v1/incidents/\(ref)/proposals",
                method: .post,
                headers: f.headers(.responder),
                body: json(decision)
            )
            let second = try #require(jsonObject(other)["id"] as? Int)
            let bare = try await client.execute(
                "/api/v1/incidents/\(ref)/proposals/\(second)/reject",
                method: .post,
                headers: f.headers(.lead),
                body: json([:])
            )
            #expect(bare.status == .badRequest && bare.text.contains("\"field\":\"reason\""))
            let rejected = try await client.execute(
                "/api/v1/incidents/\(ref)/proposals/\(second)/reject",
                method: .post,
                headers: f.headers(.lead),
                body: json(["reason": "already rolled back in decision 1"])
            )
            #expect(jsonObject(rejected)["status"] as? String == "rejected" && jsonObject(rejected)["rejected_by"] as? String == "lead-user")
            let late = try await client.execute("/api/v1/incidents/\(ref)/proposals/\(second)/confirm", method: .post, headers: f.headers(.lead))
            #expect(late.status == .conflict, "a rejected proposal is not confirmed")
            await #expect(throws: PostgresError.self, "the database keeps one answer per proposal") {
                try await f.pool.execute("INSERT INTO decision_proposal_rejections (proposal_id, rejected_by, reason) VALUES (\(first), 1, 'x')")
            }
            await #expect(throws: PostgresError.self) { try await f.pool.execute("UPDATE decision_proposals SET rationale = 'x'") }

            // Resolved: a responder no longer records, a lead records a late decision, marked so.
            _ = try await client.execute("/api/v1/incidents/\(ref)/resolve", method: .post, headers: f.headers(.responder), body: json([:]))
            var hold = decision
            hold["kind"] = "hold"
            hold["rationale"] = "kept v41 over the weekend"
            let lateByLead = try await client.execute(
                "/api/v1/incidents/\(ref)/decisions",
                method: .post,
                headers: f.headers(.lead),
                body: json(hold)
            )
            #expect(lateByLead.status == .created && jsonObject(lateByLead)["late"] as? Bool == true, "\(lateByLead.text)")
            let timeline = try await client.execute("/api/v1/incidents/\(ref)", headers: f.headers(.viewer))
            #expect(timeline.text.contains("decision_proposed") && timeline.text.contains("decision_proposal_rejected"))
            let listed = jsonObject(try await client.execute("/api/v1/incidents/\(ref)/proposals", headers: f.headers(.viewer)))
            #expect((listed["proposals"] as? [[String: Any]])?.compactMap { $0["status"] as? String } == ["confirmed", "rejected"])

            // The incident page, as the responder: proposals and how they were answered; the form proposes.
            var browser = Browser(client)
            _ = try await browser.signIn("responder-user", AccessFixture.password)
            let page = try await browser.request("/incidents/\(IncidentRef.number(ref) ?? 0)")
            #expect(page.text.contains("confirmed as decision 1 by lead-user"))
            #expect(page.text.contains("rejected by lead-user") && page.text.contains("already rolled back in decision 1"))
            #expect(page.text.contains("late entry, recorded after the incident was resolved"))
            #expect(page.text.contains("Propose decision") && !page.text.contains(">Record decision<"))

            // The postmortem names who proposed and marks the late entry.
            let md = try await client.execute("/api/v1/incidents/\(ref)/postmortem", method: .post, headers: f.headers(.responder))
            #expect(md.text.contains("proposed by responder-user") && md.text.contains("late entry"), "\(md.text)")
        }
    }
}

@Suite struct LoadLimitRoutesTests {
    @Test func leadsSetTheLoadTheHandoffFlagsAndItIsAudited() async throws {
        try await AccessFixture.with { f, client in
            try await f.makeRotation(client)
            let body = json(["night_pages": 1, "pages": 10])
            #expect(
                try await client.execute("/api/v1/rotations/ml-platform/load-limits", method: .put, headers: f.headers(.responder), body: body).status
                    == .forbidden
            )
            let set = try await client.execute("/api/v1/rotations/ml-platform/load-limits", method: .put, headers: f.headers(.lead), body: body)
            #expect(jsonObject(set)["night_pages"] as? Int == 1 && jsonObject(set)["pages"] as? Int == 10, "\(set.text)")
            let bad = try await client.execute(
                "/api/v1/rotations/ml-platform/load-limits",
                method: .put,
                headers: f.headers(.lead),
                body: json(["night_pages": -1, "pages": 10])
            )
            #expect(bad.status == .badRequest && bad.text.contains(#""field":"night_pages""#))
            let audit = try await client.execute("/api/v1/audit", headers: f.headers(.admin))
            #expect(audit.text.contains("rotation.load_limits_changed"))
            let handoff = try await client.execute(
                "/api/v1/rotations/ml-platform/handoffs",
                method: .post,
                headers: f.headers(.lead),
                body: json(["from": iso(Date().addingTimeInterval(-3600)), "to": iso(Date().addingTimeInterval(3600))])
            )
            #expect(
                (jsonObject(handoff)["markdown"] as? String)?.contains("The rotation's limits: 1 night interruption or 10 pages a window") == true
            )
        }
    }
}

@Suite struct HandoffNoteRoutesTests {
    @Test func theOutgoingOnCallsNoteGoesIntoTheHandoffAndLaterNotesShowBesideIt() async throws {
        try await AccessFixture.with { f, client in
            try await f.makeRotation(client)
            let window = ["from": iso(Date().addingTimeInterval(-3600)), "to": iso(Date().addingTimeInterval(3600))]
            var note = window
            note["note"] = "Watch the ranker canary; I silenced DiskFull on trainer-3 until Friday."
            let written = try await client.execute(
                "/api/v1/rotations/ml-platform/handoff-notes",
                method: .post,
                headers: f.headers(.responder),
                body: json(note)
            )
            #expect(written.status == .created && jsonObject(written)["by"] as? String == "responder-user", "\(written.text)")
            var empty = window
            empty["note"] = "  "
            let blank = try await client.execute(
                "/api/v1/rotations/ml-platform/handoff-notes",
                method: .post,
                headers: f.headers(.responder),
                body: json(empty)
            )
            #expect(blank.status == .badRequest && blank.text.contains(#""field":"note""#))
            let handoff = jsonObject(
                try await client.execute("/api/v1/rotations/ml-platform/handoffs", method: .post, headers: f.headers(.lead), body: json(window))
            )
            let markdown = try #require(handoff["markdown"] as? String)
            #expect(
                markdown.contains(
                    "## Note from the outgoing on-call\n\nWatch the ranker canary; I silenced DiskFull on trainer-3 until Friday.\n\n— responder-user, "
                ),
                "\(markdown)"
            )
            #expect(markdown.contains("## Next"))
            let id = try #require(handoff["id"] as? Int)

            var browser = Browser(client)
            _ = try await browser.signIn("responder-user", AccessFixture.password)
            let page = try await browser.request("/rotations/ml-platform/handoffs/\(id)")
            let csrf = try #require(Browser.csrfToken(in: page))
            #expect(!page.text.contains("· sha256"), "the hash is not in the page's header")
            _ = try await browser.request(
                "/rotations/ml-platform/handoffs/\(id)/note",
                method: .post,
                form: ["csrf_token": csrf, "note": "Canary rolled back at 18:00."]
            )
            let after = try await browser.request("/rotations/ml-platform/handoffs/\(id)")
            #expect(after.text.contains("Canary rolled back at 18:00.") && after.text.contains("— responder-user"))
            let download = try await browser.request("/rotations/ml-platform/handoffs/\(id)/download")
            let hash = try #require(handoff["content_hash"] as? String)
            // The header is the stored hash (hex in the JSON) written in base64.
            let bytes = stride(from: 0, to: hash.count, by: 2).compactMap { UInt8(hash.dropFirst($0).prefix(2), radix: 16) }
            #expect(download.headers[HTTPField.Name("Repr-Digest")!] == "sha-256=:\(Data(bytes).base64EncodedString()):")
            #expect(download.text == markdown, "the download is the stored document, unchanged")
        }
    }
}

@Suite struct PostmortemFactsTests {
    @Test func aPostmortemSaysWhoActedHowFastAndWhatFiredBefore() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let earlier = try await f.fireDrift(client)
            let sent = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("f1", "firing", ["alertname": "FeatureDriftHigh", "model": "fraud", "feature": "amount"])])
            )
            let ref = try #require((jsonObject(sent)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)
            #expect(ref != earlier)
            _ = try await client.execute("/api/v1/incidents/\(ref)/acknowledge", method: .post, headers: f.headers(.responder))
            _ = try await client.execute("/api/v1/incidents/\(ref)/resolve", method: .post, headers: f.headers(.lead), body: json([:]))
            let made = try await client.execute("/api/v1/incidents/\(ref)/postmortem?format=md", method: .post, headers: f.headers(.responder))
            #expect(made.status == .created)
            let md = try await client.execute("/api/v1/incidents/\(ref)/postmortem?format=md", headers: f.headers(.viewer)).text
            #expect(md.contains("- responder-user: acknowledged") && md.contains("- lead-user: resolved"), "\(md)")
            #expect(md.contains("- Time to acknowledge: ") && md.contains("- Time to detect (the monitor's start → Handrail opened it): "))
            #expect(md.contains("Runbook feature-drift has fired 1 time in the 30 days before this incident."))
            #expect(md.contains("[\(earlier)](/incidents/\(IncidentRef.number(earlier) ?? 0)) drift on ranker"))
        }
    }
}

@Suite struct PostmortemQueueTests {
    @Test func thePostmortemsPageListsWhatStillNeedsOneAndOverdueActionItems() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            // A critical alert without a runbook, resolved: it needs a postmortem.
            let critical = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("c1", "firing", ["alertname": "DiskFull", "severity": "critical", "host": "db-1"])])
            )
            let needed = try #require((jsonObject(critical)["alerts"] as? [[String: Any]])?.first?["incident"] as? String)
            _ = try await client.execute("/api/v1/incidents/\(needed)/resolve", method: .post, headers: f.headers(.responder), body: json([:]))
            // A warning drift incident, resolved, with a postmortem whose action item is overdue.
            let drift = try await f.fireDrift(client)
            _ = try await client.execute("/api/v1/incidents/\(drift)/resolve", method: .post, headers: f.headers(.responder), body: json([:]))
            _ = try await client.execute("/api/v1/incidents/\(drift)/postmortem", method: .post, headers: f.headers(.responder))
            _ = try await client.execute(
                "/api/v1/incidents/\(drift)/postmortem/action-items",
                method: .post,
                headers: f.headers(.responder),
                body: json(["title": "Alert earlier", "owner": "lead-user", "due_date": "2020-01-31"])
            )
            var browser = Browser(client)
            _ = try await browser.signIn("viewer-user", AccessFixture.password)
            let page = try await browser.request("/postmortems").text
            let neededPart = try #require(page.components(separatedBy: "id=\"h-overdue\"").first)
            #expect(neededPart.contains(">\(needed) ") && neededPart.contains("critical"), "\(page)")
            #expect(!neededPart.contains(">\(drift) "), "a warning incident needs no postmortem by default")
            let overduePart = try #require(page.components(separatedBy: "id=\"h-overdue\"").last)
            #expect(overduePart.contains("Alert earlier") && overduePart.contains("owner lead-user, due 2020-01-31"))
        }
    }
}
