import Foundation
import HandrailCore
import HandrailStore
import Hummingbird
import NIOCore

extension PostmortemRequirement {
    /// What is missing from `stored`, as people read it ("Root cause", "an action item").
    static func missing(_ required: [PostmortemRequirement], in stored: StoredPostmortem) -> [(field: String, label: String)] {
        required.compactMap { r in
            switch r {
            case .section(let s): stored.written(s) == nil ? (s.rawValue, PostmortemPages.sectionLabels[s]?.0 ?? s.rawValue) : nil
            case .actionItems: stored.actionItems.isEmpty ? ("action_items", "at least one action item") : nil
            }
        }
    }
}

/// Postmortems: a draft for a resolved incident (responder and up), the sections people
/// write (every edit kept), action items, and the review — submit (responder), approve and
/// publish (manager and up). Review needs the required sections filled, an approver other
/// than the author (an administrator may override, with a reason), and facts newer than
/// the incident's last reopening. A published postmortem is read-only (its action items are
/// still tracked) until its incident reopens. Reads for viewers, as Markdown, HTML or JSON.
struct PostmortemController {
    let store: PostmortemStore
    let generator: PostmortemGenerator
    let renderer: DocumentRenderer
    var required: [PostmortemRequirement] = PostmortemRequirement.defaults

    func addRoutes(to routes: Routes) {
        let base = "/api/v1/incidents/:ref/postmortem"
        routes.on(.get, "/api/v1/postmortems", .role(.viewer)) { request, _ in
            var state: PostmortemState?
            if let text = request.uri.queryParameters.get("state") {
                guard let s = PostmortemState(rawValue: text) else {
                    throw APIError(.badRequest, "must be one of \(PostmortemState.allCases.map(\.rawValue).joined(separator: ", "))", field: "state")
                }
                state = s
            }
            return ListBody(
                postmortems: try await store.list(state: state).map {
                    .init(incident: IncidentRef.display($0.number), state: $0.state.rawValue, title: $0.title)
                }
            )
        }
        routes.on(.post, base, .role(.responder)) { _, context in
            let number = try IncidentController.number(context)
            try await create(number, context)
            return EditedResponse(status: .created, response: try await body(number))
        }
        routes.on(.get, base, .role(.viewer)) { request, context in
            let number = try IncidentController.number(context)
            let view = try await body(number)
            switch try HandoffController.format(request) {
            case "md": return HandoffController.text(try render(view.document), type: "text/markdown; charset=utf-8")
            case "html":
                let page = DocumentRenderer.page(title: "Postmortem \(view.postmortem.incident)", markdown: try render(view.document))
                return HandoffController.text(page, type: "text/html; charset=utf-8")
            default: return try view.response(from: request, context: context)
            }
        }
        routes.on(.put, "\(base)/sections/:section", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let section = try PostmortemSection.parse(try context.parameters.require("section"))
            let input = try await request.decodeJSON(SectionInput.self, context: context)
            try await editSection(number, section, markdown: input.markdown, context)
            return try await body(number)
        }
        routes.on(.post, "\(base)/regenerate", .role(.responder)) { _, context in
            let number = try IncidentController.number(context)
            guard let facts = try await generator.facts(number: number) else { throw IncidentController.notFound(number) }
            try Self.check(try await store.regenerate(number: number, factsJSON: try Self.json(facts)), number, "regenerate")
            return try await body(number)
        }
        for (action, state, role) in Self.reviewSteps {
            routes.on(.post, "\(base)/\(action)", .role(role)) { request, context in
                let number = try IncidentController.number(context)
                let input = try await request.decodeOptionalJSON(ReviewInput.self, context: context)
                try await advance(number, to: state, action: action, overrideReason: input?.overrideReason, context)
                return try await body(number)
            }
        }
        routes.on(.post, "\(base)/revise", .role(.manager)) { _, context in
            let number = try IncidentController.number(context)
            try await revise(number, context)
            return try await body(number)
        }
        routes.on(.put, "\(base)/reviewer", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let input = try await request.decodeJSON(ReviewerInput.self, context: context)
            try await assignReviewer(number, input.reviewer, context)
            return try await body(number)
        }
        routes.on(.post, "\(base)/action-items", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let input = try await request.decodeJSON(ActionItemInput.self, context: context)
            try await addActionItem(number, input, context)
            return EditedResponse(status: .created, response: try await body(number))
        }
        routes.on(.post, "\(base)/action-items/:id", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be an action item id", field: "id") }
            let input = try await request.decodeJSON(StatusInput.self, context: context)
            try await setActionItem(number, id, status: input.status)
            return try await body(number)
        }
    }

    /// The review's steps: the action in the path, the state it leads to, the least role.
    static let reviewSteps: [(action: String, state: PostmortemState, role: Role)] = [
        ("submit", .inReview, .responder), ("approve", .approved, .manager), ("publish", .published, .manager),
    ]

    /// Generates the draft of a resolved incident (API and pages).
    func create(_ number: Int64, _ context: HandrailRequestContext) async throws {
        let user = try Self.user(context)
        guard let facts = try await generator.facts(number: number) else { throw IncidentController.notFound(number) }
        switch try await store.create(number: number, factsJSON: try Self.json(facts), by: user.id) {
        case .created: return
        case .notFound: throw IncidentController.notFound(number)
        case .notResolved(let state):
            throw APIError(
                .conflict,
                "\(IncidentRef.display(number)) is \(state.rawValue); a postmortem is written for a resolved incident",
                field: "state"
            )
        case .exists: throw APIError(.conflict, "\(IncidentRef.display(number)) has a postmortem already")
        }
    }

    /// Replaces a section people write; the edit history keeps every version (API and pages).
    func editSection(_ number: Int64, _ section: PostmortemSection, markdown: String, _ context: HandrailRequestContext) async throws {
        let user = try Self.user(context)
        guard markdown.count <= 100_000 else { throw APIError(.badRequest, "must be at most 100000 characters", field: "markdown") }
        try Self.check(try await store.editSection(number: number, section: section, markdown: markdown, by: user.id), number, "edit")
    }

    /// Saves every section whose text in `form` differs from the stored one, in one
    /// transaction (the page's one form of sections).
    func editSections(_ number: Int64, form: (PostmortemSection) -> String?, _ context: HandrailRequestContext) async throws {
        let user = try Self.user(context)
        guard let stored = try await store.find(number: number) else { throw Self.noPostmortem(number) }
        var edits: [(PostmortemSection, String)] = []
        for section in PostmortemSection.allCases {
            guard let text = form(section) else { continue }
            guard text.count <= 100_000 else { throw APIError(.badRequest, "must be at most 100000 characters", field: section.rawValue) }
            let current = stored.sections.first { $0.section == section }?.markdown ?? ""
            if text != current { edits.append((section, text)) }
        }
        guard !edits.isEmpty else { return }
        try Self.check(try await store.editSections(number: number, edits, by: user.id), number, "edit")
    }

    /// One review step (API and pages); the route's access already checked the role. Every
    /// step needs the required sections filled and facts newer than the incident's last
    /// reopening; approving needs someone other than the author, or an administrator's
    /// override with its reason.
    func advance(
        _ number: Int64,
        to state: PostmortemState,
        action: String,
        overrideReason: String? = nil,
        _ context: HandrailRequestContext
    ) async throws {
        let user = try Self.user(context)
        guard let stored = try await store.find(number: number) else { throw Self.noPostmortem(number) }
        let ref = IncidentRef.display(number)
        if stored.needsRevision, stored.state != .published {
            throw APIError(
                .conflict,
                "\(ref) reopened after these facts were generated: regenerate the facts once it is resolved again, then \(action)",
                field: "facts"
            )
        }
        let missing = PostmortemRequirement.missing(required, in: stored)
        if let first = missing.first {
            throw APIError(
                .conflict,
                "the postmortem of \(ref) needs \(missing.map(\.label).joined(separator: ", ")) before review",
                field: first.field
            )
        }
        var reason: String?
        if state == .approved, stored.submittedBy == user.username {
            let text = overrideReason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard user.role == .admin, !text.isEmpty else {
                throw APIError(
                    .forbidden,
                    "\(user.username) submitted this postmortem; someone else approves it (an administrator may override, giving a reason)",
                    field: user.role == .admin ? "override_reason" : "approved_by"
                )
            }
            guard text.count <= 1000 else { throw APIError(.badRequest, "must be at most 1000 characters", field: "override_reason") }
            reason = text
        }
        let result = try await store.advance(number: number, to: state, by: user.id, overrideReason: reason)
        if result == .ownApproval {
            throw APIError(.forbidden, "\(user.username) submitted this postmortem; someone else approves it", field: "approved_by")
        }
        try Self.check(result, number, action)
    }

    /// Takes a published postmortem back to draft after its incident reopened (API and pages).
    func revise(_ number: Int64, _ context: HandrailRequestContext) async throws {
        let user = try Self.user(context)
        let result = try await store.reopenForRevision(number: number, by: user.id)
        if case .refused(.published) = result {
            throw APIError(
                .conflict,
                "the postmortem of \(IncidentRef.display(number)) is published and its incident has not reopened since; it stays read-only",
                field: "state"
            )
        }
        try Self.check(result, number, "revise")
    }

    /// Asks one person to approve (nil: nobody in particular) (API and pages).
    func assignReviewer(_ number: Int64, _ reviewer: String?, _ context: HandrailRequestContext) async throws {
        _ = try Self.user(context)
        let name = reviewer.flatMap { $0.isEmpty ? nil : $0 }
        switch try await store.assignReviewer(number: number, reviewer: name) {
        case .assigned: return
        case .notFound: throw Self.noPostmortem(number)
        case .unknownReviewer: throw APIError(.badRequest, "no enabled user \((name ?? "").debugDescription)", field: "reviewer")
        case .published: throw APIError(.conflict, "the postmortem of \(IncidentRef.display(number)) is published and read-only", field: "state")
        }
    }

    /// Adds an action item (API and pages).
    func addActionItem(_ number: Int64, _ input: ActionItemInput, _ context: HandrailRequestContext) async throws {
        let user = try Self.user(context)
        let title = input.title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...300).contains(title.count) else { throw APIError(.badRequest, "must be 1 to 300 characters", field: "title") }
        guard let due = LocalDate(input.dueDate) else { throw APIError(.badRequest, "must be a date such as 2026-12-01", field: "due_date") }
        switch try await store.addActionItem(number: number, title: title, owner: input.owner, due: due, by: user.id) {
        case .done: return
        case .notFound: throw Self.noPostmortem(number)
        case .unknownOwner: throw APIError(.badRequest, "no enabled user \(input.owner.debugDescription)", field: "owner")
        case .published: throw APIError(.conflict, "the postmortem of \(IncidentRef.display(number)) is published and read-only")
        }
    }

    /// Moves an action item to open, done or dropped (API and pages).
    func setActionItem(_ number: Int64, _ id: Int64, status: String) async throws {
        guard ["open", "done", "dropped"].contains(status) else { throw APIError(.badRequest, "must be open, done or dropped", field: "status") }
        switch try await store.setActionItem(number: number, id: id, status: status) {
        case .done: return
        case .notFound, .unknownOwner, .published:
            throw APIError(.notFound, "the postmortem of \(IncidentRef.display(number)) has no action item \(id)")
        }
    }

    struct SectionInput: Decodable { let markdown: String }
    struct ReviewInput: Decodable { let overrideReason: String? }
    struct ReviewerInput: Decodable { let reviewer: String? }
    struct ActionItemInput: Decodable {
        let title: String
        let owner: String
        let dueDate: String
    }
    struct StatusInput: Decodable { let status: String }

    struct ListBody: ResponseEncodable {
        struct Item: Encodable {
            let incident: String
            let state: String
            let title: String
        }
        let postmortems: [Item]
    }

    /// The stored postmortem and the document it renders to.
    struct Body: ResponseEncodable {
        let postmortem: StoredPostmortem
        let document: PostmortemDocument

        enum Key: String, CodingKey { case document }

        func encode(to encoder: any Encoder) throws {
            try postmortem.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(document, forKey: .document)
        }
    }

    func body(_ number: Int64) async throws -> Body {
        guard let stored = try await store.find(number: number) else { throw Self.noPostmortem(number) }
        return Body(postmortem: stored, document: try await generator.view(stored, number: number))
    }

    func render(_ document: PostmortemDocument) throws -> String {
        do {
            return try renderer.postmortem(document)
        } catch let error as TemplateError {
            throw APIError(.internalServerError, "the postmortem template failed: \(error.description)")
        }
    }

    static func json(_ facts: PostmortemDocument) throws -> String {
        String(decoding: try JSONEncoder().encode(facts), as: UTF8.self)
    }

    static func check(_ result: PostmortemStore.ChangeResult, _ number: Int64, _ action: String) throws {
        switch result {
        case .changed: return
        case .notFound: throw noPostmortem(number)
        case .ownApproval: throw APIError(.forbidden, "the author of a postmortem does not approve it", field: "approved_by")
        case .refused(let state):
            if state == .published {
                throw APIError(.conflict, "the postmortem of \(IncidentRef.display(number)) is published and read-only", field: "state")
            }
            throw APIError(
                .conflict,
                "the postmortem of \(IncidentRef.display(number)) is \(state.rawValue); \(action) does not apply",
                field: "state"
            )
        }
    }

    static func user(_ context: HandrailRequestContext) throws -> User {
        guard let user = context.user else { throw APIError(.forbidden, "only people work on postmortems") }
        return user
    }

    static func noPostmortem(_ number: Int64) -> APIError { APIError(.notFound, "\(IncidentRef.display(number)) has no postmortem") }
}
