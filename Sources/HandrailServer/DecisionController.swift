import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// Rollback decisions on an incident: record (the runbook says which roles), execute,
/// and confirm or override Handrail's proposed outcome. Append-only; reads for viewers.
struct DecisionController {
    let store: DecisionStore

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/api/v1/incidents/:ref/decisions", .role(.viewer)) { _, context in
            let number = try IncidentController.number(context)
            guard let decisions = try await store.list(number: number) else { throw IncidentController.notFound(number) }
            return ListBody(decisions: decisions)
        }
        routes.on(.get, "/api/v1/incidents/:ref/decisions/:id", .role(.viewer)) { _, context in
            let (number, id) = try Self.ids(context)
            return try await one(number, id)
        }
        routes.on(.post, "/api/v1/incidents/:ref/decisions", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let input = try await request.decodeJSON(DecisionInput.self, context: context)
            return EditedResponse(status: .created, response: DecisionBody(decision: try await record(number, input, context)))
        }
        routes.on(.get, "/api/v1/incidents/:ref/proposals", .role(.viewer)) { _, context in
            let number = try IncidentController.number(context)
            guard let proposals = try await store.proposals(number: number) else { throw IncidentController.notFound(number) }
            return ProposalList(proposals: proposals)
        }
        routes.on(.post, "/api/v1/incidents/:ref/proposals", .role(.responder)) { request, context in
            let number = try IncidentController.number(context)
            let input = try await request.decodeJSON(DecisionInput.self, context: context)
            return EditedResponse(status: .created, response: ProposalBody(proposal: try await propose(number, input, context)))
        }
        routes.on(.post, "/api/v1/incidents/:ref/proposals/:id/confirm", .role(.responder)) { _, context in
            let (number, id) = try Self.ids(context)
            return EditedResponse(status: .created, response: DecisionBody(decision: try await confirm(number, id, context)))
        }
        routes.on(.post, "/api/v1/incidents/:ref/proposals/:id/reject", .role(.responder)) { request, context in
            let (number, id) = try Self.ids(context)
            let input = try await request.decodeJSON(RejectInput.self, context: context)
            return ProposalBody(proposal: try await reject(number, id, reason: input.reason, context))
        }
        routes.on(.post, "/api/v1/incidents/:ref/decisions/:id/execute", .role(.responder)) { request, context in
            let (number, id) = try Self.ids(context)
            let input = try await request.decodeOptionalJSON(ExecuteInput.self, context: context) ?? ExecuteInput(at: nil, note: nil)
            return DecisionBody(decision: try await execute(number, id, input, context))
        }
        routes.on(.post, "/api/v1/incidents/:ref/decisions/:id/outcome", .role(.responder)) { request, context in
            let (number, id) = try Self.ids(context)
            let input = try await request.decodeJSON(OutcomeInput.self, context: context)
            return DecisionBody(decision: try await recordOutcome(number, id, input, context))
        }
    }

    /// Records a decision (API and pages); the pinned runbook says who may.
    func record(_ number: Int64, _ input: DecisionInput, _ context: HandrailRequestContext) async throws -> Decision {
        let person = try Self.person(context)
        let decision = try input.validated()
        return try Self.recorded(try await store.record(number: number, decision, by: person), number, decision.supersedes)
    }

    /// Proposes a decision for someone allowed to decide to confirm or reject (API and pages).
    func propose(_ number: Int64, _ input: DecisionInput, _ context: HandrailRequestContext) async throws -> DecisionProposal {
        let person = try Self.person(context)
        let decision = try input.validated()
        guard decision.supersedes == nil else {
            throw APIError(.badRequest, "a proposal does not replace a decision; propose a new one", field: "supersedes")
        }
        switch try await store.propose(number: number, decision, by: person) {
        case .proposed(let p): return p
        case .notFound: throw IncidentController.notFound(number)
        }
    }

    /// Confirms a proposal: it becomes this person's decision, naming who proposed it (API and pages).
    func confirm(_ number: Int64, _ id: Int64, _ context: HandrailRequestContext) async throws -> Decision {
        let person = try Self.person(context)
        let result = try await store.confirm(number: number, proposal: id, by: person)
        if result == .notFound, try await store.proposals(number: number) != nil {
            throw APIError(.notFound, "\(IncidentRef.display(number)) has no proposal \(id)")
        }
        return try Self.recorded(result, number, nil)
    }

    /// Rejects a proposal, saying why (API and pages).
    func reject(_ number: Int64, _ id: Int64, reason: String?, _ context: HandrailRequestContext) async throws -> DecisionProposal {
        let person = try Self.person(context)
        guard let reason = Self.clean(reason) else { throw APIError(.badRequest, "is required: say why the proposal is rejected", field: "reason") }
        guard reason.count <= 10_000 else { throw APIError(.badRequest, "must be at most 10000 characters", field: "reason") }
        switch try await store.reject(number: number, proposal: id, reason: reason, by: person) {
        case .rejected(let p): return p
        case .notFound:
            guard try await store.proposals(number: number) != nil else { throw IncidentController.notFound(number) }
            throw APIError(.notFound, "\(IncidentRef.display(number)) has no proposal \(id)")
        case .refused(let why): throw APIError(.forbidden, why)
        case .answered(let what): throw APIError(.conflict, what)
        }
    }

    static func recorded(_ result: DecisionStore.RecordResult, _ number: Int64, _ supersedes: Int64?) throws -> Decision {
        switch result {
        case .recorded(let d): return d
        case .notFound: throw IncidentController.notFound(number)
        case .refused(let reason): throw APIError(.forbidden, reason)
        case .unknownSuperseded:
            throw APIError(.badRequest, "\(IncidentRef.display(number)) has no decision \(supersedes ?? 0)", field: "supersedes")
        case .alreadySuperseded(let by):
            throw APIError(
                .conflict,
                "decision \(supersedes ?? 0) was already superseded by decision \(by ?? 0); supersede that one",
                field: "supersedes"
            )
        case .answered(let what): throw APIError(.conflict, what)
        }
    }

    /// Records that a decision was carried out (API and pages).
    func execute(_ number: Int64, _ id: Int64, _ input: ExecuteInput, _ context: HandrailRequestContext) async throws -> Decision {
        let person = try Self.person(context)
        let at = try IncidentController.time(input.at, "at")
        switch try await store.execute(number: number, id: id, at: at, note: Self.clean(input.note), by: person) {
        case .executed(let d): return d
        case .notFound: throw Self.notFound(number, id)
        case .superseded(let by): throw APIError(.conflict, "decision \(id) was superseded by decision \(by); it is not carried out")
        case .alreadyExecuted(let who, let when): throw APIError(.conflict, "decision \(id) was executed by \(who) at \(RFC3339.format(when))")
        case .badTime(let message): throw APIError(.badRequest, message, field: "at")
        case .refused(let reason): throw APIError(.forbidden, reason)
        }
    }

    /// Confirms or overrides Handrail's proposed outcome (API and pages).
    func recordOutcome(_ number: Int64, _ id: Int64, _ input: OutcomeInput, _ context: HandrailRequestContext) async throws -> Decision {
        let person = try Self.person(context)
        let outcome = try DecisionOutcome.parse(input.outcome)
        switch try await store.recordOutcome(number: number, id: id, outcome: outcome, note: Self.clean(input.note), by: person) {
        case .recorded(let d): return d
        case .notFound: throw Self.notFound(number, id)
        case .notExecuted: throw APIError(.conflict, "decision \(id) has not been executed; record its execution first")
        case .alreadyRecorded(let o):
            throw APIError(
                .conflict,
                "decision \(id) already has its outcome (\(o.outcome.rawValue), by \(o.confirmedBy)); a change of mind is a new decision"
            )
        case .refused(let reason): throw APIError(.forbidden, reason)
        case .noteRequired(let proposed):
            throw APIError(
                .badRequest,
                "Handrail proposes \(proposed?.rawValue ?? "nothing yet (the verification window is open)"); say why you record \(outcome.rawValue)",
                field: "note"
            )
        }
    }

    struct ListBody: ResponseEncodable { let decisions: [Decision] }
    struct ProposalList: ResponseEncodable { let proposals: [DecisionProposal] }
    struct RejectInput: Decodable { let reason: String? }

    struct TargetInput: Decodable {
        let service: String?
        let model: String?
        let fromVersion: String?
        let toVersion: String?
    }

    struct DecisionInput: Decodable {
        let kind: String
        let target: TargetInput
        let rationale: String?
        let customerImpact: String?
        let alternativesConsidered: String?
        let supersedes: Int64?

        func validated() throws -> NewDecision {
            let kind = try DecisionKind.parse(kind)
            guard let rationale = clean(rationale) else { throw APIError(.badRequest, "is required: say why", field: "rationale") }
            let target = DecisionTarget(
                service: clean(target.service),
                model: clean(target.model),
                fromVersion: clean(target.fromVersion),
                toVersion: clean(target.toVersion)
            )
            guard target.service != nil || target.model != nil else {
                throw APIError(.badRequest, "must name a service or a model", field: "target")
            }
            for (field, value) in [
                ("rationale", rationale), ("customer_impact", customerImpact ?? ""), ("alternatives_considered", alternativesConsidered ?? ""),
            ]
            where value.count > 10_000 {
                throw APIError(.badRequest, "must be at most 10000 characters", field: field)
            }
            return NewDecision(
                kind: kind,
                target: target,
                rationale: rationale,
                customerImpact: clean(customerImpact),
                alternativesConsidered: clean(alternativesConsidered),
                supersedes: supersedes
            )
        }

        func clean(_ text: String?) -> String? { DecisionController.clean(text) }
    }

    struct ExecuteInput: Decodable {
        let at: String?
        let note: String?
    }

    struct OutcomeInput: Decodable {
        let outcome: String
        let note: String?
    }

    static func clean(_ text: String?) -> String? {
        guard let t = text?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty else { return nil }
        return t
    }

    func one(_ number: Int64, _ id: Int64) async throws -> DecisionBody {
        guard let decisions = try await store.list(number: number, id: id) else { throw IncidentController.notFound(number) }
        guard let d = decisions.first else { throw Self.notFound(number, id) }
        return DecisionBody(decision: d)
    }

    static func ids(_ context: HandrailRequestContext) throws -> (Int64, Int64) {
        let number = try IncidentController.number(context)
        guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be a decision id", field: "id") }
        return (number, id)
    }

    static func person(_ context: HandrailRequestContext) throws -> DecisionStore.Person {
        guard let user = context.user else { throw APIError(.forbidden, "decisions are made by people, not integration keys") }
        return (user.id, user.username, user.role)
    }

    static func notFound(_ number: Int64, _ id: Int64) -> APIError {
        APIError(.notFound, "\(IncidentRef.display(number)) has no decision \(id)")
    }
}

/// One proposal as a response body.
struct ProposalBody: ResponseEncodable {
    let proposal: DecisionProposal
    func encode(to encoder: any Encoder) throws { try proposal.encode(to: encoder) }
}

/// One decision as a response body.
struct DecisionBody: ResponseEncodable {
    let decision: Decision
    func encode(to encoder: any Encoder) throws { try decision.encode(to: encoder) }
}
