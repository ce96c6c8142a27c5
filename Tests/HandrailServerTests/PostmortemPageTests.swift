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
            reviewer: nil,
            approvalOverrideReason: nil,
            revisionOpenedBy: nil,
            revisionOpenedAt: nil,
            needsRevision: false,
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

    static func page(
        _ state: PostmortemState,
        _ role: Role,
        username: String? = nil,
        change: (inout StoredPostmortem) -> Void = { _ in }
    ) -> PostmortemPage {
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
        var stored = Self.stored(state)
        change(&stored)
        return PostmortemPage(stored, number: 102, document: document, markdown: "# Postmortem", role: role, username: username, people: people)
    }

    @Test func aResponderEditsADraftAndSubmitsIt() {
        let page = Self.page(.draft, .responder)
        #expect(page.editable && page.people.map(\.username) == ["ben"])
        #expect(page.people.first?.selected == true, "a new action item is the incident owner's unless someone else is chosen")
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

    @Test func theAuthorWaitsForSomeoneElseToApproveAndAnAdministratorGivesAReason() {
        let author = Self.page(.inReview, .manager, username: "ana")
        #expect(author.nextStep == nil)
        #expect(author.nextWaits == "You submitted this postmortem; someone else approves it.")
        let other = Self.page(.inReview, .manager, username: "mara")
        #expect(other.nextStep?.action == "approve" && other.nextStep?.needsReason == false)
        let admin = Self.page(.inReview, .admin, username: "ana")
        #expect(admin.nextStep?.action == "approve" && admin.nextStep?.needsReason == true)
    }

    @Test func whatTheReviewStillNeedsIsSaidAndAReopenedIncidentAsksForRevision() {
        // The stored postmortem has a root cause and an action item, but no summary of impact.
        let draft = Self.page(.draft, .responder)
        #expect(draft.missing == "Before review this postmortem needs: Summary of impact.")
        #expect(draft.sections.first { $0.section == "impact" }?.hint.hasPrefix("Required before review.") == true)
        let filled = Self.page(.draft, .responder) {
            $0.sections.append(.init(section: .impact, markdown: "40 minutes of stale scores", editedBy: "ben", editedAt: Date(), history: []))
        }
        #expect(filled.missing == nil)
        let reopened = Self.page(.published, .manager) {
            $0.needsRevision = true
            $0.publishedBy = "mara"
            $0.publishedAt = Date()
        }
        #expect(reopened.canRevise && reopened.revisionNotice?.contains("needs revision") == true)
        #expect(!Self.page(.published, .lead) { $0.needsRevision = true }.canRevise)
        #expect(!Self.page(.published, .manager).canRevise)
    }
}
