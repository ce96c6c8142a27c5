import Foundation
import HandrailCore
import HandrailStore
import Logging
import Postgres
import TestSupport
import Testing

/// The live-update feed the pages' server-sent events read: one LISTEN connection, every
/// change fanned out to every subscriber, gone when nobody listens.
@Suite struct IncidentFeedTests {
    /// Waits until the feed hears notifications (its connection LISTENs asynchronously).
    static func waitUntilListening(_ pool: PostgresPool, _ stream: inout AsyncStream<Int64>.AsyncIterator) async throws {
        let probe = Task {
            while !Task.isCancelled {
                try await pool.notify(channel: IncidentFeed.channel, payload: "-1")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { probe.cancel() }
        while let id = await stream.next() { if id == -1 { return } }
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
            #expect(await Self.next(notProbe: &first) == id)
            #expect(await Self.next(notProbe: &second) == id)
            // A note is a change as well.
            let number = try await pool.query("SELECT number FROM incidents").first!.decode("number", as: Int64.self)
            #expect(try await IncidentStore(pool: pool).addNote(number: number, text: "looking", by: .integration(am)))
            #expect(await Self.next(notProbe: &first) == id)
        }
    }

    static func next(notProbe stream: inout AsyncStream<Int64>.AsyncIterator) async -> Int64? {
        while let id = await stream.next() { if id != -1 { return id } }
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
}
