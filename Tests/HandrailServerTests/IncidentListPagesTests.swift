import Foundation
import HTTPTypes
import HandrailCore
import TestSupport
import Testing

@testable import HandrailServer
@testable import HandrailStore

/// The Now and Incidents pages' view models, built from incident summaries alone.
@Suite struct IncidentListPagesTests {
    static let start = Date(timeIntervalSince1970: 1_763_283_600)

    static func incident(
        _ number: Int64,
        _ severity: Severity,
        owner: String?,
        openedMinutesAgo: Int,
        state: IncidentState = .triggered
    ) -> IncidentSummary {
        IncidentSummary(
            number: number,
            ref: IncidentRef.display(number),
            title: "incident \(number)",
            state: state,
            severity: severity,
            groupingKey: "k\(number)",
            labels: [:],
            runbookId: nil,
            runbookVersion: nil,
            owner: owner,
            ownerPending: owner != nil,
            openedAt: start.addingTimeInterval(Double(-openedMinutesAgo * 60)),
            acknowledgedAt: nil,
            mitigatedAt: nil,
            resolvedAt: nil,
            reopenCount: 0,
            openAlerts: 1,
            alertCount: 1,
            deliveryCount: 1,
            lastSeenAt: nil
        )
    }

    @Test func nowMarksTheVisitorsOwnAndSaysWhenMoreAreOpenThanShown() {
        // In triage order, as IncidentStore.triage reads them.
        let open = [
            Self.incident(2, .critical, owner: nil, openedMinutesAgo: 10),
            Self.incident(5, .warning, owner: nil, openedMinutesAgo: 120),
            Self.incident(6, .warning, owner: "ben", openedMinutesAgo: 1),
            Self.incident(3, .info, owner: "ben", openedMinutesAgo: 5, state: .acknowledged),
        ]
        let page = NowPage(open: open, openCount: 4, resolved: [], me: "ben", watermark: 7, now: Self.start)
        #expect(page.open.map(\.number) == [2, 5, 6, 3])
        #expect(page.open.filter(\.mine).map(\.number) == [6, 3])
        #expect(page.open.first { $0.number == 2 }?.unowned == true)
        #expect(page.open.first { $0.number == 5 }?.age == "2 h")
        #expect(page.openCount == 4 && page.live == "/live?since=7" && page.more == nil)
        let anonymous = NowPage(open: open, openCount: 4, resolved: [], me: nil, watermark: 0, now: Self.start)
        #expect(anonymous.open.allSatisfy { !$0.mine }, "nobody's own without a visitor, even unowned ones")
        let more = NowPage(open: open, openCount: 180, resolved: [], me: nil, watermark: 0, now: Self.start)
        #expect(more.more == "Showing the first 4 of 180 open, in this order.")
    }

    @Test func theIncidentListLinksToTheNextPageOnlyWhenThisOneIsFullKeepingItsFilters() {
        let full = (1...3).map { Self.incident(Int64(10 - $0), .warning, owner: nil, openedMinutesAgo: $0) }
        var query = IncidentListPage.Query()
        query.state = "triggered"
        query.severity = "warning"
        query.text = "drift & skew"
        let page = IncidentListPage(full, query: query, limit: 3, me: nil, now: Self.start)
        #expect(page.next == "/incidents?before=7&state=triggered&severity=warning&text=drift%20%26%20skew")
        #expect(page.states.filter(\.selected).map(\.value) == ["triggered"])
        #expect(page.severities.filter(\.selected).map(\.value) == ["warning"] && page.filtered)
        let last = IncidentListPage(Array(full.prefix(2)), query: .init(), limit: 3, me: nil, now: Self.start)
        #expect(last.next == nil && !last.filtered)
        #expect(Pages.fields(last)["next"] == .null, "no link is rendered")
        #expect(last.states.allSatisfy { !$0.selected })
    }
}

/// The Incidents page's filters, against a real database.
@Suite struct IncidentListFilterTests {
    @Test func theIncidentsPageFiltersLikeTheAPIAndTheCLI() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let drift = try await f.fireDrift(client)
            let sent = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("g1", "firing", ["alertname": "GPUMemoryHigh", "service": "trainer", "severity": "info"])])
            )
            #expect(sent.status == .ok)
            var browser = Browser(client)
            _ = try await browser.signIn("viewer-user", AccessFixture.password)
            func listed(_ query: String) async throws -> [String] {
                let page = try await browser.request("/incidents?\(query)")
                return page.text.components(separatedBy: "class=\"title\" href=\"/incidents/").dropFirst().compactMap {
                    $0.split(separator: "\"").first.map { "INC-\($0)" }
                }
            }
            #expect(try await listed("").count == 2)
            #expect(try await listed("runbook=feature-drift") == [drift])
            #expect(try await listed("model=ranker&severity=") == [drift], "an empty filter filters nothing")
            let trainer = try await listed("service=trainer")
            #expect(trainer.count == 1 && !trainer.contains(drift))
            // The GPU alert's title is its summary, "drift on ?" (no model label).
            #expect(try await listed("text=ON%20%3F") == trainer, "words in the title, in any case")
            #expect(try await listed("text=50%25").isEmpty, "% matches itself")
            #expect(try await listed("owner=nobody-at-all").isEmpty)
            let bad = try await browser.request("/incidents?severity=loud")
            #expect(bad.status == .badRequest && bad.text.contains("severity: must be info, warning or critical"))
            #expect(bad.text.contains("No incidents match") == false, "a bad filter shows the unfiltered list")
            let api = try await client.execute("/api/v1/incidents?text=on%20%3F", headers: f.headers(.viewer))
            #expect(api.text.contains(trainer[0]) && !api.text.contains(drift))
        }
    }
}
