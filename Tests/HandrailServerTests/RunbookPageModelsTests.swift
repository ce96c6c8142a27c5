import Foundation
import HandrailCore
import Testing

@testable import HandrailServer

/// The runbook pages' view models.
@Suite struct RunbookPageModelsTests {
    @Test func aDiffMarksAddedAndRemovedLinesButNotTheFileHeaders() {
        let page = RunbookDiffPage(id: "drift", from: 1, to: 2, diff: "--- v1\n+++ v2\n-old\n+new\n same")
        #expect(page.lines.map(\.kind) == ["", "", "del", "add", ""])
        #expect(page.title == "drift: v1 → v2" && !page.same)
        #expect(RunbookDiffPage(id: "drift", from: 2, to: 2, diff: "").same)
    }
}
