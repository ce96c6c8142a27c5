import Foundation
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
            let list: [[String: Any]] = try await web.rotations.list(now: now).map { r in
                let current = r.onCall(at: now)
                let next = current.until.map { r.onCall(at: $0.addingTimeInterval(1)) }
                return [
                    "name": r.name, "time_zone": r.timeZone, "members": r.members.joined(separator: ", "),
                    "now": current.user ?? "nobody", "until": current.until.map(WebController.time) as Any,
                    "next": next?.user ?? "nobody", "override": current.override != nil,
                ]
            }
            return try web.pages.render("rotations.html", ["title": "Rotations", "nav_rotations": true, "rotations": list], context: context)
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
                let stored = try await handoffs.generate(name, input, context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))/handoffs/\(stored.id)"])
            }
        }
        routes.on(.get, "/rotations/:name/handoffs/:id", .role(.viewer)) { _, context in
            let (name, id) = try HandoffController.ids(context)
            return try await handoffPage(name, id, context)
        }
        routes.on(.get, "/rotations/:name/handoffs/:id/download", .role(.viewer)) { _, context in
            let (name, id) = try HandoffController.ids(context)
            guard let stored = try await handoffs.store.find(rotation: name, id: id, content: true), let markdown = stored.markdown else {
                throw HandoffController.notFound(name, id)
            }
            let file = "handoff-\(name)-\(id).md".filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }
            return Response(
                status: .ok,
                headers: [.contentType: "text/markdown; charset=utf-8", .contentDisposition: "attachment; filename=\"\(file)\""],
                body: .init(byteBuffer: ByteBuffer(string: markdown))
            )
        }
        routes.on(.post, "/rotations/:name/handoffs/:id/acknowledge", .role(.responder)) { _, context in
            let (name, id) = try HandoffController.ids(context)
            return try await WebController.answer({ try await handoffPage(name, id, context, error: $0, status: $1) }) {
                _ = try await handoffs.acknowledge(name, id, context)
                return Response(status: .seeOther, headers: [.location: "/rotations/\(Self.path(name))/handoffs/\(id)"])
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

    func page(_ name: String, _ context: HandrailRequestContext, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let r = try await web.rotations.find(name: name) else { throw RotationController.notFound(name) }
        let now = Date()
        let current = r.onCall(at: now)
        let shifts: [[String: Any]] = r.shifts(from: now, count: 4).map { s in
            ["start": WebController.time(s.start), "end": WebController.time(s.end), "who": s.segments.map(\.user).joined(separator: ", ")]
        }
        let overrides: [[String: Any]] = r.overrides.filter { $0.end > now }.map { o in
            ["user": o.user, "start": WebController.time(o.start), "end": WebController.time(o.end), "reason": o.reason as Any]
        }
        let list: [[String: Any]] = try await handoffs.store.list(rotation: name).map { h in
            [
                "id": h.id, "from": WebController.time(h.from), "to": WebController.time(h.to), "generated_by": h.generatedBy,
                "generated_at": WebController.time(h.generatedAt), "incoming": h.incoming ?? "nobody",
                "acknowledged": h.acknowledgedBy.map { "acknowledged by \($0)" } ?? "not acknowledged",
            ]
        }
        var values: [String: Any] = [
            "title": "Rotation \(r.name)", "nav_rotations": true, "name": r.name, "path": Self.path(r.name),
            "time_zone": r.timeZone, "members": r.members.joined(separator: ", "), "shift": "\(r.shiftLength), handoff \(r.handoff)",
            "now": current.user ?? "nobody", "until": current.until.map(WebController.time) as Any,
            "shifts": shifts, "overrides": overrides, "has_overrides": !overrides.isEmpty,
            "handoffs": list, "has_handoffs": !list.isEmpty, "can_generate": (context.user?.role ?? .viewer) >= .responder,
            "last_shift": HandoffWindow.lastShift(of: r, now: now).map { "\(WebController.time($0.from)) – \(WebController.time($0.to))" } as Any,
        ]
        if let error { values["error"] = error }
        return try web.pages.render("rotation.html", status: status, values, context: context)
    }

    func handoffPage(
        _ name: String,
        _ id: Int64,
        _ context: HandrailRequestContext,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let h = try await handoffs.store.find(rotation: name, id: id, content: true), let markdown = h.markdown else {
            throw HandoffController.notFound(name, id)
        }
        let user = context.user
        let mayAcknowledge = user.map { h.acknowledgedBy == nil && (h.incoming == $0.username || $0.role >= .lead) } ?? false
        var values: [String: Any] = [
            "title": "Handoff \(name) #\(id)", "nav_rotations": true, "name": name, "path": Self.path(name), "id": id,
            "from": WebController.time(h.from), "to": WebController.time(h.to), "generated_by": h.generatedBy,
            "generated_at": WebController.time(h.generatedAt),
            "incoming": h.incoming ?? "nobody", "content_hash": h.contentHash,
            "acknowledged": h.acknowledgedBy.map { "Acknowledged by \($0)" + (h.acknowledgedAt.map { " at \(WebController.time($0))" } ?? "") + "." }
                as Any,
            "can_acknowledge": mayAcknowledge, "html": Markdown.html(markdown),
        ]
        if let error { values["error"] = error }
        return try web.pages.render("handoff.html", status: status, values, context: context)
    }
}
