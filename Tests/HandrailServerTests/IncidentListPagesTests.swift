import Foundation
import HandrailCore
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

    @Test func nowListsTheUnacknowledgedFirstThenTheMostSevereThenTheOldest() {
        let open = [
            Self.incident(1, .warning, owner: "ana", openedMinutesAgo: 90, state: .acknowledged),
            Self.incident(2, .critical, owner: nil, openedMinutesAgo: 10),
            Self.incident(3, .info, owner: "ben", openedMinutesAgo: 5, state: .acknowledged),
            Self.incident(4, .critical, owner: "ana", openedMinutesAgo: 60, state: .acknowledged),
            Self.incident(5, .warning, owner: nil, openedMinutesAgo: 120),
            // New, triggered, not accepted: above the older acknowledged warning (INC-1).
            Self.incident(6, .warning, owner: "ben", openedMinutesAgo: 1),
            Self.incident(7, .info, owner: nil, openedMinutesAgo: 30, state: .reopened),
        ]
        let page = NowPage(open: open, resolved: [], me: "ben", watermark: 7, now: Self.start)
        #expect(page.open.map(\.number) == [2, 5, 6, 7, 4, 1, 3])
        #expect(page.open.filter(\.mine).map(\.number) == [6, 3])
        #expect(page.open.first { $0.number == 2 }?.unowned == true)
        #expect(page.open.first { $0.number == 5 }?.age == "2 h")
        #expect(page.openCount == 7 && page.live == "/live?since=7")
        let anonymous = NowPage(open: open, resolved: [], me: nil, watermark: 0, now: Self.start)
        #expect(anonymous.open.allSatisfy { !$0.mine }, "nobody's own without a visitor, even unowned ones")
    }

    @Test func theIncidentListLinksToTheNextPageOnlyWhenThisOneIsFull() {
        let full = (1...3).map { Self.incident(Int64(10 - $0), .warning, owner: nil, openedMinutesAgo: $0) }
        let page = IncidentListPage(full, state: "triggered", limit: 3, me: nil, now: Self.start)
        #expect(page.next == "/incidents?before=7&state=triggered")
        #expect(page.states.filter(\.selected).map(\.value) == ["triggered"])
        let last = IncidentListPage(Array(full.prefix(2)), state: nil, limit: 3, me: nil, now: Self.start)
        #expect(last.next == nil)
        #expect(Pages.fields(last)["next"] is NSNull, "no link is rendered")
        #expect(last.states.allSatisfy { !$0.selected })
    }
}
