import Foundation
import HandrailCore
import HandrailStore
import Hummingbird
import Markdown

/// The runbooks API: read every version, ask which runbook an alert gets, sync the folder.
struct RunbookController {
    let store: RunbookStore
    let directory: URL
    let pages: Pages
    /// Called after every successful sync (the ingestion cache refreshes).
    var onSync: @Sendable () -> Void = {}

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/api/v1/runbooks", .role(.viewer)) { request, _ in try await list(request) }
        routes.on(.get, "/api/v1/runbooks/match", .role(.viewer)) { request, _ in try await match(request) }
        routes.on(.post, "/api/v1/runbooks/sync", .role(.lead)) { _, context in try await sync(context) }
        routes.on(.get, "/api/v1/runbooks/:id", .role(.viewer)) { _, context in
            let id = try context.parameters.require("id")
            guard let version = try await store.current(id: id) else { throw APIError(.notFound, "no runbook \(id.debugDescription)") }
            return Detail(version)
        }
        routes.on(.get, "/api/v1/runbooks/:id/versions", .role(.viewer)) { _, context in
            let id = try context.parameters.require("id")
            let versions = try await store.versions(id: id)
            guard !versions.isEmpty else { throw APIError(.notFound, "no runbook \(id.debugDescription)") }
            return versions.map(Summary.init)
        }
        routes.on(.get, "/api/v1/runbooks/:id/versions/:version", .role(.viewer)) { _, context in
            let id = try context.parameters.require("id")
            guard let number = context.parameters.get("version", as: Int.self) else {
                throw APIError(.badRequest, "must be a version number", field: "version")
            }
            guard let version = try await store.version(id: id, number) else {
                throw APIError(.notFound, "runbook \(id.debugDescription) has no version \(number)")
            }
            return Detail(version)
        }
        routes.on(.get, "/api/v1/runbooks/:id/diff", .role(.viewer)) { request, context in try await diff(request, context) }
        routes.on(.get, "/runbooks", .role(.viewer)) { request, context in
            // A GET form sends spaces as "+".
            let query = (request.uri.queryParameters.get("q") ?? "").replacingOccurrences(of: "+", with: " ").trimmingCharacters(in: .whitespaces)
            return try pages.render("runbooks.html", RunbooksPage(try await store.list(), query: query), context: context)
        }
        routes.on(.get, "/runbooks/:id", .role(.viewer)) { request, context in
            let id = try context.parameters.require("id")
            let number = request.uri.queryParameters.get("version", as: Int.self)
            let found = if let number { try await store.version(id: id, number) } else { try await store.current(id: id) }
            guard let v = found else { throw APIError(.notFound, "no runbook \(id.debugDescription)" + (number.map { " version \($0)" } ?? "")) }
            return try pages.render("runbook.html", RunbookPage(v, versions: try await store.versions(id: id)), context: context)
        }
        routes.on(.get, "/runbooks/:id/diff", .role(.viewer)) { request, context in
            let diff = try await diff(request, context)
            return try pages.render(
                "runbook-diff.html",
                RunbookDiffPage(id: diff.id, from: diff.from, to: diff.to, diff: diff.diff),
                context: context
            )
        }
    }

    // MARK: - Bodies

    struct Summary: ResponseEncodable {
        let id: String, version: Int, currentVersion: Int, title: String, owners: String?, severity: String
        let sourcePath: String, contentHash: String, syncedAt: Date, syncedBy: String, retiredAt: Date?
        init(_ v: RunbookVersion) {
            id = v.id
            version = v.version
            currentVersion = v.currentVersion
            title = v.runbook.title
            owners = v.runbook.owners
            severity = v.runbook.severity.rawValue
            sourcePath = v.sourcePath
            contentHash = v.contentHash
            syncedAt = v.syncedAt
            syncedBy = v.syncedBy
            retiredAt = v.retiredAt
        }
    }

    struct Detail: ResponseEncodable {
        struct Step: Encodable { let index: Int, title: String, markdown: String, html: String }
        struct Matcher: Encodable { let label: String, value: String, regex: Bool }
        struct Rollback: Encodable { let allowed: Bool, decidedBy: [String] }
        let summary: Summary
        let match: [Matcher]
        let groupBy: [String]
        let thresholds: [Threshold]
        let autoResolve: Bool
        let reopenWindowSeconds: Int
        let rollback: Rollback
        let steps: [Step]
        /// The whole file as synced.
        let source: String
        /// The body as HTML, in safe mode (no raw HTML, no dangerous links).
        let html: String

        init(_ v: RunbookVersion) {
            let r = v.runbook
            summary = Summary(v)
            match = r.match.map {
                switch $0.value {
                case .exact(let value): Matcher(label: $0.label, value: value, regex: false)
                case .regex(let pattern): Matcher(label: $0.label, value: pattern, regex: true)
                }
            }
            groupBy = r.groupBy
            thresholds = r.thresholds
            autoResolve = r.autoResolve
            reopenWindowSeconds = r.reopenWindow
            rollback = Rollback(allowed: r.rollback.allowed, decidedBy: r.rollback.decidedBy.map(\.rawValue))
            steps = r.steps.map { Step(index: $0.index, title: $0.title, markdown: $0.markdown, html: Markdown.html($0.markdown)) }
            source = v.source
            html = Markdown.html(r.body)
        }
    }

    // MARK: - Handlers

    /// Labels from the query: `alertname=…` and repeated `label=key=value`.
    static func labels(_ request: Request) throws -> [String: String] {
        var labels: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            if key == "alertname" { labels["alertname"] = String(value) }
            if key == "label" {
                let parts = value.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, !parts[0].isEmpty else { throw APIError(.badRequest, "must be key=value", field: "label") }
                labels[String(parts[0])] = String(parts[1])
            }
        }
        return labels
    }

    func list(_ request: Request) async throws -> [Summary] {
        let labels = try Self.labels(request)
        let query = request.uri.queryParameters.get("q")?.lowercased()
        let includeRetired = request.uri.queryParameters.get("retired") == "true"
        return try await store.list(includeRetired: includeRetired).filter { v in
            (labels.isEmpty || v.runbook.matchers(satisfiedBy: labels) != nil)
                && (query.map { q in v.runbook.title.lowercased().contains(q) || v.runbook.body.lowercased().contains(q) } ?? true)
        }.map(Summary.init)
    }

    struct MatchBody: ResponseEncodable {
        let runbook: Summary?
        let matched: [String]
        let reason: String
        let severity: String?
    }

    func match(_ request: Request) async throws -> MatchBody {
        let labels = try Self.labels(request)
        guard labels["alertname"] != nil else { throw APIError(.badRequest, "is required", field: "alertname") }
        let value = try request.uri.queryParameters.get("value").map { text -> Double in
            guard let number = Double(text) else { throw APIError(.badRequest, "must be a number", field: "value") }
            return number
        }
        let current = try await store.list()
        guard let found = current.map(\.runbook).bestMatch(for: labels), let version = current.first(where: { $0.id == found.runbook.id }) else {
            return MatchBody(
                runbook: nil,
                matched: [],
                reason: "no runbook matches these labels; the incident would open flagged \"no runbook\"",
                severity: nil
            )
        }
        return MatchBody(
            runbook: Summary(version),
            matched: found.matched.map(\.description),
            reason: found.reason,
            severity: found.runbook.severity(value: value, labels: labels).rawValue
        )
    }

    struct SyncBody: ResponseEncodable {
        let created: [String: Int]
        let unchanged: [String]
        let retired: [String]
        let restored: [String]
    }

    func sync(_ context: HandrailRequestContext) async throws -> SyncBody {
        switch try await RunbookDirectory.sync(directory, store: store, by: context.user?.username ?? "unknown") {
        case .synced(let r):
            onSync()
            return SyncBody(created: r.created, unchanged: r.unchanged, retired: r.retired, restored: r.restored)
        case .refused(let problems):
            throw APIError(
                .unprocessableContent,
                "nothing synced: " + problems.map(\.description).joined(separator: "; "),
                field: problems.first?.path
            )
        }
    }

    struct DiffBody: ResponseEncodable {
        let id: String, from: Int, to: Int, diff: String
    }

    func diff(_ request: Request, _ context: HandrailRequestContext) async throws -> DiffBody {
        let id = try context.parameters.require("id")
        guard let from = request.uri.queryParameters.get("from", as: Int.self) else {
            throw APIError(.badRequest, "is required (a version number)", field: "from")
        }
        let toVersion: Int
        if let to = request.uri.queryParameters.get("to", as: Int.self) {
            toVersion = to
        } else {
            guard let current = try await store.current(id: id) else { throw APIError(.notFound, "no runbook \(id.debugDescription)") }
            toVersion = current.version
        }
        guard let old = try await store.version(id: id, from) else {
            throw APIError(.notFound, "runbook \(id.debugDescription) has no version \(from)")
        }
        guard let new = try await store.version(id: id, toVersion) else {
            throw APIError(.notFound, "runbook \(id.debugDescription) has no version \(toVersion)")
        }
        return DiffBody(
            id: id,
            from: from,
            to: toVersion,
            diff: LineDiff.unified(old.source, new.source, oldName: "\(id) v\(from)", newName: "\(id) v\(toVersion)")
        )
    }
}
