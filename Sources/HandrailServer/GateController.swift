import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// Canary gates. A controller asks (Flagger's webhooks, Argo Rollouts' web metric) with a
/// `canary` integration key; people read gates and record decisions. A gate answers "go"
/// only after a person the release's runbook allows recorded it; it never opens by itself.
struct GateController {
    let store: GateStore
    let publicURL: String?

    /// Flagger's hook types Handrail answers (the URL's last part).
    static let flaggerHooks = GateStage.allCases.map(\.rawValue) + ["rollback", "event"]

    func addRoutes(to routes: Routes) {
        routes.on(.post, "/api/v1/flagger/:hook", .ingest([.canary])) { request, context in
            try await flagger(request, context)
        }
        routes.on(.get, "/api/v1/argo/gate", .ingest([.canary])) { request, context in
            try await argo(request, context)
        }
        routes.on(.get, "/api/v1/gates", .role(.viewer)) { request, _ in
            let waiting = request.uri.queryParameters.get("waiting")
            guard waiting == nil || waiting == "true" || waiting == "false" else {
                throw APIError(.badRequest, "must be true or false", field: "waiting")
            }
            return GateList(gates: try await store.gates(waitingOnly: waiting == "true"))
        }
        routes.on(.post, "/api/v1/gates", .role(.responder)) { request, context in
            let input = try await request.decodeJSON(OpenInput.self, context: context)
            return EditedResponse(status: .created, response: GateBody(gate: try await open(input, context)))
        }
        routes.on(.get, "/api/v1/gates/:id", .role(.viewer)) { _, context in
            let id = try Self.id(context)
            guard let gate = try await store.gates(id: id).first else { throw Self.notFound(id) }
            return GateBody(gate: gate)
        }
        routes.on(.post, "/api/v1/gates/:id/decisions", .role(.responder)) { request, context in
            let id = try Self.id(context)
            let input = try await request.decodeJSON(DecisionInput.self, context: context)
            return EditedResponse(status: .created, response: GateBody(gate: try await decide(id, input, context)))
        }
    }

    // MARK: - Controllers asking

    /// Flagger: `POST /api/v1/flagger/{hook}?key=…` with its webhook payload. A gate's hook
    /// answers 200 for "go" and 409 otherwise (Flagger waits on anything above 202 and asks
    /// again next interval); the rollback hook answers 200 once a rollback was decided; the
    /// event hook stores the event and answers 200.
    func flagger(_ request: Request, _ context: HandrailRequestContext) async throws -> EditedResponse<Reply> {
        let hook = context.parameters.get("hook") ?? ""
        guard Self.flaggerHooks.contains(hook) else {
            throw APIError(
                .notFound,
                "no Flagger hook \(hook.debugDescription): use one of \(Self.flaggerHooks.joined(separator: ", "))",
                field: "hook"
            )
        }
        var request = request
        let body = try await request.collectBody(limit: 64 << 10)
        let json: JSONValue
        do {
            json = try JSONParser.parse(Data(body.readableBytesView))
        } catch {
            throw APIError(.badRequest, "the body is not valid JSON (Flagger's webhook payload)", field: "body")
        }
        let payload = try FlaggerPayload.parse(json)
        let asker = try Self.asker("flagger", context)
        let runbook = payload.metadata["runbook"]
        switch hook {
        case "event":
            let message = payload.metadata["eventMessage"] ?? ""
            guard !message.isEmpty else { throw APIError(.badRequest, "is required for an event hook", field: "metadata.eventMessage") }
            guard
                try await store.event(
                    payload.release,
                    phase: payload.phase,
                    type: payload.metadata["eventType"],
                    message: message,
                    sentAt: payload.eventTime,
                    runbook: runbook,
                    by: asker
                )
            else { throw Self.unknownRunbook(runbook, field: "metadata.runbook") }
            return reply(.ok, Reply(answer: nil, message: "stored", gate: nil, release: payload.release), context)
        case "rollback":
            let rollback = try await store.rollbackDecided(payload.release)
            let message =
                rollback
                ? "roll back: a person decided to roll \(payload.release.target) at \(payload.release.checksum) back"
                : "no rollback decided for \(payload.release.target) at \(payload.release.checksum)"
            return reply(
                rollback ? .ok : .conflict,
                Reply(answer: rollback ? .rollback : .wait, message: message, gate: nil, release: payload.release),
                context
            )
        default:
            let stage = try GateStage.parse(hook, field: "hook")
            let limit = try Self.waitLimit(payload.metadata["wait_limit"], field: "metadata.wait_limit")
            let gate = try await ask(payload.release, stage, payload.guards, runbook, limit, asker, runbookField: "metadata.runbook")
            return reply(gate.answer == .go ? .ok : .conflict, answer(gate), context)
        }
    }

    /// Argo Rollouts: `GET /api/v1/argo/gate?namespace=…&name=…&checksum=…&stage=…` (key as
    /// a Bearer header or `?key=`), for an AnalysisTemplate's `web` metric. Always 200 with
    /// `{"decision": "go" | "wait" | "rollback", …}`; the template's conditions read it.
    func argo(_ request: Request, _ context: HandrailRequestContext) async throws -> EditedResponse<Reply> {
        let q = request.uri.queryParameters
        let release = try ReleaseRef.validated(
            namespace: q.get("namespace"),
            name: q.get("name"),
            checksum: q.get("checksum")
        )
        let stage = try GateStage.parse(q.get("stage") ?? GateStage.confirmPromotion.rawValue)
        let limit = try Self.waitLimit(q.get("wait_limit"), field: "wait_limit")
        let gate = try await ask(release, stage, [:], q.get("runbook"), limit, try Self.asker("argo", context), runbookField: "runbook")
        return reply(.ok, answer(gate), context)
    }

    func ask(
        _ release: ReleaseRef,
        _ stage: GateStage,
        _ guards: [String: String],
        _ runbook: String?,
        _ waitLimit: Int?,
        _ asker: GateStore.Asker,
        runbookField: String
    ) async throws -> Gate {
        switch try await store.ask(release, stage: stage, metadata: guards, runbook: runbook, waitLimit: waitLimit, by: asker) {
        case .answered(let gate): return gate
        case .unknownRunbook(let id): throw Self.unknownRunbook(id, field: runbookField)
        }
    }

    func answer(_ gate: Gate) -> Reply {
        let what =
            "\(gate.stage.rawValue)\(gate.stage == .confirmTrafficIncrease ? " #\(gate.step)" : "") of \(gate.release.target) at \(gate.release.checksum)"
        let message =
            switch gate.answer {
            case .go: "go: a person recorded go for \(what)"
            case .rollback: "rollback: a person decided to roll \(gate.release.target) back; this gate stays shut"
            case .wait: "waiting for a person's decision on \(what) (gate \(gate.id))"
            }
        return Reply(answer: gate.answer, message: message, gate: gate.id, release: gate.release, url: (publicURL ?? "") + "/api/v1/gates/\(gate.id)")
    }

    func reply(_ status: HTTPResponse.Status, _ body: Reply, _: HandrailRequestContext) -> EditedResponse<Reply> {
        EditedResponse(status: status, response: body)
    }

    /// What a controller is told: `answer` (and `decision`, the same, for Argo's conditions).
    struct Reply: ResponseEncodable {
        let answer: GateAnswer?
        let message: String
        let gate: Int64?
        let release: ReleaseRef
        var url: String? = nil
        var decision: GateAnswer? { answer }

        enum CodingKeys: String, CodingKey { case answer, decision, message, gate, release, url }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(answer, forKey: .answer)
            try c.encodeIfPresent(decision, forKey: .decision)
            try c.encode(message, forKey: .message)
            try c.encodeIfPresent(gate, forKey: .gate)
            try c.encode(release, forKey: .release)
            try c.encodeIfPresent(url, forKey: .url)
        }
    }

    static func asker(_ controller: String, _ context: HandrailRequestContext) throws -> GateStore.Asker {
        guard case .integration(let integration) = context.principal else { throw APIError(.forbidden, "only a canary integration key asks gates") }
        return GateStore.Asker(controller: controller, integration: integration.id, name: integration.name)
    }

    /// How long a gate may wait before it raises an incident: `30m`, `2h`, `1d` (at least a
    /// minute, at most 30 days); nil for the default (two hours).
    static func waitLimit(_ text: String?, field: String) throws -> Int? {
        guard let text else { return nil }
        guard let seconds = RunbookParser.parseDuration(text), (60...30 * 86_400).contains(seconds) else {
            throw APIError(.badRequest, "must be a duration from 1m to 30d, such as 30m, 2h or 1d", field: field)
        }
        return seconds
    }

    static func unknownRunbook(_ id: String?, field: String) -> APIError {
        APIError(.badRequest, "no runbook \((id ?? "").debugDescription) is synced (see GET /api/v1/runbooks)", field: field)
    }

    // MARK: - People deciding

    /// A gate a person opens before the controller asks (`POST /api/v1/gates`).
    struct OpenInput: Decodable {
        let namespace: String?
        let name: String?
        let checksum: String?
        let stage: String?
        let runbook: String?
        let waitLimit: String?
        let metadata: [String: String]?
    }

    func open(_ input: OpenInput, _ context: HandrailRequestContext) async throws -> Gate {
        let person = try DecisionController.person(context)
        let release = try ReleaseRef.validated(namespace: input.namespace, name: input.name, checksum: input.checksum)
        let stage = try GateStage.parse(input.stage ?? GateStage.confirmRollout.rawValue)
        let metadata = input.metadata ?? [:]
        guard metadata.count <= 100, metadata.allSatisfy({ $0.key.count <= 200 && $0.value.count <= 10_000 }) else {
            throw APIError(.badRequest, "must have at most 100 entries of at most 10000 characters (keys 200)", field: "metadata")
        }
        let limit = try Self.waitLimit(input.waitLimit, field: "wait_limit")
        let asker = GateStore.Asker(controller: "manual", integration: nil, name: person.username)
        return try await ask(release, stage, metadata, input.runbook, limit, asker, runbookField: "runbook")
    }

    struct DecisionInput: Decodable {
        let kind: String
        let rationale: String?
        let alternativesConsidered: String?
    }

    /// Records a person's decision at a gate (API and pages).
    func decide(_ id: Int64, _ input: DecisionInput, _ context: HandrailRequestContext) async throws -> Gate {
        let person = try DecisionController.person(context)
        let kind = try GateDecisionKind.parse(input.kind)
        guard let rationale = DecisionController.clean(input.rationale) else {
            throw APIError(.badRequest, "is required: say why", field: "rationale")
        }
        let alternatives = DecisionController.clean(input.alternativesConsidered)
        for (field, value) in [("rationale", rationale), ("alternatives_considered", alternatives ?? "")] where value.count > 10_000 {
            throw APIError(.badRequest, "must be at most 10000 characters", field: field)
        }
        switch try await store.decide(gate: id, kind: kind, rationale: rationale, alternatives: alternatives, by: person) {
        case .recorded(let gate): return gate
        case .notFound: throw Self.notFound(id)
        case .refused(let why): throw APIError(.forbidden, why)
        }
    }

    struct GateList: ResponseEncodable { let gates: [Gate] }

    struct GateBody: ResponseEncodable {
        let gate: Gate
        func encode(to encoder: any Encoder) throws { try gate.encode(to: encoder) }
    }

    static func id(_ context: HandrailRequestContext) throws -> Int64 {
        guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be a gate id", field: "id") }
        return id
    }

    static func notFound(_ id: Int64) -> APIError { APIError(.notFound, "no gate \(id)") }
}
