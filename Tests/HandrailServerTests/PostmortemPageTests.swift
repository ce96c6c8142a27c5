import Foundation
import HandrailCore
import Testing

@testable import HandrailServer
@testable import HandrailStore

/// The postmortem page's view model: who may edit, and the next review step or who it waits for.
@Suite struct PostmortemPageTests {
    static func stored(_ state: PostmortemState) -> StoredPostmortem {
        let at = Date(timeIntervalSince1970: 1_763_283_600)
        return StoredPostmortem(
            id: 1,
            incident: "INC-102",
            state: state,
            factsJSON: "{}",
            factsGeneratedAt: at,
            createdBy: "ana",
            submittedBy: state == .draft ? nil : "ana",
            submittedAt: state == .draft ? nil : at,
            approvedBy: nil,
            approvedAt: nil,
            publishedBy: nil,
            publishedAt: nil,
            sections: [
                .init(
                    section: .rootCause,
                    markdown: "a config push",
                    editedBy: "ben",
                    editedAt: at,
                    history: [.init(by: "ben", at: at, characters: 13)]
                )
            ],
            actionItems: [
                .init(id: 3, title: "Alert on the guard", owner: "ben", dueDate: "2026-12-01", status: "open", createdBy: "ana", closedAt: nil)
            ]
        )
    }

    static func page(_ state: PostmortemState, _ role: Role) -> PostmortemPage {
        let (detail, decisions) = canaryIncident()
        let document = PostmortemDocument.build(detail, decisions: decisions, thresholds: [], timeZone: "UTC")
        let people = [
            User(
                id: 1,
                username: "ben",
                displayName: "Ben",
                email: nil,
                role: .responder,
                disabled: false,
                mustChangePassword: false,
                createdAt: Date()
            )
        ]
        return PostmortemPage(Self.stored(state), number: 102, document: document, markdown: "# Postmortem", role: role, people: people)
    }

    @Test func aResponderEditsADraftAndSubmitsIt() {
        let page = Self.page(.draft, .responder)
        #expect(page.editable && page.people.map(\.username) == ["ben"])
        #expect(page.nextStep?.action == "submit" && page.nextWaits == nil)
        #expect(page.sections.first { $0.section == "root_cause" }?.edited?.hasPrefix("last edited by ben") == true)
        #expect(page.sections.first { $0.section == "went_well" }?.edited == nil)
        #expect(page.actionItems.first?.statuses.filter(\.selected).map(\.value) == ["open"])
    }

    @Test func approvalWaitsForAManagerAndAViewerEditsNothing() {
        let responder = Self.page(.inReview, .responder)
        #expect(responder.nextStep == nil)
        #expect(responder.nextWaits == "Approve needs the manager role or higher.")
        #expect(Self.page(.inReview, .manager).nextStep?.action == "approve")
        let viewer = Self.page(.draft, .viewer)
        #expect(!viewer.editable && viewer.people.isEmpty)
        let published = Self.page(.published, .admin)
        #expect(published.published && !published.editable && published.nextStep == nil && published.nextWaits == nil)
    }
}
