import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// The incidents API for people: read (viewer and up), change (responder and up).
/// Integration keys cannot reach any of it.
struct IncidentController {
    let store: IncidentStore
    let publicURL: String?

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/api/v1/incidents", .role(.viewer)) { request, context in try await list(request, context) }
        routes.on(.get, "/api/v1/incidents/:ref", .role(.viewer)) { _, context in
            let number = try Self.number(context)
            guard let detail = try await store.detail(number: number) else { throw Self.notFound(number) }
            return DetailBody(detail: detail, url: url(number))
        }
        for transition in IncidentTransition.allCases {
            routes.on(.post, "/api/v1/incidents/:ref/\(transition.rawValue)", .role(.responder)) { request, context in
                try await change(request, context, transition)
            }
        }
        routes.on(.post, "/api/v1/incidents/:ref/notes", .role(.responder)) { request, context in
            let number = try Self.number(context)
            let input = try await request.decodeJSON(NoteInput.self, context: context)
            try await addNote(number, text: input.text, context)
            return try await detail(number)
        }
        roleRoutes(routes)
        routes.on(.post, "/api/v1/incidents/:ref/steps/:step", .role(.responder)) { request, context in
            let number = try Self.number(context)
            let step = try Self.step(context)
            let input = try await request.decodeJSON(StepInput.self, context: context)
            try await markStep(number, step: step, input, context)
            return try await detail(number)
        }
    }

    /// Adds a note (API and pages).
    func addNote(_ number: Int64, text: String, _ context: HandrailRequestContext) async throws {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw APIError(.badRequest, "must not be empty", field: "text") }
        guard text.count <= 10_000 else { throw APIError(.badRequest, "must be at most 10000 characters", field: "text") }
        guard try await store.addNote(number: number, text: text, by: try Self.actor(context)) else { throw Self.notFound(number) }
    }

    static func step(_ context: HandrailRequestContext) throws -> Int {
        // Steps are PostgreSQL integers: a larger number is no step either.
        guard let step = context.parameters.get("step", as: Int.self), (1...Int(Int32.max)).contains(step) else {
            throw APIError(.badRequest, "must be a step number (1, 2, …)", field: "step")
        }
        return step
    }

    /// Marks a runbook step done, skipped or failed, or undoes the mark (API and pages).
    func markStep(_ number: Int64, step: Int, _ input: StepInput, _ context: HandrailRequestContext) async throws {
        let (outcome, note) = try StepOutcome.validate(input.outcome, note: input.note)
        guard let user = context.user else { throw APIError(.forbidden, "only people mark runbook steps") }
        switch try await store.markStep(number: number, step: step, outcome: outcome, note: note, userID: user.id, username: user.username) {
        case .marked: return
        case .notFound: throw Self.notFound(number)
        case .noRunbook: throw APIError(.conflict, "\(IncidentRef.display(number)) has no runbook, so it has no steps", field: "step")
        case .noSuchStep(let count):
            throw APIError(.badRequest, "the runbook version of \(IncidentRef.display(number)) has \(count) step(s)", field: "step")
        case .nothingToUndo: throw APIError(.conflict, "step \(step) has no mark to undo", field: "outcome")
        }
    }

    func roleRoutes(_ routes: Routes) {
        routes.on(.post, "/api/v1/incidents/:ref/roles/:role", .role(.responder)) { request, context in
            let number = try Self.number(context)
            let role = try IncidentRole.parse(try context.parameters.require("role"))
            let input = try await request.decodeJSON(RoleInput.self, context: context)
            try await changeRole(number, role: role, input, context)
            return try await detail(number)
        }
        routes.on(.post, "/api/v1/incidents/:ref/roles/:role/accept", .role(.responder)) { _, context in
            let number = try Self.number(context)
            let role = try IncidentRole.parse(try context.parameters.require("role"))
            try await acceptRole(number, role: role, context)
            return try await detail(number)
        }
    }

    /// Takes, assigns or hands over an incident role (API and pages).
    func changeRole(_ number: Int64, role: IncidentRole, _ input: RoleInput, _ context: HandrailRequestContext) async throws {
        let change = try RoleChange.parse(input.action)
        guard let user = context.user else { throw APIError(.forbidden, "only people hold incident roles") }
        let reason = input.reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        let to: String
        switch change {
        case .take:
            if let other = input.to, !other.isEmpty, other != user.username {
                throw APIError(.badRequest, "take is for yourself; use assign to give the role to \(other)", field: "to")
            }
            to = user.username
        case .assign, .handOver:
            guard let other = input.to?.trimmingCharacters(in: .whitespaces), !other.isEmpty else {
                throw APIError(.badRequest, "must name the person who gets the role", field: "to")
            }
            guard let reason, !reason.isEmpty else {
                throw APIError(.badRequest, "say why (\(change.rawValue) is recorded with its reason)", field: "reason")
            }
            to = other
        }
        if let reason, reason.count > 2000 { throw APIError(.badRequest, "must be at most 2000 characters", field: "reason") }
        switch try await store.changeRole(
            number: number,
            role: role,
            change: change,
            to: to,
            reason: reason?.isEmpty == true ? nil : reason,
            by: (user.id, user.username)
        ) {
        case .changed, .unchanged: return
        case .notFound: throw Self.notFound(number)
        case .resolved: throw APIError(.conflict, "\(IncidentRef.display(number)) is resolved; its roles are history", field: "state")
        case .unknownUser: throw APIError(.badRequest, "no enabled responder (or higher role) named \(to.debugDescription)", field: "to")
        case .notHolder(let holder):
            throw APIError(.conflict, "only the \(role.rawValue) (\(holder ?? "nobody")) hands the role over; use assign", field: "action")
        }
    }

    /// Accepts a role one was given (API and pages).
    func acceptRole(_ number: Int64, role: IncidentRole, _ context: HandrailRequestContext) async throws {
        guard let user = context.user else { throw APIError(.forbidden, "only people hold incident roles") }
        switch try await store.acceptRole(number: number, role: role, by: (user.id, user.username)) {
        case .accepted: return
        case .notFound: throw Self.notFound(number)
        case .notPending(let holder):
            throw APIError(
                .conflict,
                holder == user.username
                    ? "you hold the \(role.rawValue) role already"
                    : "the \(role.rawValue) role of \(IncidentRef.display(number)) awaits no acceptance from you",
                field: "role"
            )
        }
    }

    struct RoleInput: Decodable {
        let action: String
        let to: String?
        let reason: String?
    }
    struct NoteInput: Decodable { let text: String }
    struct StepInput: Decodable {
        let outcome: String
        let note: String?
    }
    struct TransitionInput: Decodable { let note: String? }

    struct DetailBody: ResponseEncodable {
        let detail: IncidentDetail
        let url: String

        func encode(to encoder: any Encoder) throws {
            try detail.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(url, forKey: .url)
        }
        enum Key: CodingKey { case url }
    }

    struct ListBody: ResponseEncodable {
        let incidents: [IncidentSummary]
        let nextCursor: String?
    }

    func url(_ number: Int64) -> String {
        (publicURL ?? "") + "/incidents/\(number)"
    }

    func detail(_ number: Int64) async throws -> DetailBody {
        guard let detail = try await store.detail(number: number) else { throw Self.notFound(number) }
        return DetailBody(detail: detail, url: url(number))
    }

    func change(_ request: Request, _ context: HandrailRequestContext, _ transition: IncidentTransition) async throws -> DetailBody {
        let number = try Self.number(context)
        let note = try await request.decodeOptionalJSON(TransitionInput.self, context: context)?.note
        try await change(number, transition, note: note, context)
        return try await detail(number)
    }

    /// Acknowledges, mitigates, resolves or reopens (API and pages).
    func change(_ number: Int64, _ transition: IncidentTransition, note: String?, _ context: HandrailRequestContext) async throws {
        var note = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if note?.isEmpty == true { note = nil }
        if let note, note.count > 10_000 { throw APIError(.badRequest, "must be at most 10000 characters", field: "note") }
        switch try await store.transition(number: number, transition, note: note, by: try Self.actor(context)) {
        case .changed: return
        case .notFound: throw Self.notFound(number)
        case .refused(let current):
            throw APIError(
                .conflict,
                "\(IncidentRef.display(number)) is \(current.rawValue); \(transition.rawValue) applies to "
                    + transition.from.map(\.rawValue).joined(separator: ", ") + " incidents",
                field: "state"
            )
        }
    }

    func list(_ request: Request, _ context: HandrailRequestContext) async throws -> ListBody {
        let q = request.uri.queryParameters
        var filter = try Self.filter(q, context)
        if let cursor = q.get("cursor") {
            guard let n = IncidentRef.number(cursor) else {
                throw APIError(.badRequest, "must be the next_cursor of a previous page", field: "cursor")
            }
            filter.before = n
        }
        if let limit = q.get("limit") {
            guard let n = Int(limit), (1...200).contains(n) else { throw APIError(.badRequest, "must be a number from 1 to 200", field: "limit") }
            filter.limit = n
        }
        let page = try await store.list(filter)
        return ListBody(incidents: page, nextCursor: page.count == filter.limit ? page.last.map { String($0.number) } : nil)
    }

    /// The list filters the API and the Incidents page share: state (comma-separated),
    /// severity, runbook, service, model, owner (`me`: the visitor), text (in the title),
    /// since and until. Empty values filter nothing.
    static func filter(_ q: Parameters, _ context: HandrailRequestContext) throws -> IncidentFilter {
        func get(_ name: String) -> String? {
            guard let v = q.get(name)?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        var filter = IncidentFilter()
        if let states = get("state") {
            filter.states = try states.split(separator: ",").map { try IncidentState.parse(String($0)) }
        }
        if let severity = get("severity") {
            guard let s = Severity(rawValue: severity.lowercased()) else {
                throw APIError(.badRequest, "must be info, warning or critical", field: "severity")
            }
            filter.severity = s
        }
        filter.runbook = get("runbook")
        filter.service = get("service")
        filter.model = get("model")
        // `owner=me`: the signed-in person's incidents.
        filter.owner = get("owner") == "me" ? context.user?.username : get("owner")
        if let text = get("text") {
            guard text.count <= 200 else { throw APIError(.badRequest, "must be at most 200 characters", field: "text") }
            filter.text = text
        }
        filter.openedSince = try Self.time(get("since"), "since")
        filter.openedUntil = try Self.time(get("until"), "until")
        return filter
    }

    static func time(_ text: String?, _ field: String) throws -> Date? {
        guard let text else { return nil }
        do {
            return try AlertNormalizer.parseTime(text, field)
        } catch {
            throw APIError(.badRequest, "must be an RFC 3339 time such as 2026-11-22T09:00:00Z", field: field)
        }
    }

    static func number(_ context: HandrailRequestContext) throws -> Int64 {
        let ref = try context.parameters.require("ref")
        guard let number = IncidentRef.number(ref) else {
            throw APIError(.badRequest, "must be an incident number such as 42 or INC-42", field: "ref")
        }
        return number
    }

    static func notFound(_ number: Int64) -> APIError {
        APIError(.notFound, "no incident \(IncidentRef.display(number))")
    }

    static func actor(_ context: HandrailRequestContext) throws -> IncidentActor {
        guard let user = context.user else { throw APIError(.forbidden, "only people change incidents here") }
        return .user(id: user.id, username: user.username)
    }
}
