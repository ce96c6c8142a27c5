import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import Markdown
import NIOCore

/// Rotation pages for leads: who is on call now and next, the handoffs of a rotation,
/// generating one for a window, reading it, downloading its Markdown, acknowledging it.
struct RotationPages {
    let web: WebController
    var handoffs: HandoffController { web.handoffs }

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/rotations", .role(.viewer)) { _, context in
            let now = Date()
            return try web.pages.render("rotations.html", RotationsPage(try await web.rotations.list(now: now), now: now), context: context)
        }
        routes.on(.get, "/rotations/:name", .role(.viewer)) { _, context in
            try await page(try context.parameters.require("name"), context)
        }
        routes.on(.post, "/rotations/:name/handoffs", .role(.responder)) { request, context in
            let name = try context.parameters.require("name")
            let f = try await WebController.form(request)
            func field(_ key: String) -> String? { f[key].flatMap { $0.isEmpty ? nil : $0 } }
            return try await WebController.answer({ try await page(name, context, error: $0, status: $1) }) {
                let input = HandoffController.WindowInput(week: field("week"), from: Self.localTime(field("from")), to: Self.localTime(field("to")))
                // The note first, so the handoff generated next holds it.
                if let note = field("note"), !note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    _ = try await handoffs.writeNote(name, input, text: note, context)
                }
                let stored = try await handoffs.generate(name, input, context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))/handoffs/\(stored.id)"])
            }
        }
        settingsRoutes(routes)
        routes.on(.get, "/rotations/:name/handoffs/:id", .role(.viewer)) { _, context in
            let (name, id) = try HandoffController.ids(context)
            return try await handoffPage(name, id, context)
        }
        routes.on(.get, "/rotations/:name/handoffs/:id/download", .role(.viewer)) { _, context in
            let (name, id) = try HandoffController.ids(context)
            guard let stored = try await handoffs.store.find(rotation: name, id: id, content: .markdown), let markdown = stored.markdown else {
                throw HandoffController.notFound(name, id)
            }
            let file = "handoff-\(name)-\(id).md".filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }
            // The stored document's SHA-256 travels with the download (RFC 9530 Repr-Digest).
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/markdown; charset=utf-8", .contentDisposition: "attachment; filename=\"\(file)\"",
                    Self.reprDigest: "sha-256=:\(Digest.sha256Base64(markdown)):",
                ],
                body: .init(byteBuffer: ByteBuffer(string: markdown))
            )
        }
        routes.on(.post, "/rotations/:name/handoffs/:id/note", .role(.responder)) { request, context in
            let (name, id) = try HandoffController.ids(context)
            let form = try await WebController.form(request)
            return try await WebController.answer({ try await handoffPage(name, id, context, error: $0, status: $1) }) {
                guard let stored = try await handoffs.store.find(rotation: name, id: id, content: .facts) else {
                    throw HandoffController.notFound(name, id)
                }
                _ = try await handoffs.writeNote(name, HandoffWindow(from: stored.from, to: stored.to), text: form["note"] ?? "", context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))/handoffs/\(id)#notes"])
            }
        }
        routes.on(.post, "/rotations/:name/handoffs/:id/acknowledge", .role(.responder)) { request, context in
            let (name, id) = try HandoffController.ids(context)
            let form = try await WebController.form(request)
            return try await WebController.answer({ try await handoffPage(name, id, context, error: $0, status: $1) }) {
                _ = try await handoffs.acknowledge(name, id, onBehalf: form["on_behalf"] == "true", context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))/handoffs/\(id)"])
            }
        }
    }

    /// A lead's forms for the rotation's escalation and channels, through the API's methods.
    func settingsRoutes(_ routes: Routes) {
        let api = web.notificationAPI
        routes.on(.post, "/rotations/:name/escalation", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await page(name, context, error: $0, status: $1) }) {
                var steps: [NotificationController.PolicyBody.Step] = []
                for (n, line) in (f["steps"] ?? "").split(whereSeparator: \.isNewline).enumerated() {
                    let words = line.split(separator: " ").map(String.init)
                    guard (2...3).contains(words.count), let minutes = Double(words[0]) else {
                        throw APIError(.badRequest, "line \(n + 1) must be MINUTES TARGET [USER], e.g. 10 user lena", field: "steps")
                    }
                    steps.append(.init(afterMinutes: minutes, notify: words[1], user: words.count == 3 ? words[2] : nil))
                }
                let renotify = AdminPages.nonEmpty(f["renotify_minutes"])
                guard renotify.map({ Double($0) != nil }) ?? true else {
                    throw APIError(.badRequest, "must be a number of minutes, or empty for never", field: "renotify_minutes")
                }
                _ = try await api.setEscalation(name, .init(steps: steps, renotifyMinutes: renotify.flatMap(Double.init)), context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))#settings"])
            }
        }
        routes.on(.post, "/rotations/:name/channels", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await page(name, context, error: $0, status: $1) }) {
                guard let kind = DestinationKind(rawValue: f["kind"] ?? "") else {
                    throw APIError(.badRequest, "must be slack or webhook", field: "kind")
                }
                let added = try await api.addChannel(name, .init(kind: kind, label: f["label"], url: f["url"] ?? ""), context)
                return try await page(
                    name,
                    context,
                    secret: added.secret.map { ShownSecret(label: "Signing secret of \(added.channel.label)", value: $0) }
                )
            }
        }
        routes.on(.post, "/rotations/:name/channels/:id/remove", .role(.lead)) { _, context in
            let name = try context.parameters.require("name")
            return try await WebController.answer({ try await page(name, context, error: $0, status: $1) }) {
                try await api.removeChannel(name, try NotificationController.id(context), context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))#settings"])
            }
        }
        routes.on(.post, "/rotations/:name/channels/:id/test", .role(.lead)) { _, context in
            let name = try context.parameters.require("name")
            return try await WebController.answer({ try await page(name, context, error: $0, status: $1) }) {
                _ = try await api.testChannel(name, try NotificationController.id(context))
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))#settings"])
            }
        }
    }

    static func path(_ name: String) -> String { name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? name }

    /// `<input type="datetime-local">` sends `2026-11-16T09:00` (no zone): read as UTC, as the page says.
    static func localTime(_ text: String?) -> String? {
        guard let text else { return nil }
        if text.count == 16 { return text + ":00Z" }
        if text.count == 19 { return text + "Z" }
        return text
    }

    func page(
        _ name: String,
        _ context: HandrailRequestContext,
        secret: ShownSecret? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let r = try await web.rotations.find(name: name) else { throw RotationController.notFound(name) }
        let page = RotationPage(
            r,
            handoffs: try await handoffs.store.list(rotation: name),
            role: context.user?.role ?? .viewer,
            now: Date(),
            policy: try await web.notifications.escalation(rotation: name) ?? EscalationPolicy(steps: [], renotifySeconds: nil),
            channels: try await web.notifications.channels(rotation: name),
            secret: secret,
            error: error
        )
        return try web.pages.render("rotation.html", status: status, page, context: context)
    }

    static let reprDigest = HTTPField.Name("Repr-Digest")!

    func handoffPage(
        _ name: String,
        _ id: Int64,
        _ context: HandrailRequestContext,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let h = try await handoffs.store.find(rotation: name, id: id, content: .markdown), let markdown = h.markdown else {
            throw HandoffController.notFound(name, id)
        }
        let notes = try await handoffs.store.notes(rotation: name, window: HandoffWindow(from: h.from, to: h.to))
        let page = HandoffPage(h, markdown: markdown, user: context.user, notes: notes, error: error)
        return try web.pages.render("handoff.html", status: status, page, context: context)
    }
}
