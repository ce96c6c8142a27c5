import Foundation
import Hummingbird
import Metrics
import Synchronization

/// Request counts and latencies per route, method and status, through swift-metrics with
/// an explicit factory (so each application, and each test, has its own registry).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory
    private let cache = Cache()

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, route: context.endpointPath ?? "unmatched", status: response.status.code, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(request, route: context.endpointPath ?? "unmatched", status: status, since: start)
            throw error
        }
    }

    private func record(_ request: Request, route: String, status: Int, since start: ContinuousClock.Instant) {
        let key = Key(route: route, method: request.method.rawValue, status: status)
        let metrics = cache.metrics(for: key, factory: factory)
        metrics.requests.increment()
        metrics.duration.recordInterval(start.duration(to: .now))
    }

    struct Key: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    struct Entry: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
    }

    final class Cache: Sendable {
        private let entries = Mutex<[Key: Entry]>([:])

        func metrics(for key: Key, factory: any MetricsFactory) -> Entry {
            entries.withLock { entries in
                if let entry = entries[key] { return entry }
                let dimensions = [("route", key.route), ("method", key.method), ("status", String(key.status))]
                let entry = Entry(
                    requests: Counter(label: "handrail_http_requests_total", dimensions: dimensions, factory: factory),
                    duration: Metrics.Timer(
                        label: "handrail_http_request_duration_seconds",
                        dimensions: dimensions,
                        preferredDisplayUnit: .seconds,
                        factory: factory
                    )
                )
                entries[key] = entry
                return entry
            }
        }
    }
}

extension Metrics.Timer {
    func recordInterval(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
