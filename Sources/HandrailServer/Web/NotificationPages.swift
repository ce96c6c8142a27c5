import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird

/// `account-notifications.html`: the visitor's contact methods, how the latest messages to
/// each went, and the forms to add one, confirm an e-mail code, send a test, remove one.
struct ContactMethodsPage: PageModel {
    struct Delivery: PageModel {
        var event: String
        var state: String
        var at: String
        var detail: String?
    }

    struct Method: PageModel {
        var id: Int64
        var kind: String
        var label: String
        var hint: String
        var verified: Bool
        var deliveries: [Delivery]
    }

    var title = "Notifications"
    var methods: [Method]
    var secret: ShownSecret?
    var notice: String?
    var error: String?
    /// The person's own time zone setting ("" when they use their browser's).
    var timeZone: String
    /// Every zone name this machine knows, for the field's suggestions.
    var zones: [String]

    init(
        _ methods: [(ContactMethod, [NotificationRecord])],
        secret: ShownSecret?,
        notice: String?,
        error: String?,
        timeZone: String? = nil
    ) {
        self.timeZone = timeZone ?? ""
        zones = TimeZone.knownTimeZoneIdentifiers.sorted()
        self.methods = methods.map { m, sent in
            Method(
                id: m.id,
                kind: m.kind.rawValue,
                label: m.label,
                hint: m.hint,
                verified: m.verified,
                deliveries: sent.map { n in
                    Delivery(
                        event: n.event.rawValue,
                        state: n.state.rawValue,
                        at: WebController.time(n.createdAt),
                        detail: n.state == .failed ? n.lastError : nil
                    )
                }
            )
        }
        self.secret = secret
        self.notice = notice
        self.error = error
    }
}

/// `confirm.html`: one action from a message's signed link, one button away (a POST with the
/// session's CSRF token), or why the link cannot be used.
struct ConfirmPage: PageModel {
    var title: String
    var number: Int64
    var ref: String
    var action: String
    var label: String
    var problem: String?

    init(number: Int64, action: String, problem: String?) {
        ref = IncidentRef.display(number)
        title = "\(action.capitalized) \(ref)"
        self.number = number
        self.action = action
        label = "\(action.capitalized) \(ref)"
        self.problem = problem
    }
}

/// The forms behind `account-notifications.html`, through `NotificationController`'s methods.
struct NotificationPages {
    let pages: Pages
    let api: NotificationController
    let linkKey: LinkKey
    let access: AccessController

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/account/notifications", .role(.viewer)) { _, context in try await page(context) }
        // A signed link from a message: the action, confirmed by the person it was sent to.
        routes.on(.get, "/incidents/:ref/confirm", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let q = request.uri.queryParameters
            let action = q.get("action").flatMap(ActionLink.Action.init(rawValue:))
            let link = action.map {
                ActionLink(action: $0, incident: number, user: q.get("user") ?? "", expires: q.get("expires").flatMap { Int($0) } ?? 0)
            }
            var problem: String?
            var status = HTTPResponse.Status.ok
            if let link, link.isValid(signature: q.get("sig") ?? "", key: try await linkKey.key(), now: Date()) {
                if link.user != context.user?.username {
                    problem = "This link was sent to \(link.user); sign in as \(link.user) to use it."
                    status = .forbidden
                }
            } else {
                problem = "This link is not valid: it has expired or was changed. Open the incident instead."
                status = .badRequest
            }
            let model = ConfirmPage(number: number, action: action?.rawValue ?? "", problem: problem)
            return try pages.render("confirm.html", status: status, model, context: context)
        }
        routes.on(.post, "/account/time-zone", .role(.viewer)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await page(context, error: $0, status: $1) }) {
                _ = try await access.setTimeZone(f["time_zone"], context)
                return Response(status: .seeOther, headers: [.location: "/account/notifications#time-zone"])
            }
        }
        routes.on(.post, "/account/notifications", .role(.viewer)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await page(context, error: $0, status: $1) }) {
                guard let kind = DestinationKind(rawValue: f["kind"] ?? "") else {
                    throw APIError(.badRequest, "must be email, webhook or slack", field: "kind")
                }
                let input = NotificationController.MethodInput(kind: kind, label: f["label"], address: f["address"] ?? "")
                let created = try await api.addMethod(input, for: try NotificationController.person(context), context)
                let notice = kind == .email ? "A code is on its way to \(created.contactMethod.hint); enter it below." : nil
                return try await page(
                    context,
                    secret: created.secret.map { ShownSecret(label: "Signing secret of \(created.contactMethod.label)", value: $0) },
                    notice: notice
                )
            }
        }
        routes.on(.post, "/account/notifications/:id/verify", .role(.viewer)) { request, context in
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await page(context, error: $0, status: $1) }) {
                try await api.verifyMethod(try NotificationController.person(context), try NotificationController.id(context), code: f["code"] ?? "")
                return Response(status: .seeOther, headers: [.location: "/account/notifications"])
            }
        }
        routes.on(.post, "/account/notifications/:id/test", .role(.viewer)) { _, context in
            try await WebController.answer({ try await page(context, error: $0, status: $1) }) {
                _ = try await api.testMethod(try NotificationController.person(context), try NotificationController.id(context))
                return Response(status: .seeOther, headers: [.location: "/account/notifications"])
            }
        }
        routes.on(.post, "/account/notifications/:id/remove", .role(.viewer)) { _, context in
            try await WebController.answer({ try await page(context, error: $0, status: $1) }) {
                try await api.removeMethod(try NotificationController.person(context), try NotificationController.id(context), context)
                return Response(status: .seeOther, headers: [.location: "/account/notifications"])
            }
        }
    }

    func page(
        _ context: HandrailRequestContext,
        secret: ShownSecret? = nil,
        notice: String? = nil,
        error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let user = try NotificationController.person(context)
        var methods: [(ContactMethod, [NotificationRecord])] = []
        for m in try await api.store.contactMethods(username: user) {
            methods.append((m, try await api.store.notifications(contactMethod: m.id, username: user, limit: 5)))
        }
        let model = ContactMethodsPage(methods, secret: secret, notice: notice, error: error, timeZone: context.user?.timeZone)
        return try pages.render("account-notifications.html", status: status, model, context: context)
    }
}
