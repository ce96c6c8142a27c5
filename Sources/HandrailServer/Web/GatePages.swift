import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird

/// A gate in a list (the Now page's "Rollouts waiting for a decision").
struct GateRow: PageModel {
    var id: Int64
    var target: String
    var checksum: String
    var what: String
    var waiting: String
    var asked: String
    var answer: String

    init(_ g: Gate, now: Date) {
        id = g.id
        target = g.release.target
        checksum = g.release.checksum
        what = GatePage.what(g)
        waiting = OutcomeProposal.duration(max(0, Int(now.timeIntervalSince(g.openedAt))))
        asked = NumberText.count(g.timesAsked, "question")
        answer = g.answer.rawValue
    }
}

/// `gate.html`: one gate: the release and stage, what Handrail answers, the guards' latest
/// values, the runbook, the incidents on the target, the decisions and the controller's
/// events, and the decision form for those the runbook lets decide.
struct GatePage: PageModel {
    struct Guard: PageModel {
        var name: String
        var value: String
    }
    struct Decision: PageModel {
        var kind: String
        var who: String
        var role: String
        var at: String
        var atIso: String
        var rationale: String
        var alternatives: String?
        var here: Bool
        var gate: Int64?
        var guards: String?
    }
    struct Event: PageModel {
        var at: String
        var atIso: String
        var message: String
        var type: String?
        var phase: String?
        var warning: Bool
    }
    struct Incident: PageModel {
        var number: Int64
        var ref: String
        var title: String
        var state: String
        var severity: String
    }

    var title: String
    var id: Int64
    var target: String
    var checksum: String
    var controller: String
    var what: String
    var stageTitle: String
    var answer: String
    var answerText: String
    var isWaiting: Bool
    var opened: String
    var openedIso: String
    var lastAsked: String
    var asked: String
    var guards: [Guard]
    var hasGuards: Bool
    var runbook: String?
    var decidedBy: String
    var decisions: [Decision]
    var events: [Event]
    var incidents: [Incident]
    var canDecide: Bool
    var error: String?

    init(_ g: Gate, policy: RollbackPolicy, user: User?, error: String?) {
        title = "Rollout \(g.release.target)"
        id = g.id
        target = g.release.target
        checksum = g.release.checksum
        controller = g.controller == "argo" ? "Argo Rollouts" : "Flagger"
        what = Self.what(g)
        stageTitle = g.stage.title
        answer = g.answer.rawValue
        answerText =
            switch g.answer {
            case .go: "Go: the controller is told it may \(g.stage.title)."
            case .wait: "Waiting: the controller is told to wait and asks again each interval."
            case .rollback: "Rollback: a person decided to roll this release back; every gate of it stays shut."
            }
        isWaiting = g.answer == .wait
        opened = WebController.time(g.openedAt)
        openedIso = RFC3339.format(g.openedAt)
        lastAsked = WebController.time(g.lastAskedAt)
        asked = NumberText.count(g.timesAsked, "question")
        guards = g.metadata.sorted { $0.key < $1.key }.map { Guard(name: $0.key, value: $0.value) }
        hasGuards = !guards.isEmpty
        runbook = g.runbook
        let roles = Role.allCases.filter { $0 >= policy.minimumRole }.map(\.rawValue).joined(separator: ", ")
        decidedBy = "\(roles) (from \(g.runbook.map { "runbook \($0)" } ?? "the default: no runbook named"))"
        decisions = g.decisions.reversed().map { d in
            Decision(
                kind: d.kind.rawValue,
                who: d.decidedBy,
                role: d.decidedByRole.rawValue,
                at: WebController.time(d.decidedAt),
                atIso: RFC3339.format(d.decidedAt),
                rationale: d.rationale,
                alternatives: d.alternativesConsidered,
                here: d.gate == g.id,
                gate: d.gate,
                guards: d.guards.isEmpty ? nil : d.guards.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            )
        }
        events = g.events.map { e in
            Event(
                at: WebController.time(e.at),
                atIso: RFC3339.format(e.at),
                message: e.message,
                type: e.eventType,
                phase: e.phase,
                warning: e.eventType == "Warning"
            )
        }
        incidents = g.incidents.map { Incident(number: $0.number, ref: $0.ref, title: $0.title, state: $0.state, severity: $0.severity) }
        canDecide = (user?.role ?? .viewer) >= policy.minimumRole && g.answer != .rollback
        self.error = error
    }

    /// "confirm-traffic-increase #2 (increase the canary's traffic)".
    static func what(_ g: Gate) -> String {
        "\(g.stage.rawValue)\(g.stage == .confirmTrafficIncrease ? " #\(g.step)" : "") (\(g.stage.title))"
    }
}

/// The gate's page and its decision form (the same decision as the JSON API).
struct GatePages {
    let pages: Pages
    let api: GateController
    var store: GateStore { api.store }

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/gates/:id", .role(.viewer)) { _, context in try await page(try GateController.id(context), context) }
        routes.on(.post, "/gates/:id/decisions", .role(.responder)) { request, context in
            let id = try GateController.id(context)
            let f = try await WebController.form(request)
            return try await WebController.answer({ try await page(id, context, error: $0, status: $1) }) {
                let input = GateController.DecisionInput(
                    kind: f["kind"] ?? "",
                    rationale: f["rationale"],
                    alternativesConsidered: f["alternatives_considered"]
                )
                _ = try await api.decide(id, input, context)
                return Response(status: .seeOther, headers: [.location: "/gates/\(id)#decisions"])
            }
        }
    }

    func page(_ id: Int64, _ context: HandrailRequestContext, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let gate = try await store.gates(id: id).first, let (policy, _) = try await store.policy(gate: id) else {
            throw GateController.notFound(id)
        }
        return try pages.render("gate.html", status: status, GatePage(gate, policy: policy, user: context.user, error: error), context: context)
    }
}
