import Foundation
public import Logging
public import Postgres
import Synchronization

/// Live incident changes for the pages (server-sent events): one dedicated connection
/// LISTENs to the channel every incident change is NOTIFYed on and fans each change out to
/// the subscribers of this process. Since the change comes from PostgreSQL, a change made
/// through any replica reaches the pages served by every replica.
///
/// The connection opens with the first subscriber and closes after the last one leaves;
/// when it breaks, it reconnects and tells every subscriber "something may have changed"
/// (id 0), since changes made meanwhile were not heard.
public final class IncidentFeed: Sendable {
    /// The channel every store that changes an incident announces it on, in the same
    /// statement (payload: the incident id).
    public static let channel = "handrail_incidents"
    private let conninfo: String
    private let logger: Logger

    /// What changed since a stream's reader last looked: incident ids, or "anything"
    /// (the feed missed a stretch, or more changed than a page would refresh row by row).
    public struct Changes: Sendable, Equatable {
        public var ids: Set<Int64> = []
        /// Anything may have changed: a page reloads whole.
        public var everything = false
        /// Beyond this many ids a page reloads whole instead of fetching each row.
        public static let maxIDs = 100

        public init(ids: Set<Int64> = [], everything: Bool = false) {
            self.ids = ids
            self.everything = everything
        }

        public var isEmpty: Bool { ids.isEmpty && !everything }

        /// Adds incident `id` (0: anything).
        public mutating func add(_ id: Int64) {
            guard !everything else { return }
            if id == 0 || (ids.count >= Self.maxIDs && !ids.contains(id)) {
                everything = true
                ids = []
            } else {
                ids.insert(id)
            }
        }
    }

    /// One open page's stream: each element is everything that changed since the reader last
    /// took one (changes while the reader waits add up into the next element; nothing is lost).
    public struct Subscription: AsyncSequence, Sendable {
        let feed: IncidentFeed
        let id: Int
        let signals: AsyncStream<Void>

        public struct AsyncIterator: AsyncIteratorProtocol {
            let feed: IncidentFeed
            let id: Int
            var signals: AsyncStream<Void>.AsyncIterator

            public mutating func next() async -> Changes? { await next(notBefore: nil) }

            /// The next changes, taken no earlier than `notBefore` and a random part of
            /// `spread` after the first of them arrived: changes until then are part of it (a
            /// debounced page gets one element for all of them; pages that heard the same change
            /// do not all act at once).
            public mutating func next(notBefore: ContinuousClock.Instant?, spread: Duration = .zero) async -> Changes? {
                while await signals.next() != nil {
                    var until = ContinuousClock.now + spread * Double.random(in: 0..<1)
                    if let notBefore, notBefore > until { until = notBefore }
                    if ContinuousClock.now < until { try? await Task.sleep(until: until) }
                    let changes = feed.take(id)
                    if !changes.isEmpty { return changes }
                }
                return nil
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(feed: feed, id: id, signals: signals.makeAsyncIterator())
        }
    }

    private struct Subscriber {
        var continuation: AsyncStream<Void>.Continuation
        /// The one incident it follows (nil: every incident).
        var incident: Int64?
        var pending = Changes()
    }

    private struct State {
        var subscribers: [Int: Subscriber] = [:]
        var next = 0
        var listener: Task<Void, Never>?
        /// Whether the connection LISTENs now, and who waits for it to.
        var listening = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// Which listener task is the current one (an old one may still be winding down).
        var generation = 0
    }
    private let state = Mutex(State())

    public init(pool: PostgresPool, logger: Logger) {
        self.conninfo = pool.conninfo
        self.logger = logger
    }

    /// Incident changes as they happen, for at most `lifetime`; then the stream ends (the
    /// browser's EventSource reconnects by itself). With `incident`, only that incident's
    /// changes (and "anything").
    public func subscribe(for lifetime: Duration, incident: Int64? = nil) -> Subscription {
        subscribe(for: lifetime, incident: incident, limit: .max)
            ?? Subscription(feed: self, id: 0, signals: AsyncStream { $0.finish() })
    }

    /// As `subscribe(for:incident:)`, or nil when `limit` streams are open already (checked
    /// and counted at once, so concurrent subscribers never pass the limit together).
    public func subscribe(for lifetime: Duration, incident: Int64?, limit: Int) -> Subscription? {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { s -> Int? in
            guard s.subscribers.count < limit else { return nil }
            s.next += 1
            s.subscribers[s.next] = Subscriber(continuation: continuation, incident: incident)
            if s.listener == nil {
                s.generation += 1
                let generation = s.generation
                s.listener = Task { [self] in await listen(generation) }
            }
            return s.next
        }
        guard let id else {
            continuation.finish()
            return nil
        }
        let timer = Task {
            try? await Task.sleep(for: lifetime)
            continuation.finish()
        }
        continuation.onTermination = { [self] _ in
            timer.cancel()
            let idle = state.withLock { s -> Task<Void, Never>? in
                s.subscribers[id] = nil
                guard s.subscribers.isEmpty, let listener = s.listener else { return nil }
                s.listener = nil
                s.listening = false  // the next listener says when it listens
                return listener
            }
            idle?.cancel()
        }
        return Subscription(feed: self, id: id, signals: stream)
    }

    /// The changes subscriber `id` has not taken yet, and none after.
    private func take(_ id: Int) -> Changes {
        state.withLock { s in
            defer { s.subscribers[id]?.pending = Changes() }
            return s.subscribers[id]?.pending ?? Changes()
        }
    }

    /// Returns once the feed's connection LISTENs (a change committed from then on reaches
    /// every subscriber), or after `timeout` when it cannot (the database is away; the
    /// feed says "changed" when it is back). Call after `subscribe`.
    public func listening(timeout: Duration = .seconds(3)) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            wakeWaiters()
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.listening { return true }
                s.waiting.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Wakes whoever waits in `listening`; `generation`: the listener that now listens.
    private func wakeWaiters(listening generation: Int? = nil) {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            if let generation {
                guard generation == s.generation else { return [] }
                s.listening = true
            }
            defer { s.waiting.removeAll() }
            return s.waiting
        }
        for item in waiting { item.resume() }
    }

    private func stoppedListening(_ generation: Int) {
        state.withLock { s in if s.generation == generation { s.listening = false } }
    }

    /// Ends every open stream now (the server is shutting down: pages reconnect elsewhere).
    public func endAll() {
        for s in state.withLock({ Array($0.subscribers.values) }) { s.continuation.finish() }
    }

    /// How many pages listen now (tests).
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Adds `id` (0: anything) to what each subscriber that follows it has not taken yet.
    func broadcast(_ id: Int64) {
        let woken = state.withLock { s -> [AsyncStream<Void>.Continuation] in
            var woken: [AsyncStream<Void>.Continuation] = []
            for i in s.subscribers.values.indices {
                let incident = s.subscribers.values[i].incident
                guard incident == nil || incident == id || id == 0 else { continue }
                s.subscribers.values[i].pending.add(id)
                woken.append(s.subscribers.values[i].continuation)
            }
            return woken
        }
        for c in woken { c.yield() }
    }

    private func listen(_ generation: Int) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(conninfo, applicationName: "handrail-live")
                defer { connection.close() }
                try await connection.listen(IncidentFeed.channel)
                wakeWaiters(listening: generation)
                if failures > 0 { broadcast(0) }
                failures = 0
                for try await note in connection.notifications() {
                    // One id, or several separated by commas (IncidentAnnouncer).
                    for part in note.payload.split(separator: ",") { if let id = Int64(part) { broadcast(id) } }
                }
                stoppedListening(generation)
            } catch {
                stoppedListening(generation)
                if Task.isCancelled { return }
                failures += 1
                if failures == 1 { logger.warning("live updates: listening failed; retrying", metadata: ["error": "\(error)"]) }
            }
            try? await Task.sleep(for: .seconds(min(5, failures)))
        }
    }
}

/// Announces incident changes on `IncidentFeed.channel` after the writer's commit, for the
/// write that happens in storms (ingestion): NOTIFY inside a transaction takes PostgreSQL's
/// one lock for queueing notifications and holds it through the commit's WAL flush, so every
/// delivery that opened an incident committed one after another. (`script/bench storm`:
/// 264 new incidents/s with NOTIFY in the ingest transaction, 356/s without it.) Ids arriving
/// while one announcement is on its way go out together in the next, from a transaction that
/// does not wait for its WAL flush (a lost "changed" costs a page one refresh, nothing stored).
/// Other writes, one person's action each, announce in their own statement.
public final class IncidentAnnouncer: Sendable {
    private let pool: PostgresPool
    private let logger: Logger
    private struct State {
        var pending: Set<Int64> = []
        var sending = false
    }
    private let state = Mutex(State())

    public init(pool: PostgresPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// Queues `ids` and returns at once.
    public func announce(_ ids: [Int64]) {
        guard !ids.isEmpty else { return }
        let start = state.withLock { s -> Bool in
            s.pending.formUnion(ids)
            guard !s.sending else { return false }
            s.sending = true
            return true
        }
        if start { Task { await send() } }
    }

    private func send() async {
        while true {
            let ids = state.withLock { s -> [Int64] in
                let ids = s.pending.sorted()
                s.pending.removeAll()
                if ids.isEmpty { s.sending = false }
                return ids
            }
            if ids.isEmpty { return }
            // A NOTIFY payload holds at most 8,000 bytes: 400 ids of up to 19 digits each.
            let payloads = stride(from: 0, to: ids.count, by: 400).map { ids[$0..<min($0 + 400, ids.count)].map(String.init).joined(separator: ",") }
            do {
                try await pool.withTransaction { tx in
                    try await tx.execute("SET LOCAL synchronous_commit TO off")
                    try await tx.execute("SELECT pg_notify(\(IncidentFeed.channel), p) FROM unnest(\(payloads)::text[]) p")
                }
            } catch {
                logger.debug("live updates: announcing changes failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
