import Foundation
import HandrailCore
import HandrailStore
import Hummingbird
import Markdown
import NIOCore

/// Postmortem pages for managers and responders: the list by review state, one postmortem
/// with its generated facts and the sections people write, action items, and the review.
struct PostmortemPages {
    let web: WebController
    var controller: PostmortemController { web.postmortems }

    static let sectionLabels: [PostmortemSection: (String, String)] = [
        .impact: ("Summary of impact", "Who was affected, how, and for how long."),
        .rootCause: ("Root cause", "What made this happen, as far as we know."),
        .contributingFactors: ("Contributing factors", "What made it worse or harder to see."),
        .wentWell: ("What went well", "Keep doing these."),
        .wentBadly: ("What went badly", "Each usually becomes an action item."),
    ]

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/postmortems", .role(.viewer)) { request, context in
            let wanted = request.uri.queryParameters.get("state").flatMap(PostmortemState.init(rawValue:))
            let page = PostmortemsPage(try await controller.store.list(state: wanted), wanted: wanted, queue: try await controller.store.queue())
            return try web.pages.render("postmortems.html", page, context: context)
        }
        let base = "/incidents/:ref/postmortem"
        routes.on(.get, base, .role(.viewer)) { _, context in try await page(try IncidentController.number(context), context) }
        routes.on(.post, base, .role(.responder)) { _, context in
            let number = try IncidentController.number(context)
            return try await WebController.answer({ try await web.incidentPage(number, context, error: $0, status: $1) }) {
                try await controller.create(number, context)
                return Response(status: .seeOther, headers: [.location: "/incidents/\(number)/postmortem"])
            }
        }
        // One form holds every section: whichever Save is pressed, every section whose text
        // changed is kept, so saving one never discards what was typed in another.
        routes.on(.post, "\(base)/sections", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let form = try await WebController.form(request)
            return try await act(number, context, anchor: "sections") {
                try await controller.editSections(number, form: { form["markdown_\($0.rawValue)"] }, context)
            }
        }
        for step in PostmortemController.reviewSteps {
            routes.on(.post, "\(base)/\(step.action)", .role(step.role)) { request, context in
                let number = try IncidentController.number(context)
                let form = try await WebController.form(request)
                return try await act(number, context, anchor: "review") {
                    try await controller.advance(number, to: step.state, action: step.action, overrideReason: form["override_reason"], context)
                }
            }
        }
        routes.on(.post, "\(base)/revise", .role(.manager)) { _, context in
            let number = try IncidentController.number(context)
            return try await act(number, context, anchor: "review") { try await controller.revise(number, context) }
        }
        routes.on(.post, "\(base)/reviewer", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let form = try await WebController.form(request)
            return try await act(number, context, anchor: "review") { try await controller.assignReviewer(number, form["reviewer"], context) }
        }
        routes.on(.post, "\(base)/regenerate", .role(.responder)) { _, context in
            let number = try IncidentController.number(context)
            return try await act(number, context, anchor: "facts") {
                guard let facts = try await controller.generator.facts(number: number) else { throw IncidentController.notFound(number) }
                try PostmortemController.check(
                    try await controller.store.regenerate(number: number, factsJSON: try PostmortemController.json(facts)),
                    number,
                    "regenerate"
                )
            }
        }
        routes.on(.post, "\(base)/action-items", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let f = try await WebController.form(request)
            return try await act(number, context, anchor: "action-items") {
                try await controller.addActionItem(
                    number,
                    .init(title: f["title"] ?? "", owner: f["owner"] ?? "", dueDate: f["due_date"] ?? ""),
                    context
                )
            }
        }
        routes.on(.post, "\(base)/action-items/:id", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be an action item id", field: "id") }
            let f = try await WebController.form(request)
            return try await act(number, context, anchor: "action-items") {
                try await controller.setActionItem(number, id, status: f["status"] ?? "")
            }
        }
    }

    static func label(_ state: PostmortemState) -> String {
        switch state {
        case .draft: "Draft"
        case .inReview: "In review"
        case .approved: "Approved"
        case .published: "Published"
        }
    }

    func act(_ number: Int64, _ context: HandrailRequestContext, anchor: String, _ work: () async throws -> Void) async throws -> Response {
        try await WebController.answer(
            { try await page(number, context, error: $0, status: $1) },
            {
                try await work()
                return Response(status: .seeOther, headers: [.location: "/incidents/\(number)/postmortem#\(anchor)"])
            }
        )
    }

    func page(_ number: Int64, _ context: HandrailRequestContext, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let stored = try await controller.store.find(number: number) else {
            // No postmortem yet: the incident page offers to generate one.
            guard try await web.store.id(number: number) != nil else { throw IncidentController.notFound(number) }
            return Response(status: .seeOther, headers: [.location: "/incidents/\(number)#postmortem"])
        }
        let document = try await controller.generator.view(stored, number: number)
        let role = context.user?.role ?? .viewer
        let page = PostmortemPage(
            stored,
            number: number,
            document: document,
            markdown: try controller.render(document),
            role: role,
            username: context.user?.username,
            people: stored.state != .published && role >= .responder ? try await web.users.list() : [],
            required: controller.required,
            error: error
        )
        return try web.pages.render("postmortem.html", status: status, page, context: context)
    }

    static func actionLabel(_ action: String) -> String {
        switch action {
        case "submit": "Submit for review"
        case "approve": "Approve"
        default: "Publish"
        }
    }
}
