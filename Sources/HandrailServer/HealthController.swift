import Foundation
import HandrailCore
import HandrailStore
import Hummingbird
import Logging
import Metrics
import Postgres
import Prometheus

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.yaml`: what load balancers, Prometheus
/// and API clients ask for.
struct HealthController {
    let database: HandrailDatabase
    let migrator: Migrator
    let registry: PrometheusCollectorRegistry
    let openAPIFile: URL
    /// Who may read `/metrics` (configurable; default loopback, or viewers and up).
    let metricsAccess: Access
    let logger: Logger

    func addRoutes(to routes: Routes) {
        routes.on(.get, "/healthz", .everyone) { _, _ in
            Self.json(.ok, ["status": "ok"])
        }
        routes.on(.get, "/readyz", .everyone) { _, _ in
            await ready()
        }
        routes.on(.get, "/metrics", metricsAccess) { _, _ in
            // Open incidents are counted when scraped, so every replica reports the truth.
            do {
                let open = try await IncidentStore(pool: database.pool).openCount()
                Gauge(label: "handrail_open_incidents", factory: PrometheusMetricsFactory(registry: registry)).record(open)
            } catch {
                logger.warning("cannot count open incidents for /metrics", metadata: ["error": "\(error)"])
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: registry.emitToString()))
            )
        }
        routes.on(.get, "/openapi.yaml", .everyone) { _, _ in
            guard let data = FileManager.default.contents(atPath: openAPIFile.path) else {
                throw APIError(.notFound, "no OpenAPI document is installed")
            }
            return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// 200 only when the database answers and every migration is applied and unchanged.
    func ready() async -> Response {
        do {
            let status = try await migrator.status(database.pool)
            if !status.isCurrent {
                return Self.json(
                    .serviceUnavailable,
                    ["status": "unavailable", "reason": "database migrations are not current; run `handrail migrate`"]
                )
            }
            return Self.json(.ok, ["status": "ready"])
        } catch {
            logger.warning("readiness check failed", metadata: ["error": "\(String(reflecting: error))"])
            return Self.json(.serviceUnavailable, ["status": "unavailable", "reason": "the database does not answer"])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: String]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(body)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
