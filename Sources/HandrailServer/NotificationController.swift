import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// Reaching people, through the API: a person's contact methods (their own; admins for
/// anyone), a rotation's channels and escalation (leads and up), and the record of what was
/// sent (an incident's notifications; the failed ones for admins). Webhook addresses and
/// secrets are shown once, in the answer that creates them, and as a hint afterwards.
struct NotificationController {
    let store: NotificationStore
    let audit: AuditStore
    let outbound: OutboundGuard

    func addRoutes(to routes: Routes) {
        // A person's own contact methods, and anyone's for admins.
        for (prefix, role) in [("/api/v1/me", Role.viewer), ("/api/v1/users/:username", Role.admin)] {
            routes.on(.get, "\(prefix)/contact-methods", .role(role)) { _, context in
                let user = try Self.person(context)
                return MethodsBody(contactMethods: try await store.contactMethods(username: user))
            }
            routes.on(.post, "\(prefix)/contact-methods", .role(role)) { request, context in
                let user = try Self.person(context)
                let input = try await request.decodeJSON(MethodInput.self, context: context)
                return EditedResponse(status: .created, response: try await addMethod(input, for: user, context))
            }
            routes.on(.delete, "\(prefix)/contact-methods/:id", .role(role)) { _, context in
                try await removeMethod(try Self.person(context), try Self.id(context), context)
                return Response(status: .noContent)
            }
            routes.on(.post, "\(prefix)/contact-methods/:id/test", .role(role)) { _, context in
                let sent = try await testMethod(try Self.person(context), try Self.id(context))
                return EditedResponse(status: .accepted, response: QueuedBody(notification: sent))
            }
            routes.on(.post, "\(prefix)/contact-methods/:id/verify", .role(role)) { request, context in
                let user = try Self.person(context)
                let id = try Self.id(context)
                try await verifyMethod(user, id, code: try await request.decodeJSON(VerifyInput.self, context: context).code)
                return MethodsBody(contactMethods: try await store.contactMethods(username: user).filter { $0.id == id })
            }
            routes.on(.get, "\(prefix)/contact-methods/:id/notifications", .role(role)) { _, context in
                let user = try Self.person(context)
                return RecordsBody(notifications: try await store.notifications(contactMethod: try Self.id(context), username: user))
            }
        }

        routes.on(.get, "/api/v1/rotations/:name/channels", .role(.viewer)) { _, context in
            ChannelsBody(channels: try await store.channels(rotation: try context.parameters.require("name")))
        }
        routes.on(.post, "/api/v1/rotations/:name/channels", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let input = try await request.decodeJSON(ChannelInput.self, context: context)
            return EditedResponse(status: .created, response: try await addChannel(name, input, context))
        }
        routes.on(.delete, "/api/v1/rotations/:name/channels/:id", .role(.lead)) { _, context in
            try await removeChannel(try context.parameters.require("name"), try Self.id(context), context)
            return Response(status: .noContent)
        }
        routes.on(.post, "/api/v1/rotations/:name/channels/:id/test", .role(.lead)) { _, context in
            let sent = try await testChannel(try context.parameters.require("name"), try Self.id(context))
            return EditedResponse(status: .accepted, response: QueuedBody(notification: sent))
        }

        routes.on(.get, "/api/v1/rotations/:name/escalation", .role(.viewer)) { _, context in
            let name = try context.parameters.require("name")
            guard let policy = try await store.escalation(rotation: name) else { throw RotationController.notFound(name) }
            return PolicyBody(policy)
        }
        routes.on(.put, "/api/v1/rotations/:name/escalation", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let body = try await request.decodeJSON(PolicyBody.self, context: context)
            return PolicyBody(try await setEscalation(name, body, context))
        }

        routes.on(.get, "/api/v1/incidents/:ref/notifications", .role(.viewer)) { _, context in
            let number = try IncidentController.number(context)
            guard let sent = try await store.notifications(incident: number) else { throw IncidentController.notFound(number) }
            return RecordsBody(notifications: sent)
        }
        routes.on(.get, "/api/v1/notifications/failed", .role(.admin)) { _, _ in
            RecordsBody(notifications: try await store.failed())
        }
    }

    /// Adds a rotation's channel (API and pages): the URL checked; a generic webhook gets its
    /// signing secret, shown once.
    func addChannel(_ name: String, _ input: ChannelInput, _ context: HandrailRequestContext) async throws -> CreatedChannel {
        guard input.kind != .email else { throw APIError(.badRequest, "must be slack or webhook", field: "kind") }
        let label = try Self.label(input.label)
        let destination = try await checked(kind: input.kind, address: input.url)
        let secret = input.kind == .webhook ? StandardWebhook.newSecret() : nil
        guard let channel = try await store.addChannel(rotation: name, destination: destination, label: label, secret: secret) else {
            throw RotationController.notFound(name)
        }
        try await audit.record(
            "channel.added",
            target: name,
            detail: ["id": String(channel.id), "kind": channel.kind.rawValue, "hint": channel.hint],
            by: try Self.actor(context)
        )
        return CreatedChannel(channel: channel, secret: secret)
    }

    /// Removes one of a person's contact methods (API and pages), audited.
    func removeMethod(_ user: String, _ id: Int64, _ context: HandrailRequestContext) async throws {
        guard try await store.removeContactMethod(username: user, id: id) else { throw Self.noMethod(user, id) }
        try await audit.record("contact_method.removed", target: user, detail: ["id": String(id)], by: try Self.actor(context))
    }

    /// Queues a test message to a confirmed contact method (API and pages); its notification id.
    func testMethod(_ user: String, _ id: Int64) async throws -> Int64 {
        guard let sent = try await store.testContactMethod(username: user, id: id) else {
            throw APIError(.notFound, "\(user) has no confirmed contact method \(id) (an e-mail address needs its code first)")
        }
        return sent
    }

    /// Confirms an e-mail address with its code (API and pages).
    func verifyMethod(_ user: String, _ id: Int64, code: String) async throws {
        switch try await store.verifyContactMethod(username: user, id: id, codeHash: Secrets.hash(code.trimmingCharacters(in: .whitespaces))) {
        case .verified, .alreadyVerified: return
        case .wrongCode: throw APIError(.badRequest, "is not the code that was sent", field: "code")
        case .expired:
            throw APIError(.gone, "the code has expired or was entered wrong five times; remove the address and add it again", field: "code")
        case .notFound: throw Self.noMethod(user, id)
        }
    }

    /// Removes a rotation's channel (API and pages), audited.
    func removeChannel(_ name: String, _ id: Int64, _ context: HandrailRequestContext) async throws {
        guard try await store.removeChannel(rotation: name, id: id) else { throw APIError(.notFound, "rotation \(name) has no channel \(id)") }
        try await audit.record("channel.removed", target: name, detail: ["id": String(id)], by: try Self.actor(context))
    }

    /// Queues a test message to a rotation's channel (API and pages); its notification id.
    func testChannel(_ name: String, _ id: Int64) async throws -> Int64 {
        guard let sent = try await store.testChannel(rotation: name, id: id) else {
            throw APIError(.notFound, "rotation \(name) has no channel \(id)")
        }
        return sent
    }

    /// Replaces a rotation's escalation (API and pages), audited.
    func setEscalation(_ name: String, _ body: PolicyBody, _ context: HandrailRequestContext) async throws -> EscalationPolicy {
        guard let saved = try await store.setEscalation(rotation: name, try body.policy()) else { throw RotationController.notFound(name) }
        try await audit.record(
            "escalation.changed",
            target: name,
            detail: ["steps": String(saved.steps.count), "renotify_seconds": saved.renotifySeconds.map(String.init) ?? "off"],
            by: try Self.actor(context)
        )
        return saved
    }

    /// Adds a contact method: the address checked (and, for webhooks, where it resolves);
    /// e-mail gets a code to confirm, webhooks a signing secret shown once.
    func addMethod(_ input: MethodInput, for user: String, _ context: HandrailRequestContext) async throws -> CreatedMethod {
        let label = try Self.label(input.label)
        let destination = try await checked(kind: input.kind, address: input.address)
        let secret = input.kind == .webhook ? StandardWebhook.newSecret() : nil
        let code = input.kind == .email ? Self.newCode() : nil
        guard
            let method = try await store.addContactMethod(
                username: user,
                destination: destination,
                label: label,
                secret: secret,
                codeHash: code.map(Secrets.hash),
                code: code
            )
        else { throw APIError(.notFound, "no enabled user \(user.debugDescription)") }
        try await audit.record(
            "contact_method.added",
            target: user,
            detail: ["id": String(method.id), "kind": method.kind.rawValue, "hint": method.kind == .email ? "e-mail" : method.hint],
            by: try Self.actor(context)
        )
        return CreatedMethod(contactMethod: method, secret: secret)
    }

    /// A destination as given, checked; a URL's host must resolve to addresses that may be reached.
    func checked(kind: DestinationKind, address: String) async throws -> Destination {
        let destination: Destination
        do { destination = try Destination(kind: kind, address: address, field: kind == .email ? "address" : "url") } catch {
            throw APIError(.badRequest, error.message, field: error.field)
        }
        if kind != .email {
            do { _ = try await outbound.check(destination.address) } catch {
                throw APIError(.badRequest, error.description, field: "url")
            }
        }
        return destination
    }

    /// Six digits.
    static func newCode() -> String {
        var generator = SystemRandomNumberGenerator()
        let n = String(Int.random(in: 0..<1_000_000, using: &generator))
        return String(repeating: "0", count: 6 - n.count) + n
    }

    static func label(_ text: String?) throws -> String {
        let label = (text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...100).contains(label.count) else { throw APIError(.badRequest, "must be 1 to 100 characters", field: "label") }
        guard !label.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError(.badRequest, "must not contain control characters", field: "label")
        }
        return label
    }

    /// Whose contact methods: the caller's (`/me`), or, for admins, anyone's.
    static func person(_ context: HandrailRequestContext) throws -> String {
        guard let user = context.user else { throw APIError(.forbidden, "only people have contact methods") }
        guard let named = context.parameters.get("username"), named != user.username else { return user.username }
        guard user.role >= .admin else { throw APIError(.forbidden, "only admins manage other people's contact methods") }
        return named
    }

    static func actor(_ context: HandrailRequestContext) throws -> AuditActor {
        guard let user = context.user else { throw APIError(.forbidden, "only people change notification settings") }
        return .user(user, from: context.clientAddress)
    }

    static func id(_ context: HandrailRequestContext) throws -> Int64 {
        guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be a number", field: "id") }
        return id
    }

    static func noMethod(_ user: String, _ id: Int64) -> APIError { APIError(.notFound, "\(user) has no contact method \(id)") }

    struct MethodInput: Decodable {
        let kind: DestinationKind
        let label: String?
        let address: String
    }

    struct VerifyInput: Decodable { let code: String }

    struct ChannelInput: Decodable {
        let kind: DestinationKind
        let label: String?
        let url: String
    }

    struct MethodsBody: ResponseEncodable { let contactMethods: [ContactMethod] }

    /// The one answer that shows a webhook's secret.
    struct CreatedMethod: ResponseEncodable {
        let contactMethod: ContactMethod
        let secret: String?
    }

    struct ChannelsBody: ResponseEncodable { let channels: [RotationChannel] }

    struct CreatedChannel: ResponseEncodable {
        let channel: RotationChannel
        let secret: String?
    }

    struct QueuedBody: ResponseEncodable { let notification: Int64 }

    struct RecordsBody: ResponseEncodable { let notifications: [NotificationRecord] }

    /// `{"steps": [{"after_minutes": 0, "notify": "on_call"}, {"after_minutes": 10, "notify": "user", "user": "lena"}],
    /// "renotify_minutes": null}`. Minutes may have a fraction (0.5: thirty seconds).
    struct PolicyBody: ResponseEncodable, Decodable {
        struct Step: Codable {
            let afterMinutes: Double
            let notify: String
            let user: String?
        }
        let steps: [Step]
        let renotifyMinutes: Double?

        init(steps: [Step], renotifyMinutes: Double?) {
            self.steps = steps
            self.renotifyMinutes = renotifyMinutes
        }

        init(_ policy: EscalationPolicy) {
            steps = policy.steps.map { Step(afterMinutes: Double($0.delaySeconds) / 60, notify: $0.target.rawValue, user: $0.user) }
            renotifyMinutes = policy.renotifySeconds.map { Double($0) / 60 }
        }

        func policy() throws -> EscalationPolicy {
            guard steps.count <= 20 else { throw APIError(.badRequest, "at most 20 steps", field: "steps") }
            var previous = -1
            var out: [EscalationStep] = []
            for (n, step) in steps.enumerated() {
                guard step.afterMinutes.isFinite, (0...10080).contains(step.afterMinutes) else {
                    throw APIError(.badRequest, "must be 0 to 10080 minutes", field: "steps[\(n)].after_minutes")
                }
                let seconds = Int((step.afterMinutes * 60).rounded())
                guard seconds > previous else {
                    throw APIError(.badRequest, "must be later than the step before", field: "steps[\(n)].after_minutes")
                }
                previous = seconds
                guard let target = EscalationStep.Target(rawValue: step.notify) else {
                    throw APIError(.badRequest, "must be on_call, next, user or leads", field: "steps[\(n)].notify")
                }
                guard (target == .user) == (step.user != nil) else {
                    throw APIError(
                        .badRequest,
                        target == .user ? "is required with notify user" : "is only for notify user",
                        field: "steps[\(n)].user"
                    )
                }
                out.append(EscalationStep(delaySeconds: seconds, target: target, user: step.user))
            }
            var renotify: Int?
            if let r = renotifyMinutes {
                guard r.isFinite, r * 60 >= 1, r <= 10080 else {
                    throw APIError(.badRequest, "must be more than 0 and at most 10080 minutes, or null for never", field: "renotify_minutes")
                }
                renotify = Int((r * 60).rounded())
            }
            return EscalationPolicy(steps: out, renotifySeconds: renotify)
        }
    }
}
