import Foundation
import HandrailCore
import HandrailStore
import Markdown

/// What `postmortem.html` shows: the generated document, the sections people write, action
/// items and the review, with what the visitor may do.
struct PostmortemPage: PageModel {
    struct SectionRow: PageModel {
        var section: String
        var label: String
        var hint: String
        var markdown: String
        var edited: String?
    }

    struct StatusChoice: PageModel {
        var value: String
        var selected: Bool
    }

    struct ActionItemRow: PageModel {
        var id: Int64
        var title: String
        var owner: String
        var due: String
        var status: String
        var statuses: [StatusChoice]
    }

    struct Person: PageModel {
        var username: String
        var displayName: String
        /// The incident's owner: a new action item's owner unless someone else is chosen.
        var selected = false
    }

    struct Line: PageModel { var line: String }

    struct Step: PageModel {
        var action: String
        var label: String
        /// An administrator approving what they submitted gives a reason.
        var needsReason = false
    }

    struct Choice: PageModel {
        var username: String
        var displayName: String
        var selected: Bool
    }

    var title: String
    var navPostmortems = true
    var number: Int64
    var ref: String
    var incidentTitle: String
    var state: String
    var stateLabel: String
    var published: Bool
    var documentHtml: String
    var sections: [SectionRow]
    var editable: Bool
    var actionItems: [ActionItemRow]
    var hasActionItems: Bool
    var people: [Person]
    var review: [Line]
    /// The next review step, when the visitor may take it.
    var nextStep: Step?
    /// Who may take the next review step, when the visitor may not.
    var nextWaits: String?
    /// What the review still needs, when something required is missing.
    var missing: String?
    /// The incident reopened after the facts were generated.
    var revisionNotice: String?
    /// A published postmortem whose incident reopened: a manager takes it back to draft.
    var canRevise: Bool
    /// Who may be asked to approve (managers and up other than the author), when the visitor
    /// may assign one.
    var reviewers: [Choice]
    var hasReviewers: Bool
    var error: String?

    /// - Parameters:
    ///   - people: who may own an action item or review (read only when the postmortem is editable).
    ///   - username: the visitor's, to tell the author from others.
    init(
        _ stored: StoredPostmortem,
        number: Int64,
        document: PostmortemDocument,
        markdown: String,
        role: Role,
        username: String? = nil,
        people: [User],
        required: [PostmortemRequirement] = PostmortemRequirement.defaults,
        error: String? = nil
    ) {
        let time = WebController.time
        let editable = stored.state != .published && role >= .responder
        title = "Postmortem \(stored.incident)"
        self.number = number
        ref = stored.incident
        incidentTitle = document.title
        state = stored.state.rawValue
        stateLabel = PostmortemPages.label(stored.state)
        published = stored.state == .published
        documentHtml = Markdown.html(markdown)
        sections = PostmortemSection.allCases.map { s in
            let written = stored.sections.first { $0.section == s }
            let (label, hint) = PostmortemPages.sectionLabels[s] ?? (s.rawValue, "")
            let isRequired = required.contains(.section(s))
            return SectionRow(
                section: s.rawValue,
                label: label,
                hint: (isRequired ? "Required before review. " : "") + hint,
                markdown: written?.markdown ?? "",
                edited: written.map {
                    "last edited by \($0.editedBy) at \(time($0.editedAt)); \(NumberText.count($0.history.count, "edit"))"
                }
            )
        }
        self.editable = editable
        actionItems = stored.actionItems.map { a in
            ActionItemRow(
                id: a.id,
                title: a.title,
                owner: a.owner,
                due: a.dueDate,
                status: a.status,
                statuses: ["open", "done", "dropped"].map { StatusChoice(value: $0, selected: $0 == a.status) }
            )
        }
        hasActionItems = !actionItems.isEmpty
        let enabled = editable ? people.filter { !$0.disabled } : []
        self.people = enabled.map { Person(username: $0.username, displayName: $0.displayName, selected: $0.username == document.owner) }
        reviewers = enabled.filter { $0.role >= .manager && $0.username != stored.submittedBy }.map {
            Choice(username: $0.username, displayName: $0.displayName, selected: $0.username == stored.reviewer)
        }
        hasReviewers = !reviewers.isEmpty
        var review = ["Draft generated by \(stored.createdBy) (facts of \(time(stored.factsGeneratedAt)))."]
        let publication = stored.publishedBy.flatMap { by in stored.publishedAt.map { "Published by \(by) at \(time($0))." } }
        if let by = stored.revisionOpenedBy, let at = stored.revisionOpenedAt {
            // The earlier publication, until the revision is published in its place.
            if stored.state != .published, let publication { review.append(publication) }
            review.append("The incident reopened; \(by) took the postmortem back to draft for revision at \(time(at)).")
        }
        if let by = stored.submittedBy, let at = stored.submittedAt { review.append("Submitted for review by \(by) at \(time(at)).") }
        if let reviewer = stored.reviewer, stored.state < .approved { review.append("Reviewer: \(reviewer).") }
        if let by = stored.approvedBy, let at = stored.approvedAt {
            review.append(
                "Approved by \(by) at \(time(at))"
                    + (stored.approvalOverrideReason.map { ", who submitted it, as an administrator's override: “\($0)”." } ?? ".")
            )
        }
        if stored.state == .published, let publication { review.append(publication) }
        self.review = review.map { Line(line: $0) }
        let missing = PostmortemRequirement.missing(required, in: stored)
        self.missing =
            missing.isEmpty || stored.state == .published
            ? nil : "Before review this postmortem needs: \(missing.map(\.label).joined(separator: ", "))."
        revisionNotice =
            stored.needsRevision
            ? (stored.state == .published
                ? "The incident reopened after this postmortem was published: it needs revision."
                : "The incident reopened after these facts were generated: once it is resolved again, regenerate the facts before review.")
            : nil
        canRevise = stored.state == .published && stored.needsRevision && role >= .manager
        let next = PostmortemController.reviewSteps.first {
            PostmortemState.allCases.firstIndex(of: $0.state) == (PostmortemState.allCases.firstIndex(of: stored.state) ?? 0) + 1
        }
        let author = next?.state == .approved && username != nil && username == stored.submittedBy
        if let s = next, role >= s.role, !(author && role < .admin) {
            nextStep = Step(action: s.action, label: PostmortemPages.actionLabel(s.action), needsReason: author)
            nextWaits = nil
        } else if let s = next, role >= s.role {
            nextStep = nil
            nextWaits = "You submitted this postmortem; someone else approves it" + (stored.reviewer.map { " (the reviewer is \($0))" } ?? "") + "."
        } else {
            nextStep = nil
            nextWaits = next.map { "\(PostmortemPages.actionLabel($0.action)) needs the \($0.role.rawValue) role or higher." }
        }
        self.error = error
    }
}

/// `postmortems.html`: postmortems, optionally of one review state.
struct PostmortemsPage: PageModel {
    struct Row: PageModel {
        var incident: String
        var number: Int64
        var title: String
        var state: String
        var stateLabel: String
    }

    struct StateChoice: PageModel {
        var value: String
        var label: String
        var current: Bool
    }

    struct QueueRow: PageModel {
        var ref: String
        var number: Int64
        var title: String
        var why: String
    }

    var title = "Postmortems"
    var navPostmortems = true
    var postmortems: [Row]
    var states: [StateChoice]
    var all: Bool
    var filter: String?
    /// Resolved incidents that need a postmortem and have none; overdue action items.
    var needed: [QueueRow]
    var overdue: [QueueRow]

    init(
        _ list: [(number: Int64, state: PostmortemState, title: String)],
        wanted: PostmortemState?,
        queue: (needed: [PostmortemStore.QueueItem], overdue: [PostmortemStore.QueueItem]) = ([], [])
    ) {
        needed = queue.needed.map {
            QueueRow(
                ref: IncidentRef.display($0.number),
                number: $0.number,
                title: $0.title,
                why: $0.why + ($0.at.map { "; resolved \(WebController.time($0))" } ?? "")
            )
        }
        overdue = queue.overdue.map { QueueRow(ref: IncidentRef.display($0.number), number: $0.number, title: $0.title, why: $0.why) }
        postmortems = list.map {
            Row(
                incident: IncidentRef.display($0.number),
                number: $0.number,
                title: $0.title,
                state: $0.state.rawValue,
                stateLabel: PostmortemPages.label($0.state)
            )
        }
        states = PostmortemState.allCases.map { StateChoice(value: $0.rawValue, label: PostmortemPages.label($0), current: $0 == wanted) }
        all = wanted == nil
        filter = wanted.map(PostmortemPages.label)
    }
}
