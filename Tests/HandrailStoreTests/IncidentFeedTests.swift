import Foundation
import HandrailCore
import Logging
import Postgres
import TestSupport
import Testing

@testable import HandrailStore

/// The live-update feed the pages' server-sent events read: one LISTEN connection, every
/// change fanned out to every subscriber, gone when nobody listens.
@Suite struct IncidentFeedTests {
    /// Waits until the feed hears notifications (its connection LISTENs asynchronously).
    static func waitUntilListening(_ pool: PostgresPool, _ stream: inout IncidentFeed.Subscription.AsyncIterator) async throws {
        let probe = Task {
            while !Task.isCancelled {
                try await pool.notify(channel: IncidentFeed.channel, payload: "-1")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { probe.cancel() }
        while let changes = await stream.next() { if changes.ids.contains(-1) { return } }
        Issue.record("the stream ended before the feed listened")
    }

    @Test(.timeLimit(.minutes(1))) func everySubscriberHearsEachChangeOfAnyIncident() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let feed = IncidentFeed(pool: pool, logger: Logger(label: "test"))
            var first = feed.subscribe(for: .seconds(30)).makeAsyncIterator()
            var second = feed.subscribe(for: .seconds(30)).makeAsyncIterator()
            #expect(feed.subscriberCount == 2)
            try await Self.waitUntilListening(pool, &first)
            let am = try await makeIntegration(pool)
            _ = try await deliver(IngestStore(pool: pool), am, [alert("f1")], runbooks: [])
            let id = try await pool.query("SELECT id FROM incidents").first!.decode("id", as: Int64.self)
            // Both pages hear the new incident (the probes of the wait came before it).
            #expect(await Self.next(notProbe: &first) == [id])
            #expect(await Self.next(notProbe: &second) == [id])
            // A note is a change as well.
            let number = try await pool.query("SELECT number FROM incidents").first!.decode("number", as: Int64.self)
            #expect(try await IncidentStore(pool: pool).addNote(number: number, text: "looking", by: .integration(am)))
            #expect(await Self.next(notProbe: &first) == [id])
        }
    }

    /// The next incident ids changed, the wait's probes left out.
    static func next(notProbe stream: inout IncidentFeed.Subscription.AsyncIterator) async -> Set<Int64>? {
        while let changes = await stream.next() {
            let ids = changes.ids.subtracting([-1])
            if !ids.isEmpty { return ids }
        }
        return nil
    }

    @Test func aStreamEndsAfterItsLifetimeAndTheFeedForgetsIt() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let feed = IncidentFeed(pool: pool, logger: Logger(label: "test"))
            let started = ContinuousClock.now
            for await _ in feed.subscribe(for: .milliseconds(300)) {}
            #expect(ContinuousClock.now - started >= .milliseconds(300))
            #expect(feed.subscriberCount == 0)
        }
    }

    @Test func aReplicaServesAtMostItsLimitOfStreamsAndAnIncidentsStreamHearsOnlyIt() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let feed = IncidentFeed(pool: pool, logger: Logger(label: "test"))
            let first = feed.subscribe(for: .milliseconds(200), incident: 7, limit: 1)
            #expect(first != nil)
            #expect(feed.subscribe(for: .seconds(30), incident: nil, limit: 1) == nil, "the limit is reached")
            #expect(feed.subscriberCount == 1)
            for await _ in first! {}
            #expect(feed.subscriberCount == 0)
            let again = feed.subscribe(for: .seconds(30), incident: 7, limit: 1)
            #expect(again != nil, "a closed stream frees its place")
            // Only incident 7's changes (and "anything", 0) reach its stream.
            feed.broadcast(8)
            feed.broadcast(7)
            var it = again!.makeAsyncIterator()
            #expect(await it.next() == IncidentFeed.Changes(ids: [7]), "8 never arrives")
            feed.broadcast(0)
            #expect(await it.next() == IncidentFeed.Changes(everything: true))
        }
    }

    /// A page that is slow to read its stream misses nothing: what changed meanwhile is one
    /// element naming every incident, or "anything" once that is more than a page refreshes
    /// row by row.
    @Test func changesWhileAReaderWaitsAddUpAndManyBecomeEverything() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let feed = IncidentFeed(pool: pool, logger: Logger(label: "test"))
            var it = feed.subscribe(for: .seconds(30)).makeAsyncIterator()
            for id in [3, 1, 2, 3] as [Int64] { feed.broadcast(id) }
            #expect(await it.next() == IncidentFeed.Changes(ids: [1, 2, 3]))
            feed.broadcast(4)
            #expect(await it.next() == IncidentFeed.Changes(ids: [4]), "what was taken is not sent again")
            for id in 1...Int64(IncidentFeed.Changes.maxIDs) { feed.broadcast(id) }
            #expect(await it.next() == IncidentFeed.Changes(ids: Set(1...Int64(IncidentFeed.Changes.maxIDs))))
            for id in 1...Int64(IncidentFeed.Changes.maxIDs + 1) { feed.broadcast(id) }
            #expect(await it.next() == IncidentFeed.Changes(everything: true))
        }
    }
}
