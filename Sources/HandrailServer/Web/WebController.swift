import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import Markdown
import NIOCore
import ServiceLifecycle

/// The web UI for people: server-rendered pages from `templates/*.html.mustache`, forms
/// that post (with the session's CSRF token) to routes that call the same functions as the
/// JSON API, and a small self-hosted script that only adds live refresh. Every page works
/// without JavaScript.
///
/// A form that fails validation shows its page again with the reason (which field, why)
/// and the status the API would answer; nothing is half-written, since each action is one
/// transaction in the store.
struct WebController {
    let pages: Pages
    let incidents: IncidentController
    let decisions: DecisionController
    let postmortems: PostmortemController
    let handoffs: HandoffController
    let rotations: RotationStore
    let runbooks: RunbookStore
    let users: UserStore
    let feed: IncidentFeed
    let notificationAPI: NotificationController
    var notifications: NotificationStore { notificationAPI.store }
    let gates: GateStore
    /// How long one live stream stays open before the browser reconnects.
    let liveLifetime: Duration
    /// At most one "changed" per stream this often (`HandrailConfiguration.liveRefreshInterval`).
    var liveInterval: Duration = .seconds(1)
    /// Streams this replica serves at once (`HandrailConfiguration.maxLiveStreams`).
    var maxLiveStreams = 1000

    var store: IncidentStore { incidents.store }

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/", .role(.viewer)) { _, context in try await nowPage(context) }
        routes.on(.get, "/incidents", .role(.viewer)) { request, context in try await incidentList(request, context) }
        routes.on(.get, "/incidents/:ref", .role(.viewer)) { request, context in
            try await incidentPage(
                try IncidentController.number(context),
                context,
                wholeTimeline: request.uri.queryParameters.get("timeline") == "all"
            )
        }
        routes.on(.get, "/live", .role(.viewer)) { request, _ in try await live(request) }
        routes.on(.get, "/now/rows", .role(.viewer)) { request, context in try await nowRows(request, context) }
        routes.on(.get, "/incidents/:ref/updates", .role(.viewer)) { request, context in
            try await incidentUpdates(try IncidentController.number(context), request, context)
        }
        incidentActions(routes)
        PostmortemPages(web: self).addRoutes(to: routes)
        RotationPages(web: self).addRoutes(to: routes)
    }

    // MARK: - Now

    /// Open incidents on the Now page, the most urgent first; the rest are a link away. A page
    /// costs its rows (about 0.1 ms of rendering each), not the incidents behind them.
    static let nowShown = 50
    /// Recently resolved incidents on the Now page.
    static let nowResolvedShown = 10
    /// Timeline entries on an incident page, the newest; the whole timeline is a link away.
    static let timelineShown = 100

    func nowPage(_ context: HandrailRequestContext) async throws -> Response {
        let now = try await store.now(limit: Self.nowShown, resolved: Self.nowResolvedShown)
        let page = NowPage(
            open: now.open,
            openCount: now.openCount,
            resolved: now.resolved,
            me: context.user?.username,
            watermark: now.watermark,
            now: Date(),
            gates: try await gates.gates(waitingOnly: true)
        )
        return try pages.render("now.html", page, context: context)
    }

    /// What a live Now page fetches when its stream names changed incidents: the page's lists
    /// as they are now, as numbers in order, with rows only for the incidents in `changed` (the
    /// stream's ids) and those the page does not show yet (numbers not in `shown`);
    /// handrail.js keeps its own rows for the rest. A change costs the changed rows, not the page (`script/bench pages`).
    func nowRows(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        let q = request.uri.queryParameters
        let update = try await store.nowUpdate(
            limit: Self.nowShown,
            resolved: Self.nowResolvedShown,
            changed: try Self.ids(q.get("changed"), field: "changed"),
            shown: try Self.ids(q.get("shown"), field: "shown")
        )
        return try pages.render("now-update.html", NowUpdatePage(update, me: context.user?.username, now: Date()), context: context)
    }

    /// "4,17,230": at most 400 non-negative whole numbers (none: empty).
    static func ids(_ text: String?, field: String) throws -> [Int64] {
        guard let text, !text.isEmpty else { return [] }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count <= 400 else { throw APIError(.badRequest, "at most 400 numbers", field: field) }
        return try parts.map { part in
            guard let n = Int64(part), n >= 0 else {
                throw APIError(.badRequest, "must be numbers separated by commas, such as 4,17", field: field)
            }
            return n
        }
    }

    /// Times on pages: in the reader's zone (`PageTime`) with the offset written out.
    static func time(_ date: Date) -> String { PageTime.current.formatter.string(date) }

    func incidentList(_ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        let q = request.uri.queryParameters
        var filter: IncidentFilter
        var error: String?
        do { filter = try IncidentController.filter(q, context) } catch let e as APIError {
            // A bad filter: the form again with the field named, and the unfiltered list.
            error = e.field.map { "\($0): \(e.message)" } ?? e.message
            filter = IncidentFilter()
        }
        if let cursor = q.get("before"), let n = IncidentRef.number(cursor) { filter.before = n }
        filter.limit = 50
        let page = IncidentListPage(
            try await store.list(filter),
            query: IncidentListPage.Query(q),
            limit: filter.limit,
            me: context.user?.username,
            now: Date(),
            error: error
        )
        return try pages.render("incidents.html", status: error == nil ? .ok : .badRequest, page, context: context)
    }

    // MARK: - Incident page

    func incidentPage(
        _ number: Int64,
        _ context: HandrailRequestContext,
        error: String? = nil,
        status: HTTPResponse.Status = .ok,
        wholeTimeline: Bool = false
    ) async throws -> Response {
        let watermark = try await store.newestEventID()
        guard let d = try await store.detail(number: number, timelineLimit: wholeTimeline ? nil : Self.timelineShown) else {
            throw IncidentController.notFound(number)
        }
        let pinned: RunbookVersion? = if let r = d.runbook { try await runbooks.version(id: r.id, r.version) } else { nil }
        let canChange = (context.user?.role ?? .viewer) >= .responder
        let page = IncidentPage(
            d,
            decisions: try await decisions.store.list(number: number) ?? [],
            proposals: try await decisions.store.proposals(number: number) ?? [],
            pinned: pinned,
            user: context.user,
            people: canChange && d.incident.state != .resolved ? try await users.list() : [],
            watermark: watermark,
            postmortemExists: d.incident.state == .resolved ? try await postmortems.store.find(number: number) != nil : false,
            now: Date(),
            notifications: try await notifications.notifications(incident: number) ?? [],
            escalation: try await escalation(number, rotation: d.ownersRotation),
            rollouts: try await gates.gates(incident: number),
            error: error
        )
        return try pages.render("incident.html", status: status, page, context: context)
    }

    /// What a live incident page fetches when its stream says the incident changed: the
    /// timeline entries after `after` (the newest the page shows) and, when alerts came or
    /// went, the alerts; or "reload" for a change that touched more of the page.
    func incidentUpdates(_ number: Int64, _ request: Request, _ context: HandrailRequestContext) async throws -> Response {
        guard let text = request.uri.queryParameters.get("after"), let after = Int64(text), after >= 0 else {
            throw APIError(.badRequest, "must be the newest timeline event id the page shows", field: "after")
        }
        guard let updates = try await store.updates(number: number, after: after, limit: Self.timelineShown) else {
            throw IncidentController.notFound(number)
        }
        let page = IncidentUpdatePage(updates, after: after, limit: Self.timelineShown)
        return try pages.render("incident-update.html", page, context: context)
    }

    /// The decision form's fields (recording and proposing share the form).
    static func decisionInput(_ f: FormFields) throws -> DecisionController.DecisionInput {
        var supersedes: Int64?
        if let s = f["supersedes"], !s.isEmpty {
            guard let n = Int64(s) else { throw APIError(.badRequest, "must be a decision id", field: "supersedes") }
            supersedes = n
        }
        return DecisionController.DecisionInput(
            kind: f["kind"] ?? "",
            target: .init(service: f["service"], model: f["model"], fromVersion: f["from_version"], toVersion: f["to_version"]),
            rationale: f["rationale"],
            customerImpact: f["customer_impact"],
            alternativesConsidered: f["alternatives_considered"],
            supersedes: supersedes
        )
    }

    /// "Escalates to lena at 10:42 UTC unless acknowledged": the pending step, and who it
    /// would reach if it fired now.
    func escalation(_ number: Int64, rotation name: String?) async throws -> String? {
        guard let name, let pending = try await notifications.pendingEscalation(incident: number),
            let policy = try await notifications.escalation(rotation: name), let rotation = try await rotations.find(name: name)
        else { return nil }
        let at = Self.time(pending.due)
        if pending.kind == .reminder { return "Reminds the owner at \(at) while unresolved." }
        let steps = policy.effectiveSteps
        guard pending.position < steps.count else { return nil }
        let step = steps[pending.position]
        let people = step.people(rotation, at: pending.due, leads: step.target == .leads ? try await notifications.leads(rotation: name) : [])
        let who = people.isEmpty ? "nobody (\(step.target.rawValue.replacingOccurrences(of: "_", with: " ")))" : people.joined(separator: ", ")
        return "Escalates to \(who) at \(at) unless acknowledged (step \(pending.position + 1) of \(steps.count))."
    }

    // MARK: - Incident actions (forms)

    func incidentActions(_ routes: Routes) {
        for transition in IncidentTransition.allCases {
            routes.on(.post, "/incidents/:ref/\(transition.rawValue)", .role(.responder)) { request, context in
                let number = try IncidentController.number(context)
                let form = try await Self.form(request)
                return try await act(number, context, anchor: "top") {
                    try await incidents.change(number, transition, note: form["note"], context)
                }
            }
        }
        routes.on(.post, "/incidents/:ref/notes", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let form = try await Self.form(request)
            return try await act(number, context, anchor: "timeline") { try await incidents.addNote(number, text: form["text"] ?? "", context) }
        }
        // One form for every role (the role is a field), so a phone shows one assign form.
        routes.on(.post, "/incidents/:ref/roles", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let form = try await Self.form(request)
            return try await act(number, context, anchor: "roles") {
                let role = try IncidentRole.parse(form["role"] ?? "")
                try await incidents.changeRole(
                    number,
                    role: role,
                    .init(action: form["action"] ?? "", to: form["to"], reason: form["reason"]),
                    context
                )
            }
        }
        routes.on(.post, "/incidents/:ref/roles/:role/accept", .role(.responder)) { _, context in
            let number = try IncidentController.number(context)
            return try await act(number, context, anchor: "roles") {
                try await incidents.acceptRole(number, role: try IncidentRole.parse(try context.parameters.require("role")), context)
            }
        }
        routes.on(.post, "/incidents/:ref/steps/:step", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let form = try await Self.form(request)
            let step = try IncidentController.step(context)
            return try await act(number, context, anchor: "step-\(step)") {
                try await incidents.markStep(number, step: step, .init(outcome: form["outcome"] ?? "", note: form["note"]), context)
            }
        }
        routes.on(.post, "/incidents/:ref/decisions", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let f = try await Self.form(request)
            return try await act(number, context, anchor: "decisions") { _ = try await decisions.record(number, try Self.decisionInput(f), context) }
        }
        routes.on(.post, "/incidents/:ref/proposals", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let f = try await Self.form(request)
            return try await act(number, context, anchor: "decisions") { _ = try await decisions.propose(number, try Self.decisionInput(f), context) }
        }
        routes.on(.post, "/incidents/:ref/proposals/:id/confirm", .role(.responder)) { _, context in
            let (number, id) = try DecisionController.ids(context)
            return try await act(number, context, anchor: "decisions") { _ = try await decisions.confirm(number, id, context) }
        }
        routes.on(.post, "/incidents/:ref/proposals/:id/reject", .role(.responder)) { request, context in
            let (number, id) = try DecisionController.ids(context)
            let f = try await Self.form(request)
            return try await act(number, context, anchor: "proposal-\(id)") {
                _ = try await decisions.reject(number, id, reason: f["reason"], context)
            }
        }
        routes.on(.post, "/incidents/:ref/decisions/:id/execute", .role(.responder)) { request, context in
            let (number, id) = try DecisionController.ids(context)
            let f = try await Self.form(request)
            return try await act(number, context, anchor: "decision-\(id)") {
                _ = try await decisions.execute(number, id, .init(at: nil, note: f["note"]), context)
            }
        }
        routes.on(.post, "/incidents/:ref/decisions/:id/outcome", .role(.responder)) { request, context in
            let (number, id) = try DecisionController.ids(context)
            let f = try await Self.form(request)
            return try await act(number, context, anchor: "decision-\(id)") {
                _ = try await decisions.recordOutcome(number, id, .init(outcome: f["outcome"] ?? "", note: f["note"]), context)
            }
        }
    }

    /// Runs a form's action; on success back to the incident page (303, so a reload does
    /// not post again), on a refusal the page again with the reason.
    func act(_ number: Int64, _ context: HandrailRequestContext, anchor: String, _ work: () async throws -> Void) async throws -> Response {
        try await Self.answer(
            { try await incidentPage(number, context, error: $0, status: $1) },
            {
                try await work()
                return Response(status: .seeOther, headers: [.location: "/incidents/\(number)#\(anchor)"])
            }
        )
    }

    /// Every form's answer: what `work` answers; or, when the request is refused (any 4xx,
    /// or a validation or conflict error), the form's page again from `again` with the
    /// reason ("field: why") and the status the API would give.
    static func answer(
        _ again: (String, HTTPResponse.Status) async throws -> Response,
        _ work: () async throws -> Response
    ) async throws -> Response {
        do {
            return try await work()
        } catch let error as APIError where (400..<500).contains(error.status.code) {
            return try await again(error.pageMessage, error.status)
        } catch let error as ValidationError {
            return try await again("\(error.field): \(error.message)", .badRequest)
        } catch let error as ConflictError {
            return try await again("\(error.field): \(error.message)", .conflict)
        }
    }

    static func form(_ request: Request) async throws -> FormFields {
        var request = request
        return try FormFields(String(buffer: try await request.collectBody(limit: 1 << 20)))
    }

    // MARK: - Live updates

    /// Server-sent events: `changed` whenever the incident (or, without `incident`, any
    /// incident) changes, fed by PostgreSQL NOTIFY so that changes through any replica count.
    /// Each event names the changed incidents and carries, as its SSE id, the newest timeline
    /// event when it was sent.
    ///
    /// `since` is the newest timeline event the page had seen when it was made (pages put it
    /// in their stream's address); a browser that reconnects says the last event's id instead
    /// (`Last-Event-ID`), which is newer for a page that refreshed rows only. A change
    /// committed after that but before this stream listened was never notified to it: once
    /// listening, the stream looks and names those incidents at once.
    func live(_ request: Request) async throws -> Response {
        let incident: Int64? = if let ref = request.uri.queryParameters.get("incident") { try await incidentID(ref) } else { nil }
        var since: Int64?
        if let text = request.headers[Self.lastEventID] ?? request.uri.queryParameters.get("since") {
            guard let value = Int64(text), value >= 0 else { throw APIError(.badRequest, "must be a timeline event id", field: "since") }
            since = value
        }
        guard let stream = feed.subscribe(for: liveLifetime, incident: incident, limit: maxLiveStreams) else {
            // The browser's EventSource tries again after Retry-After; the page still works.
            throw APIError(
                .serviceUnavailable,
                "this server already keeps \(maxLiveStreams) pages up to date; this page works but will not refresh by itself until one closes",
                headers: [.retryAfter: "30"]
            )
        }
        await feed.listening()
        var missed = IncidentFeed.Changes()
        if let since {
            // nil: too much changed to name; 0 says "anything".
            for id in try await store.changedIncidents(since: since, incident: incident) ?? [0] { missed.add(id) }
        }
        let store = store
        let missedChanges = missed
        let interval = liveInterval
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n: listening\n\n"))
            // Debounced: an event waits until `interval` after the stream opened (or the last
            // event) and names every incident changed until then, so a storm of 100 changes a
            // second is one event per page per interval. Its data is the changed incidents' ids
            // ("4,17"), or "*" when anything may have changed (the page reloads whole).
            // Pages must not fetch as one: each wait is 1 to 1.5 intervals at random (pages
            // that opened together drift apart), and the first change after a quiet spell
            // waits up to one interval at random (every page hears it at once).
            // (`script/bench pages`, 200 live pages, 20 changes/s: row fetches p99 508 ms
            // when every stream waited exactly one interval.)
            func wait() -> Duration { interval * Double.random(in: 1..<1.5) }
            var next = ContinuousClock.now + wait()
            func send(_ changes: IncidentFeed.Changes) async throws {
                let data = changes.everything ? "*" : changes.ids.sorted().map(String.init).joined(separator: ",")
                // Without the database the event has no id: a reconnect then says the previous
                // one, older, and hears of more, never less.
                let id = (try? await store.newestEventID()).map { "id: \($0)\n" } ?? ""
                try await writer.write(ByteBuffer(string: "\(id)event: changed\ndata: \(data)\n\n"))
                next = ContinuousClock.now + wait()
            }
            // At shutdown every stream ends at once (the server waits for open responses; a
            // stream otherwise lasts its lifetime), and the browser reconnects to a replica
            // that is up.
            let feed = feed
            try await withGracefulShutdownHandler {
                if !missedChanges.isEmpty {
                    if ContinuousClock.now < next { try await Task.sleep(until: next) }
                    try await send(missedChanges)
                }
                var changes = stream.makeAsyncIterator()
                while let c = await changes.next(notBefore: next, spread: interval) { try await send(c) }
            } onGracefulShutdown: {
                feed.endAll()
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }
}

extension WebController {
    /// The header a reconnecting EventSource names the last event it had in.
    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    /// The internal id (what change notifications carry) of the incident `ref` names.
    func incidentID(_ ref: String) async throws -> Int64 {
        guard let number = IncidentRef.number(ref) else { throw APIError(.badRequest, "must be an incident number", field: "incident") }
        guard let id = try await store.id(number: number) else { throw IncidentController.notFound(number) }
        return id
    }
}

extension APIError {
    /// The error as a page shows it: "field: why".
    var pageMessage: String { field.map { "\($0): \(message)" } ?? message }
}
