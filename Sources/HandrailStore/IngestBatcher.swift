import HandrailCore
import Postgres
import Synchronization

/// Runs the full ingestion path (SQL/ingest.sql) for deliveries of one integration that
/// arrive while earlier ones are still being written, several in one transaction.
///
/// Each execution of the ingest statement has a fixed cost (starting its plan, its triggers'
/// and foreign keys' statements, the commit) that is most of what one new incident costs:
/// in pgbench on this 2-core machine, one delivery of 10 new alerts per transaction did
/// 775 transactions/s; four such deliveries per transaction, 460/s, i.e. 1,840 new incidents/s.
/// So nothing waits to be batched: a delivery that finds fewer than `maxRunning` batches of
/// its integration running is written at once, alone; the ones that arrive meanwhile are
/// written together by the next batch. A quiet system writes every delivery alone, as before.
///
/// Two deliveries sharing a fingerprint or a grouping key never share a batch (the
/// statement's upsert may touch a row once, and each incident's opening or joining is told
/// to the delivery that caused it); such a delivery waits for the next batch.
/// Each caller's report is exactly what it would have been alone. A batch that fails for
/// a reason `Retry` would not retry is written again one delivery at a time, so one bad
/// delivery fails alone; other failures (a deadlock, a restart) go to every caller in the
/// batch, whose own `Retry` tries again.
final class IngestBatcher: Sendable {
    /// One delivery on the full path, routed (owners are assigned as its batch is written).
    struct Job: Sendable {
        var delivery: Delivery
        var alerts: [RoutedAlert]
    }

    private struct Waiting {
        var job: Job
        var fingerprints: Set<String>
        var keys: Set<String>
        var continuation: CheckedContinuation<IngestReport, any Error>
    }

    private struct Lane {
        var waiting: [Waiting] = []
        var running = 0
    }

    /// Batches of one integration written at once (each takes a connection).
    let maxRunning: Int
    /// The most deliveries, and alerts, one batch writes. Eight, not sixteen: a batch's
    /// deliveries all wait for its slowest part, and 16 senders fill two batches of 8
    /// (`script/bench storm`, 3 alternating runs: 882-986 new incidents/s against 803-932).
    let maxDeliveries: Int
    let maxAlerts: Int
    private let lanes = Mutex<[LaneKey: Lane]>([:])
    private let write: @Sendable ([Job]) async throws -> [IngestReport]

    private struct LaneKey: Hashable {
        var integration: Int
        var source: IntegrationKind
    }

    /// - Parameter write: writes a batch in one transaction and returns each job's report,
    ///   in the jobs' order.
    init(
        maxRunning: Int = 2,
        maxDeliveries: Int = 8,
        maxAlerts: Int = 2000,
        write: @escaping @Sendable ([Job]) async throws -> [IngestReport]
    ) {
        self.maxRunning = maxRunning
        self.maxDeliveries = maxDeliveries
        self.maxAlerts = maxAlerts
        self.write = write
    }

    /// Writes `job` (alone or with others of its integration) and returns its report.
    func submit(_ job: Job) async throws -> IngestReport {
        let key = LaneKey(integration: job.delivery.integration.id, source: job.delivery.source)
        return try await withCheckedThrowingContinuation { continuation in
            let waiting = Waiting(
                job: job,
                fingerprints: Set(job.alerts.map(\.alert.fingerprint)),
                keys: Set(job.alerts.map(\.groupingKey)),
                continuation: continuation
            )
            let start = lanes.withLock { lanes -> Bool in
                var lane = lanes[key] ?? Lane()
                lane.waiting.append(waiting)
                let start = lane.running < maxRunning
                if start { lane.running += 1 }
                lanes[key] = lane
                return start
            }
            if start { Task { await self.drain(key) } }
        }
    }

    /// Writes batches of the lane until nobody waits in it.
    private func drain(_ key: LaneKey) async {
        while true {
            let batch = lanes.withLock { lanes -> [Waiting] in
                var lane = lanes[key, default: Lane()]
                let batch = Self.take(&lane.waiting, maxDeliveries: maxDeliveries, maxAlerts: maxAlerts)
                if batch.isEmpty { lane.running -= 1 }
                lanes[key] = lane.waiting.isEmpty && lane.running == 0 ? nil : lane
                return batch
            }
            if batch.isEmpty { return }
            await run(batch)
        }
    }

    /// The first waiting delivery, and after it those that share no fingerprint or grouping
    /// key with the ones taken, within the limits; the rest keep their places.
    private static func take(_ waiting: inout [Waiting], maxDeliveries: Int, maxAlerts: Int) -> [Waiting] {
        var batch: [Waiting] = []
        var fingerprints: Set<String> = []
        var keys: Set<String> = []
        var alerts = 0
        var rest: [Waiting] = []
        for w in waiting {
            let fits =
                batch.isEmpty
                || (batch.count < maxDeliveries && alerts + w.job.alerts.count <= maxAlerts
                    && fingerprints.isDisjoint(with: w.fingerprints) && keys.isDisjoint(with: w.keys))
            if fits {
                batch.append(w)
                fingerprints.formUnion(w.fingerprints)
                keys.formUnion(w.keys)
                alerts += w.job.alerts.count
            } else {
                rest.append(w)
            }
        }
        waiting = rest
        return batch
    }

    private func run(_ batch: [Waiting]) async {
        do {
            let answers = try await write(batch.map(\.job))
            guard answers.count == batch.count else {
                throw PostgresError(kind: .server, message: "a batch of \(batch.count) deliveries was answered for \(answers.count)")
            }
            for (w, answer) in zip(batch, answers) { w.continuation.resume(returning: answer) }
        } catch let error as PostgresError where batch.count > 1 && Retry.reason(error) == nil {
            // One delivery may be what failed: each alone, so only that one fails.
            for w in batch {
                do {
                    w.continuation.resume(returning: try await write([w.job])[0])
                } catch {
                    w.continuation.resume(throwing: error)
                }
            }
        } catch {
            for w in batch { w.continuation.resume(throwing: error) }
        }
    }
}
