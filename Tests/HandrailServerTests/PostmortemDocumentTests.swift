import Foundation
import HandrailCore
import TestSupport
import Testing

@testable import HandrailServer
@testable import HandrailStore

private func at(_ text: String) -> Date { RFC3339.parse(text)! }

private func event(
    _ id: Int64,
    _ time: String,
    _ type: String,
    _ actor: String,
    _ kind: String = "user",
    _ data: [String: JSONValue] = [:]
) -> IncidentEvent {
    IncidentEvent(
        id: id,
        at: at(time),
        type: IncidentEventType(rawValue: type)!,
        actor: actor,
        actorKind: ActorKind(rawValue: kind)!,
        data: .object(data)
    )
}

/// INC-102: a canary guard breach on ranker v42, owned from the rotation, handed over,
/// one step failed, a hold superseded by a rollback that worked, resolved by a person.
func canaryIncident() -> (IncidentDetail, [Decision]) {
    let summary = IncidentSummary(
        number: 102,
        ref: "INC-102",
        title: "Canary guard breach: ranker v42 error rate 2.4× baseline",
        state: .resolved,
        severity: .critical,
        groupingKey: #"alertname="CanaryGuardBreached", model="ranker", rollout="r-42""#,
        labels: ["alertname": "CanaryGuardBreached", "model": "ranker"],
        runbookId: "canary-guard-breach",
        runbookVersion: 1,
        owner: "ben",
        ownerPending: false,
        openedAt: at("2026-11-18T01:05:00Z"),
        acknowledgedAt: at("2026-11-18T01:08:00Z"),
        mitigatedAt: nil,
        resolvedAt: at("2026-11-18T02:30:00Z"),
        reopenCount: 0,
        openAlerts: 0,
        alertCount: 1,
        deliveryCount: 12,
        lastSeenAt: at("2026-11-18T02:10:00Z")
    )
    let alert = IncidentAlert(
        fingerprint: "7f3a",
        integration: "alertmanager-prod",
        source: .alertmanager,
        status: .resolved,
        alertname: "CanaryGuardBreached",
        labels: ["alertname": "CanaryGuardBreached", "model": "ranker", "metric": "error_rate_ratio", "rollout": "r-42"],
        annotations: ["summary": "error rate 2.4× baseline"],
        value: 2.4,
        values: [:],
        links: [:],
        generatorUrl: nil,
        severity: .critical,
        groupRule: "group_by [alertname, model, rollout] of runbook canary-guard-breach",
        startsAt: at("2026-11-18T01:02:00Z"),
        endsAt: at("2026-11-18T02:10:00Z"),
        firstSeenAt: at("2026-11-18T01:05:00Z"),
        lastSeenAt: at("2026-11-18T02:10:00Z"),
        deliveryCount: 12,
        clearedAt: at("2026-11-18T02:10:00Z"),
        clearedBy: "source"
    )
    let timeline = [
        event(
            1,
            "2026-11-18T01:05:00Z",
            "opened",
            "alertmanager-prod",
            "integration",
            ["owner_reason": .string("ana is on call in ml-serving as the incident opens")]
        ),
        event(
            2,
            "2026-11-18T01:05:00Z",
            "role_changed",
            "alertmanager-prod",
            "integration",
            [
                "role": .string("owner"), "action": .string("rotation"), "to": .string("ana"), "rotation": .string("ml-serving"),
                "reason": .string("ana is on call in ml-serving as the incident opens"),
            ]
        ),
        event(
            3,
            "2026-11-18T01:05:00Z",
            "alert_added",
            "alertmanager-prod",
            "integration",
            ["alertname": .string("CanaryGuardBreached"), "fingerprint": .string("7f3a")]
        ),
        event(4, "2026-11-18T01:08:00Z", "acknowledged", "ana"),
        event(5, "2026-11-18T01:08:00Z", "role_accepted", "ana", "user", ["role": .string("owner"), "user": .string("ana")]),
        event(
            6,
            "2026-11-18T01:12:00Z",
            "step_marked",
            "ana",
            "user",
            ["step": .number(1), "title": .string("Freeze the rollout"), "outcome": .string("done")]
        ),
        event(
            7,
            "2026-11-18T01:20:00Z",
            "step_marked",
            "ana",
            "user",
            [
                "step": .number(3), "title": .string("Pause the canary"), "outcome": .string("failed"),
                "note": .string("argo rollouts pause timed out"),
            ]
        ),
        event(8, "2026-11-18T01:25:00Z", "decision_recorded", "ana", "user", ["decision": .number(6), "kind": .string("hold")]),
        event(9, "2026-11-18T01:38:00Z", "decision_recorded", "lena", "user", ["decision": .number(7), "kind": .string("rollback")]),
        event(
            10,
            "2026-11-18T01:40:00Z",
            "role_changed",
            "ana",
            "user",
            [
                "role": .string("owner"), "action": .string("hand_over"), "from": .string("ana"), "to": .string("ben"),
                "reason": .string("my shift ends"),
            ]
        ),
        event(11, "2026-11-18T01:41:00Z", "role_accepted", "ben", "user", ["role": .string("owner"), "user": .string("ben")]),
        event(12, "2026-11-18T01:45:00Z", "decision_executed", "ben", "user", ["decision": .number(7)]),
        event(13, "2026-11-18T02:10:00Z", "alert_cleared", "alertmanager-prod", "integration", ["fingerprint": .string("7f3a")]),
        event(14, "2026-11-18T02:25:00Z", "decision_outcome", "lena", "user", ["decision": .number(7), "outcome": .string("effective")]),
        event(15, "2026-11-18T02:30:00Z", "resolved", "ben", "user", ["note": .string("v41 serving 100 %; error rate back to baseline")]),
    ]
    let steps = [
        IncidentStep(index: 1, title: "Freeze the rollout", markdown: "", outcome: .done, note: nil, by: "ana", at: at("2026-11-18T01:12:00Z")),
        IncidentStep(index: 2, title: "Read the guard that fired", markdown: "", outcome: nil, note: nil, by: nil, at: nil),
        IncidentStep(
            index: 3,
            title: "Pause the canary",
            markdown: "",
            outcome: .failed,
            note: "argo rollouts pause timed out",
            by: "ana",
            at: at("2026-11-18T01:20:00Z")
        ),
    ]
    let detail = IncidentDetail(
        incident: summary,
        roles: [],
        runbook: .init(id: "canary-guard-breach", version: 1, title: "Canary guard breach during a model rollout", currentVersion: 2),
        runbookReason: "matched alertname",
        ownersRotation: "ml-serving",
        groupRule: "group_by [alertname, model, rollout]",
        autoResolve: true,
        reopenWindow: 1800,
        alerts: [alert],
        steps: steps,
        timeline: timeline,
        timelineCount: timeline.count
    )
    let hold = Decision(
        id: 6,
        incident: "INC-102",
        kind: .hold,
        target: DecisionTarget(model: "ranker"),
        rationale: "look at the guard first",
        customerImpact: nil,
        alternativesConsidered: nil,
        decidedBy: "ana",
        decidedByRole: .responder,
        decidedAt: at("2026-11-18T01:25:00Z"),
        verificationWindow: 1800,
        supersedes: nil,
        supersededBy: 7,
        execution: nil,
        outcome: nil,
        proposal: nil
    )
    let rollback = Decision(
        id: 7,
        incident: "INC-102",
        kind: .rollback,
        target: DecisionTarget(model: "ranker", fromVersion: "v42", toVersion: "v41"),
        rationale: "error rate 2.4× for 10 min, over the 2× criterion",
        customerImpact: "2 % of ranking requests failed for 40 min",
        alternativesConsidered: "hold and investigate (rejected: customers affected)",
        decidedBy: "lena",
        decidedByRole: .lead,
        decidedAt: at("2026-11-18T01:38:00Z"),
        verificationWindow: 1800,
        supersedes: 6,
        supersededBy: nil,
        execution: .init(by: "ben", at: at("2026-11-18T01:45:00Z"), note: "argo rollouts undo"),
        outcome: .init(
            outcome: .effective,
            proposed: .effective,
            check: "all 1 alert cleared within 30 min of execution (the last 25 min after execution)",
            confirmedBy: "lena",
            confirmedAt: at("2026-11-18T02:25:00Z"),
            note: nil
        ),
        proposal: nil
    )
    return (detail, [hold, rollback])
}

private let renderer = DocumentRenderer(directory: TestDatabase.checkoutRoot.appendingPathComponent("templates"))

@Suite struct PostmortemDocumentTests {
    @Test func aResolvedIncidentRendersToTheGoldenDraft() throws {
        let (detail, decisions) = canaryIncident()
        let thresholds = [Threshold(metric: "error_rate_ratio", warning: 1.5, critical: 2)]
        let doc = PostmortemDocument.build(detail, decisions: decisions, thresholds: thresholds, timeZone: "Europe/Berlin")
        let markdown = try renderer.postmortem(doc)
        #expect(
            markdown.contains("  - Why: look at the guard first\n  - Outcome:"),
            "a decision with no customer impact of its own shows none (not the document's)"
        )
        let file = TestDatabase.checkoutRoot.appendingPathComponent("Tests/Fixtures/golden/postmortem-INC-102.md")
        if ProcessInfo.processInfo.environment["HANDRAIL_UPDATE_GOLDEN"] == "1" { try markdown.write(to: file, atomically: true, encoding: .utf8) }
        #expect(
            markdown == (try String(contentsOf: file, encoding: .utf8)),
            "differs from the golden file; HANDRAIL_UPDATE_GOLDEN=1 rewrites it for review"
        )
        #expect(doc.impactFrom == "Wed 2026-11-18 02:02 +01:00", "the impact starts with the alert, before the incident opened")
        #expect(doc.gapCount == 1)
        #expect(doc.ownership.count == 4)
        let html = DocumentRenderer.html(markdown)
        #expect(html.contains("<h1>Postmortem: INC-102 Canary guard breach"))
        #expect(html.contains("<h2>Root cause</h2>"))
    }
}
