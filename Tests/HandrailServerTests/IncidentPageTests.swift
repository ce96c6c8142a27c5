import Foundation
import HandrailCore
import Testing

@testable import HandrailServer
@testable import HandrailStore

/// The incident page's view model, built from the stores' values alone.
@Suite struct IncidentPageTests {
    static func person(_ name: String, _ role: Role, disabled: Bool = false) -> User {
        User(
            id: name.count,
            username: name,
            displayName: name.capitalized,
            email: nil,
            role: role,
            disabled: disabled,
            mustChangePassword: false,
            createdAt: Date()
        )
    }

    /// INC-102 still open: acknowledged, owned by ben who has yet to accept.
    static func openIncident() -> (IncidentDetail, [Decision]) {
        var (detail, decisions) = canaryIncident()
        detail.incident.state = .acknowledged
        detail.incident.resolvedAt = nil
        detail.roles = [
            IncidentRoleHolder(role: .owner, user: "ben", displayName: "Ben", assignedBy: "ana", assignedAt: Date(), acceptedAt: nil)
        ]
        return (detail, decisions)
    }

    @Test func aResponderOnAnOpenIncidentSeesWhatTheyMayDoAndWhereTheRunbookStands() {
        let (detail, decisions) = Self.openIncident()
        let ben = Self.person("ben", .responder)
        let people = [ben, Self.person("ana", .responder), Self.person("vic", .viewer), Self.person("old", .lead, disabled: true)]
        let now = detail.incident.openedAt.addingTimeInterval(3 * 3600)
        let page = IncidentPage(
            detail,
            decisions: decisions,
            pinned: nil,
            user: ben,
            people: people,
            watermark: 42,
            postmortemExists: false,
            now: now
        )
        #expect(page.live == "/live?incident=102&since=42")
        #expect(page.open && !page.resolved && page.canChange)
        #expect(page.transitions.map(\.action) == ["mitigate", "resolve"], "acknowledged: mitigate or resolve, not acknowledge again")
        #expect(page.transitions.map(\.withNote) == [false, true])
        #expect(page.transitions.map(\.primary) == [true, false], "the next expected action stands out; the others are quiet")
        #expect(page.steps.map(\.next) == [false, true, false], "the first step without a mark is where the responder is")
        #expect(page.steps.map(\.failed) == [false, false, true])
        #expect(page.runbook?.outdated == true, "pinned version 1, current 2")
        let owner = page.roles.first { $0.role == "owner" }
        #expect(owner?.canAccept == true && owner?.canTake == false && owner?.canHandOver == true)
        #expect(page.roles.first { $0.role == "scribe" }?.canTake == true)
        #expect(page.people.map(\.username) == ["ben", "ana"], "viewers and disabled people cannot be given a role")
        #expect(page.decisions.map(\.status) == ["superseded", "effective"])
        #expect(page.decisions.map(\.canExecute) == [false, false], "superseded, and executed")
        #expect(page.activeDecisions.map(\.id) == [7])
        #expect(page.alerts.first?.value == "2.4" && page.alerts.first?.firing == false)
        #expect(page.timeline.first?.type == "resolved", "newest first")
        #expect(page.age == "3 h", "open for three hours at `now`")
        #expect(!page.canPostmortem)
    }

    @Test func runbookPlaceholdersShowTheIncidentsLabelsAndTheStoredRunbookIsUnchanged() {
        var (detail, decisions) = Self.openIncident()
        detail.steps[1].title = "Read the guard that fired on $model"
        detail.steps[1].markdown = "Run `kubectl argo rollouts get rollout :model` and check ${rollout}."
        let page = IncidentPage(
            detail,
            decisions: decisions,
            pinned: nil,
            user: nil,
            people: [],
            watermark: 0,
            postmortemExists: false,
            now: Date()
        )
        #expect(page.steps[1].title == "Read the guard that fired on ranker")
        #expect(page.steps[1].html.contains("<code>kubectl argo rollouts get rollout ranker</code>"), "\(page.steps[1].html)")
        #expect(page.steps[1].html.contains(#"<mark class="placeholder" title="no label rollout on this incident">${rollout}</mark>"#))
        #expect(detail.steps[1].markdown.contains(":model"), "the runbook's text stays as written")
    }

    @Test func theSeverityIsExplainedByTheRuleThatDecidedIt() {
        let (detail, _) = Self.openIncident()
        let runbook = RunbookParser.parse(
            "---\nid: canary\ntitle: Canary\nmatch: { alertname: CanaryGuardBreached }\nthresholds:\n  - { metric: error_rate_ratio, warning: 1.5, critical: 2 }\n---\n## Steps\n1. a\n",
            path: "canary.md"
        ).0
        let rule = IncidentPage.severityRule(detail.incident.severity, alerts: detail.alerts, runbook: runbook, labels: detail.incident.labels)
        #expect(
            rule == "critical: the value 2.4 reaches the runbook's critical threshold 2 for error_rate_ratio (higher is worse)",
            "\(rule ?? "nil")"
        )
        #expect(
            IncidentPage.severityRule(.critical, alerts: [], runbook: nil, labels: ["severity": "critical"])?.contains("no runbook matched") == true
        )
    }

    @Test func anAlertShowsItsDescriptionAndALinkToTheMonitorButNeverAScriptLink() throws {
        var (detail, decisions) = canaryIncident()
        detail.alerts[0].annotations["description"] = "error rate 2.4× baseline for 10 minutes on 5 % of traffic"
        detail.alerts[0].generatorUrl = "http://prometheus:9090/graph?g0.expr=x"
        var page = IncidentPage(detail, decisions: decisions, pinned: nil, user: nil, people: [], watermark: 0, postmortemExists: false, now: Date())
        let alert = try #require(page.alerts.first)
        #expect(alert.summary == "error rate 2.4× baseline" && alert.description?.hasPrefix("error rate 2.4× baseline for 10 minutes") == true)
        #expect(alert.generatorUrl == "http://prometheus:9090/graph?g0.expr=x")
        detail.alerts[0].generatorUrl = "javascript:alert(1)"
        page = IncidentPage(detail, decisions: decisions, pinned: nil, user: nil, people: [], watermark: 0, postmortemExists: false, now: Date())
        #expect(page.alerts.first?.generatorUrl == nil)
    }

    @Test func aVisitorWhoIsNotSignedInMayDoNothing() {
        let (detail, decisions) = Self.openIncident()
        let page = IncidentPage(detail, decisions: decisions, pinned: nil, user: nil, people: [], watermark: 0, postmortemExists: false, now: Date())
        #expect(!page.canChange && page.transitions.isEmpty && !page.canDecide)
        #expect(page.decideRefusal == nil, "the reason is shown only to people who could change the incident")
        #expect(page.steps.allSatisfy { !$0.canMark })
        #expect(page.roles.allSatisfy { !$0.canTake && !$0.canAccept })
    }

    @Test func aResolvedIncidentOffersItsPostmortemOnce() {
        let (detail, decisions) = canaryIncident()
        let lead = Self.person("lena", .lead)
        let without = IncidentPage(
            detail,
            decisions: decisions,
            pinned: nil,
            user: lead,
            people: [],
            watermark: 0,
            postmortemExists: false,
            now: Date()
        )
        #expect(without.resolved && without.canPostmortem && without.transitions.isEmpty && without.people.isEmpty)
        let with = IncidentPage(detail, decisions: decisions, pinned: nil, user: lead, people: [], watermark: 0, postmortemExists: true, now: Date())
        #expect(!with.canPostmortem)
    }

    @Test func theTemplateReadsTheModelBySnakeCaseNamesAndAMissingValueIsNothing() throws {
        let (detail, decisions) = Self.openIncident()
        let page = IncidentPage(detail, decisions: decisions, pinned: nil, user: nil, people: [], watermark: 0, postmortemExists: false, now: Date())
        let fields = Pages.fields(page)
        #expect(fields["incident_title"] == .text(detail.incident.title))
        #expect(fields["decide_refusal"] == .null)
        let steps = try #require(fields["steps"]?.items)
        #expect(steps.count == 3)
        #expect(steps[1]["can_mark"] == .bool(false))
        #expect(steps[1]["note"] == .null, "an unmarked step has no note, and the lookup does not climb to an outer one")
        let owner = try #require(fields["roles"]?.items?.first)
        #expect(owner["holder"]?["display_name"] == .text("Ben"))
    }

    @Test func notificationsJoinTheTimelineWithHowTheyWentAndTheEscalationInForceIsSaid() throws {
        let (detail, decisions) = Self.openIncident()
        let opened = try #require(detail.timeline.first)
        let sent = [
            NotificationRecord(
                id: 1,
                event: .opened,
                incident: 102,
                recipient: "team",
                kind: .slack,
                hint: "https://hooks.slack.com/…abcd",
                state: .delivered,
                attempts: 2,
                createdAt: opened.at,
                finishedAt: opened.at,
                lastError: nil
            ),
            NotificationRecord(
                id: 2,
                event: .escalation,
                incident: 102,
                recipient: "ben",
                kind: .email,
                hint: "ben@example.com",
                state: .failed,
                attempts: 1,
                createdAt: opened.at.addingTimeInterval(60),
                finishedAt: nil,
                lastError: "sendmail exited 67"
            ),
        ]
        let page = IncidentPage(
            detail,
            decisions: decisions,
            pinned: nil,
            user: nil,
            people: [],
            watermark: 0,
            postmortemExists: false,
            now: Date(),
            notifications: sent,
            escalation: "Escalates to lena at 2026-11-20 10:42 UTC unless acknowledged (step 2 of 2)."
        )
        #expect(page.timeline.count == detail.timeline.count + 2)
        let texts = page.timeline.filter { $0.type == "notification" }.map(\.text)
        #expect(texts.contains("opened sent to team by slack (https://hooks.slack.com/…abcd): delivered after 2 attempts"))
        #expect(texts.contains("escalation sent to ben by email (ben@example.com): failed after 1 attempt: sendmail exited 67"))
        let openedAt = try #require(page.timeline.lastIndex { $0.type == "opened" })
        let message = try #require(page.timeline.firstIndex { $0.text.hasPrefix("opened sent to team") })
        #expect(message < openedAt, "newest first: the message the opening caused is above it")
        #expect(page.escalation?.hasPrefix("Escalates to lena") == true)
    }
}
