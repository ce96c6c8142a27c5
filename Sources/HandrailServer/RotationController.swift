import Foundation
import HandrailCore
import HandrailStore
import Hummingbird

/// Rotations: who is on call now and next (viewers), and their settings and overrides
/// (leads and up; every change is audited).
struct RotationController {
    let store: RotationStore

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/api/v1/rotations", .role(.viewer)) { _, _ in
            let now = Date()
            return ListBody(rotations: try await store.list(now: now).map { RotationBody($0, now: now, shifts: 2) })
        }
        routes.on(.post, "/api/v1/rotations", .role(.lead)) { request, context in
            let rotation = try await request.decodeJSON(RotationInput.self, context: context).rotation(name: nil)
            guard let saved = try await store.save(rotation, create: true, by: try Self.actor(context)) else {
                throw APIError(.internalServerError, "the rotation was not stored")
            }
            return EditedResponse(status: .created, response: RotationBody(saved, now: Date(), shifts: 4))
        }
        routes.on(.get, "/api/v1/rotations/:name", .role(.viewer)) { request, context in
            let rotation = try await find(context)
            let count = try Self.count(request)
            return RotationBody(rotation, now: Date(), shifts: count ?? 4)
        }
        routes.on(.put, "/api/v1/rotations/:name", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let rotation = try await request.decodeJSON(RotationInput.self, context: context).rotation(name: name)
            guard let saved = try await store.save(rotation, create: false, by: try Self.actor(context)) else { throw Self.notFound(name) }
            return RotationBody(saved, now: Date(), shifts: 4)
        }
        routes.on(.put, "/api/v1/rotations/:name/load-limits", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let input = try await request.decodeJSON(LoadLimitsInput.self, context: context)
            guard (0...10_000).contains(input.nightPages) else { throw APIError(.badRequest, "must be from 0 to 10000", field: "night_pages") }
            guard (0...100_000).contains(input.pages) else { throw APIError(.badRequest, "must be from 0 to 100000", field: "pages") }
            guard
                let set = try await store.setLoadLimits(rotation: name, nightPages: input.nightPages, pages: input.pages, by: try Self.actor(context))
            else { throw Self.notFound(name) }
            return LoadLimitsBody(rotation: name, nightPages: set.nightPages, pages: set.pages)
        }
        routes.on(.get, "/api/v1/rotations/:name/oncall", .role(.viewer)) { request, context in
            let rotation = try await find(context)
            let at = try IncidentController.time(request.uri.queryParameters.get("at"), "at") ?? Date()
            return OnCallBody(rotation: rotation.name, at: at, onCall: rotation.onCall(at: at))
        }
        routes.on(.get, "/api/v1/rotations/:name/shifts", .role(.viewer)) { request, context in
            let rotation = try await find(context)
            let from = try IncidentController.time(request.uri.queryParameters.get("from"), "from") ?? Date()
            return ShiftsBody(
                rotation: rotation.name,
                timeZone: rotation.timeZone,
                shifts: rotation.shifts(from: from, count: try Self.count(request) ?? 4)
            )
        }
        routes.on(.post, "/api/v1/rotations/:name/overrides", .role(.lead)) { request, context in
            let name = try context.parameters.require("name")
            let input = try await request.decodeJSON(OverrideInput.self, context: context)
            guard let from = try IncidentController.time(input.from, "from") else { throw APIError(.badRequest, "is required", field: "from") }
            guard let to = try IncidentController.time(input.to, "to") else { throw APIError(.badRequest, "is required", field: "to") }
            guard to > from else { throw APIError(.badRequest, "must be after from", field: "to") }
            let reason = DecisionController.clean(input.reason)
            switch try await store.addOverride(rotation: name, user: input.user, start: from, end: to, reason: reason, by: try Self.actor(context)) {
            case .added(let o): return EditedResponse(status: .created, response: OverrideBody(o))
            case .noRotation: throw Self.notFound(name)
            case .unknownUser: throw APIError(.badRequest, "no enabled user \(input.user.debugDescription)", field: "user")
            }
        }
        routes.on(.delete, "/api/v1/rotations/:name/overrides/:id", .role(.lead)) { _, context in
            let name = try context.parameters.require("name")
            guard let id = context.parameters.get("id", as: Int64.self) else { throw APIError(.badRequest, "must be an override id", field: "id") }
            guard try await store.removeOverride(rotation: name, id: id, by: try Self.actor(context)) else {
                throw APIError(.notFound, "rotation \(name) has no override \(id)")
            }
            return Response(status: .noContent)
        }
    }

    func find(_ context: HandrailRequestContext) async throws -> Rotation {
        let name = try context.parameters.require("name")
        guard let rotation = try await store.find(name: name) else { throw Self.notFound(name) }
        return rotation
    }

    static func count(_ request: Request) throws -> Int? {
        guard let text = request.uri.queryParameters.get("count") else { return nil }
        guard let n = Int(text), (1...100).contains(n) else { throw APIError(.badRequest, "must be a number from 1 to 100", field: "count") }
        return n
    }

    static func notFound(_ name: String) -> APIError { APIError(.notFound, "no rotation \(name.debugDescription)") }

    static func actor(_ context: HandrailRequestContext) throws -> AuditActor {
        guard let user = context.user else { throw APIError(.forbidden, "only people edit rotations") }
        return .user(user, from: context.clientAddress)
    }

    struct LoadLimitsInput: Decodable {
        let nightPages: Int
        let pages: Int
    }

    struct LoadLimitsBody: ResponseEncodable {
        let rotation: String
        let nightPages: Int
        let pages: Int
    }

    struct RotationInput: Decodable {
        let name: String?
        let members: [String]
        let timeZone: String
        let shiftLength: String
        let handoff: String
        let startDate: String

        func rotation(name path: String?) throws -> Rotation {
            if let path, let name, name != path {
                throw APIError(.badRequest, "must match the rotation in the path (\(path)); rotations are not renamed", field: "name")
            }
            guard let name = path ?? name else { throw APIError(.badRequest, "is required", field: "name") }
            guard let date = LocalDate(startDate) else { throw APIError(.badRequest, "must be a date such as 2026-11-23", field: "start_date") }
            let rotation = Rotation(
                name: name,
                members: members.map { $0.trimmingCharacters(in: .whitespaces) },
                timeZone: timeZone,
                shiftLength: try ShiftLength.parse(shiftLength),
                handoff: try HandoffTime.parse(handoff),
                startDate: date
            )
            try rotation.validate()
            return rotation
        }
    }

    struct OverrideInput: Decodable {
        let user: String
        let from: String?
        let to: String?
        let reason: String?
    }

    struct OverrideBody: ResponseEncodable, Encodable {
        let id: Int64?
        let user: String
        let from: Date
        let to: Date
        let reason: String?
        init(_ o: RotationOverride) {
            id = o.id
            user = o.user
            from = o.start
            to = o.end
            reason = o.reason
        }
    }

    struct SegmentBody: Encodable {
        let from: Date
        let to: Date
        let user: String
        let overrideId: Int64?
        init(_ s: ShiftSegment) {
            from = s.start
            to = s.end
            user = s.user
            overrideId = s.override?.id
        }
    }

    struct ShiftBody: Encodable {
        let index: Int
        let from: Date
        let to: Date
        let scheduled: String
        let coverage: [SegmentBody]
        init(_ s: Shift) {
            index = s.index
            from = s.start
            to = s.end
            scheduled = s.scheduled
            coverage = s.segments.map(SegmentBody.init)
        }
    }

    struct OnCallBody: ResponseEncodable {
        let rotation: String
        let at: Date
        let user: String?
        let scheduled: String?
        let override: OverrideBody?
        let since: Date?
        let until: Date?
        init(rotation: String, at: Date, onCall: OnCall) {
            self.rotation = rotation
            self.at = at
            user = onCall.user
            scheduled = onCall.scheduled
            override = onCall.override.map(OverrideBody.init)
            since = onCall.since
            until = onCall.until
        }
    }

    struct ShiftsBody: ResponseEncodable {
        let rotation: String
        let timeZone: String
        let shifts: [ShiftBody]
        init(rotation: String, timeZone: String, shifts: [Shift]) {
            self.rotation = rotation
            self.timeZone = timeZone
            self.shifts = shifts.map(ShiftBody.init)
        }
    }

    struct RotationBody: ResponseEncodable, Encodable {
        let name: String
        let members: [String]
        let timeZone: String
        let shiftLength: String
        let handoff: String
        let startDate: String
        let onCall: String?
        let onCallUntil: Date?
        let nextShifts: [ShiftBody]
        let overrides: [OverrideBody]
        init(_ r: Rotation, now: Date, shifts: Int) {
            name = r.name
            members = r.members
            timeZone = r.timeZone
            shiftLength = r.shiftLength.description
            handoff = r.handoff.description
            startDate = r.startDate.description
            let current = r.onCall(at: now)
            onCall = current.user
            onCallUntil = current.until
            nextShifts = r.shifts(from: now, count: shifts).map(ShiftBody.init)
            overrides = r.overrides.map(OverrideBody.init)
        }
    }

    struct ListBody: ResponseEncodable { let rotations: [RotationBody] }
}
