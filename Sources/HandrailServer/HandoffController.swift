import Foundation
import HandrailCore
import HandrailStore
import Hummingbird
import NIOCore

/// Handoffs of a rotation: generate (responder and up) and keep, read as Markdown, HTML or
/// JSON (viewers), acknowledge (the incoming on-call, or a lead and up).
struct HandoffController {
    let store: HandoffStore
    let rotations: RotationStore
    let renderer: DocumentRenderer
    /// `HANDRAIL_PUBLIC_URL`, for links to incidents in the documents.
    var publicURL: String?

    func addRoutes(to routes: Routes) {
        routes.on(.post, "/api/v1/rotations/:name/handoffs", .role(.responder)) { request, context in
            let name = try context.parameters.require("name")
            let input = try await request.decodeOptionalJSON(WindowInput.self, context: context) ?? WindowInput(week: nil, from: nil, to: nil)
            return EditedResponse(status: .created, response: Body(handoff: try await generate(name, input, context)))
        }
        routes.on(.post, "/api/v1/rotations/:name/handoff-notes", .role(.responder)) { request, context in
            let name = try context.parameters.require("name")
            let input = try await request.decodeJSON(NoteInput.self, context: context)
            let note = try await writeNote(name, WindowInput(week: input.week, from: input.from, to: input.to), text: input.note, context)
            return EditedResponse(status: .created, response: NoteBody(note: note.text, by: note.by, at: note.at))
        }
        routes.on(.get, "/api/v1/rotations/:name/handoffs", .role(.viewer)) { _, context in
            let name = try context.parameters.require("name")
            guard try await rotations.find(name: name) != nil else { throw RotationController.notFound(name) }
            return ListBody(handoffs: try await store.list(rotation: name))
        }
        routes.on(.get, "/api/v1/rotations/:name/handoffs/:id", .role(.viewer)) { request, context in
            let (name, id) = try Self.ids(context)
            guard let stored = try await store.find(rotation: name, id: id, content: .document), let markdown = stored.markdown else {
                throw Self.notFound(name, id)
            }
            switch try Self.format(request) {
            case "md":
                return Self.text(markdown, type: "text/markdown; charset=utf-8")
            case "html":
                return Self.text(DocumentRenderer.page(title: "Handoff \(name) #\(id)", markdown: markdown), type: "text/html; charset=utf-8")
            default:
                return try Body(handoff: stored).response(from: request, context: context)
            }
        }
        routes.on(.post, "/api/v1/rotations/:name/handoffs/:id/acknowledge", .role(.responder)) { request, context in
            let (name, id) = try Self.ids(context)
            let input = try await request.decodeOptionalJSON(AcknowledgeInput.self, context: context)
            return Body(handoff: try await acknowledge(name, id, onBehalf: input?.onBehalf ?? false, context))
        }
    }

    /// Generates and keeps the handoff of a window (API and pages).
    func generate(_ name: String, _ input: WindowInput, _ context: HandrailRequestContext) async throws -> StoredHandoff {
        guard let user = context.user else { throw APIError(.forbidden, "only people generate handoffs") }
        guard let rotation = try await rotations.find(name: name) else { throw RotationController.notFound(name) }
        let window = try input.window(rotation)
        let log = try await store.collect(rotation, window: window)
        let document = HandoffDocument.build(log, links: publicURL ?? "")
        guard
            let stored = try await store.store(
                rotation: name,
                window: window,
                markdown: try render(document),
                document: document,
                incoming: rotation.onCall(at: window.to).user,
                by: user.id
            )
        else { throw RotationController.notFound(name) }
        return stored
    }

    /// The incoming on-call acknowledges a handoff as such; a lead and up may acknowledge it
    /// on their behalf, as a distinct act they ask for (`onBehalf`; API and pages).
    func acknowledge(_ name: String, _ id: Int64, onBehalf: Bool, _ context: HandrailRequestContext) async throws -> StoredHandoff {
        guard let user = context.user else { throw APIError(.forbidden, "only people acknowledge handoffs") }
        guard let stored = try await store.find(rotation: name, id: id, content: .facts) else { throw Self.notFound(name, id) }
        let incoming = stored.incoming ?? "nobody"
        if onBehalf {
            guard user.role >= .lead else {
                throw APIError(.forbidden, "on_behalf: only a lead or an administrator acknowledges on behalf of the incoming on-call (\(incoming))")
            }
        } else if stored.incoming != user.username {
            throw APIError(
                .forbidden,
                "only the incoming on-call (\(incoming)) acknowledges this handoff as such"
                    + (user.role >= .lead ? "; a lead may acknowledge it on their behalf (on_behalf: true)" : "")
            )
        }
        switch try await store.acknowledge(rotation: name, id: id, by: user.id, onBehalf: onBehalf) {
        case .acknowledged(let h): return h
        case .notFound: throw Self.notFound(name, id)
        case .already(let by, let at): throw APIError(.conflict, "acknowledged by \(by) at \(RFC3339.format(at))")
        case .notIncoming(let incoming):
            throw APIError(.forbidden, "only the incoming on-call (\(incoming ?? "nobody")) acknowledges this handoff as such")
        }
    }

    /// The acknowledge request's body: `{"on_behalf": true}` for a lead acting for the incoming
    /// on-call; an empty body (or none) acknowledges as oneself.
    struct AcknowledgeInput: Decodable {
        var onBehalf: Bool?
    }

    func render(_ document: HandoffDocument) throws -> String {
        do {
            return try renderer.handoff(document)
        } catch let error as TemplateError {
            // The person who edited the template needs the file and line; the log has them too.
            throw APIError(.internalServerError, "the handoff template failed: \(error.description)")
        }
    }

    /// Keeps the outgoing on-call's note for a window: it goes into the handoff generated
    /// for that window (API and pages).
    func writeNote(_ name: String, _ input: WindowInput, text: String, _ context: HandrailRequestContext) async throws -> HandoffNote {
        guard let rotation = try await rotations.find(name: name) else { throw RotationController.notFound(name) }
        return try await writeNote(name, try input.window(rotation), text: text, context)
    }

    /// The same, for a window already known (a stored handoff's).
    func writeNote(_ name: String, _ window: HandoffWindow, text: String, _ context: HandrailRequestContext) async throws -> HandoffNote {
        guard let user = context.user else { throw APIError(.forbidden, "only people write handoff notes") }
        let note = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...10_000).contains(note.count) else { throw APIError(.badRequest, "must be 1 to 10000 characters", field: "note") }
        guard let written = try await store.writeNote(rotation: name, window: window, text: note, by: user.id) else {
            throw RotationController.notFound(name)
        }
        return written
    }

    struct NoteInput: Decodable {
        let week: String?
        let from: String?
        let to: String?
        let note: String
    }

    struct NoteBody: ResponseEncodable {
        let note: String
        let by: String
        let at: Date
    }

    struct WindowInput: Decodable {
        let week: String?
        let from: String?
        let to: String?

        func window(_ rotation: Rotation) throws -> HandoffWindow {
            if let week {
                guard from == nil, to == nil else { throw APIError(.badRequest, "give week or from/to, not both", field: "week") }
                return try HandoffWindow.isoWeek(week, timeZone: rotation.timeZone)
            }
            if from != nil || to != nil {
                guard let start = try IncidentController.time(from, "from") else { throw APIError(.badRequest, "is required with to", field: "from") }
                guard let end = try IncidentController.time(to, "to") else { throw APIError(.badRequest, "is required with from", field: "to") }
                guard end > start else { throw APIError(.badRequest, "must be after from", field: "to") }
                guard end.timeIntervalSince(start) <= 366 * 86400 else { throw APIError(.badRequest, "a window is at most a year", field: "to") }
                return HandoffWindow(from: start, to: end)
            }
            guard let last = HandoffWindow.lastShift(of: rotation, now: Date()) else {
                throw APIError(.badRequest, "\(rotation.name) has no finished shift yet; give week or from/to", field: "week")
            }
            return last
        }
    }

    struct Body: ResponseEncodable {
        let handoff: StoredHandoff
        func encode(to encoder: any Encoder) throws { try handoff.encode(to: encoder) }
    }

    struct ListBody: ResponseEncodable { let handoffs: [StoredHandoff] }

    /// `?format=` wins; else the Accept header; else JSON.
    static func format(_ request: Request) throws -> String {
        if let f = request.uri.queryParameters.get("format") {
            guard ["md", "html", "json"].contains(f) else { throw APIError(.badRequest, "must be md, html or json", field: "format") }
            return f
        }
        let accept = request.headers[.accept] ?? ""
        if accept.contains("text/markdown") { return "md" }
        if accept.contains("text/html") { return "html" }
        return "json"
    }

    static func text(_ body: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func ids(_ context: HandrailRequestContext) throws -> (String, Int64) {
        let name = try context.parameters.require("name")
        guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be a handoff id", field: "id") }
        return (name, id)
    }

    static func notFound(_ name: String, _ id: Int64) -> APIError { APIError(.notFound, "rotation \(name) has no handoff \(id)") }
}
