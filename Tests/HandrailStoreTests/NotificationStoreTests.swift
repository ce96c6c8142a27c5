import Foundation
import HandrailCore
import Postgres
import TestSupport
import Testing

@testable import HandrailStore

/// ana (lead) and ben (responder) take weekly turns on ml-platform, which owns the drift
/// runbook; the rotation has a Slack channel and ana a signed webhook.
private func setUp(_ pool: PostgresPool) async throws -> (runbooks: [RunbookCandidate], integration: Integration, ana: User) {
    let users = UserStore(pool: pool)
    let ana = try await users.create(
        username: "ana",
        displayName: "Ana",
        email: nil,
        role: .lead,
        passwordHash: nil,
        mustChangePassword: false,
        by: .system
    )
    _ = try await users.create(
        username: "ben",
        displayName: "Ben",
        email: nil,
        role: .responder,
        passwordHash: nil,
        mustChangePassword: false,
        by: .system
    )
    let rotation = Rotation(
        name: "ml-platform",
        members: ["ana", "ben"],
        timeZone: "UTC",
        shiftLength: ShiftLength(days: 7)!,
        handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
        startDate: LocalDate("2025-01-06")!
    )
    _ = try await RotationStore(pool: pool).save(rotation, create: true, by: .system)
    let text = """
        ---
        id: drift
        title: Drift
        match: { alertname: FeatureDriftHigh }
        group_by: [alertname, model]
        owners: ml-platform
        ---
        # Drift

        ## Steps
        1. Look at the dashboard.
        2. Decide.
        """
    let runbook = try #require(RunbookParser.parse(text, path: "runbooks/drift.md").runbook)
    _ = try await RunbookStore(pool: pool).sync([("runbooks/drift.md", text, runbook)], by: "test")
    let store = NotificationStore(pool: pool)
    let channel = try await store.addChannel(
        rotation: "ml-platform",
        destination: try Destination(kind: .slack, address: "http://127.0.0.1:9/hooks/team"),
        label: "team",
        secret: nil
    )
    #expect(channel?.hint == "http://127.0.0.1:9/…team")
    _ = try await store.addContactMethod(
        username: "ana",
        destination: try Destination(kind: .webhook, address: "http://127.0.0.1:9/ana"),
        label: "phone",
        secret: StandardWebhook.newSecret(),
        codeHash: nil,
        code: nil
    )
    return ([RunbookCandidate(runbook: runbook, version: 1)], try await makeIntegration(pool), ana)
}

@Suite struct NotificationStoreTests {
    @Test func anOpenedIncidentWritesItsChannelMessageAndStartsItsChainInTheSameTransaction() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (runbooks, am, _) = try await setUp(pool)
            let store = NotificationStore(pool: pool)
            let number = try #require(try await deliver(IngestStore(pool: pool), am, [alert("f1")], runbooks: runbooks).openedIncidents.first)
            // The resend of the same alert is no event people hear about.
            _ = try await deliver(IngestStore(pool: pool), am, [alert("f1")], runbooks: runbooks)
            #expect(try await store.notifications(incident: 999_999) == nil, "no such incident")
            let written = try #require(try await store.notifications(incident: number))
            #expect(written.map(\.event) == [.opened])
            #expect(written.first?.recipient == "team" && written.first?.kind == .slack && written.first?.state == .pending)
            #expect(try await store.leads(rotation: "ml-platform") == ["ana"], "ben is a responder")
            let pending = try #require(try await store.pendingEscalation(incident: number))
            #expect(pending.position == 0 && pending.kind == .step && abs(pending.due.timeIntervalSinceNow) < 60)

            // The chain's first step: the on-call (no steps configured), reached on her webhook.
            let due = try await store.claimEscalations(limit: 10, lease: 60)
            #expect(due.map(\.incidentNumber) == [number] && due.first?.live == true)
            #expect(try await store.claimEscalations(limit: 10, lease: 60).isEmpty, "claimed rows are no one else's while leased")
            let step = try #require(due.first)
            let fired = try await store.settle([.fire(step, usernames: ["ana"], next: nil)])
            #expect(fired == [step.id])
            #expect(try await store.settle([.fire(step, usernames: ["ana"], next: nil)]).isEmpty, "a step fires once")
            #expect(try await store.pendingEscalation(incident: number) == nil)
            let all = (try await store.notifications(incident: number) ?? [])
            #expect(all.map(\.event) == [.opened, .escalation] && all.last?.recipient == "ana")

            // Delivering: claimed once, recorded with its attempt.
            let claimed = try await store.claimNotifications(limit: 10, lease: 60)
            #expect(Set(claimed.map(\.event)) == [.opened, .escalation])
            let hook = try #require(claimed.first { $0.kind == .webhook })
            #expect(hook.address == "http://127.0.0.1:9/ana" && hook.secret?.hasPrefix("whsec_") == true)
            #expect(try await store.claimNotifications(limit: 10, lease: 60).isEmpty)
            #expect(hook.facts?.title.isEmpty == false, "the incident's facts come with the claim")
            // A receiver's answer with a NUL byte (which PostgreSQL text cannot hold) is recorded without it.
            let ok = DeliveryAttempt(outcome: .delivered, status: 204, reply: "o\u{0}k", error: nil, latencyMS: 3, retryAt: nil)
            try await store.record(hook.id, payload: #"{"a":1}"#, attempt: ok)
            #expect(try await scalar(pool, "SELECT reply FROM notification_attempts", as: String.self) == "ok")
            let slack = try #require(claimed.first { $0.kind == .slack })
            #expect(slack.eventData["actor"] == "am", "the event's actor travels with the message")
            let later = DeliveryAttempt(
                outcome: .retry,
                status: 503,
                reply: "busy",
                error: "HTTP 503",
                latencyMS: 5,
                retryAt: Date().addingTimeInterval(3600)
            )
            try await store.record(slack.id, payload: #"{"text":"x"}"#, attempt: later)
            #expect(try await store.claimNotifications(limit: 10, lease: 60).isEmpty, "a retry waits for its time")
            let states = (try await store.notifications(incident: number) ?? []).map { "\($0.event.rawValue)=\($0.state.rawValue)/\($0.attempts)" }
            #expect(states == ["opened=pending/1", "escalation=delivered/1"])
            let attempts = try await scalar(pool, "SELECT count(*) FROM notification_attempts", as: Int.self)
            #expect(attempts == 2)
            await #expect(throws: PostgresError.self, "attempts are append-only") {
                _ = try await pool.execute("UPDATE notification_attempts SET outcome = 'delivered'")
            }
        }
    }

    /// A storm's first steps are settled as one batch: each row fires or ends once, fired
    /// rows reach each named person's verified contact methods and schedule their next step,
    /// and a row settled already (by another worker) does not fire again.
    @Test func aBatchOfDueStepsIsSettledOnceEachInOneStatement() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (runbooks, am, _) = try await setUp(pool)
            let store = NotificationStore(pool: pool)
            let ingest = IngestStore(pool: pool)
            var numbers: [Int64] = []
            for model in ["a", "b", "c"] {
                numbers.append(
                    try #require(try await deliver(ingest, am, [alert("f-\(model)", model: model)], runbooks: runbooks).openedIncidents.first)
                )
            }
            let due = try await store.claimEscalations(limit: 10, lease: 60).sorted { $0.incidentNumber < $1.incidentNumber }
            #expect(due.map(\.incidentNumber) == numbers)
            _ = try await store.settle([.fire(due[2], usernames: ["ana"], next: nil)])  // settled before the batch
            let next = Date().addingTimeInterval(600)
            let fired = try await store.settle([
                .fire(due[0], usernames: ["ana", "ben"], next: (position: 1, due: next)),
                .cancel(due[1]),
                .fire(due[2], usernames: ["ana"], next: nil),
            ])
            #expect(fired == [due[0].id])
            // ana has a verified webhook; ben has no contact method: one message, to ana.
            #expect((try await store.notifications(incident: numbers[0]) ?? []).filter { $0.event == .escalation }.map(\.recipient) == ["ana"])
            #expect((try await store.notifications(incident: numbers[1]) ?? []).filter { $0.event == .escalation }.isEmpty)
            #expect((try await store.notifications(incident: numbers[2]) ?? []).filter { $0.event == .escalation }.count == 1, "fired once")
            let following = try #require(try await store.pendingEscalation(incident: numbers[0]))
            #expect(following.position == 1 && abs(following.due.timeIntervalSince(next)) < 1)
            #expect(try await store.pendingEscalation(incident: numbers[1]) == nil)
            let states: [String] = try await pool.query("SELECT state FROM escalations WHERE id IN (\(due[0].id), \(due[1].id)) ORDER BY id").map {
                try $0.decode("state")
            }
            #expect(states == ["done", "cancelled"])
            let notified: [String] = try await scalar(pool, "SELECT notified FROM escalations WHERE id = \(due[0].id)")
            #expect(notified == ["ana", "ben"])
            #expect(try await store.settle([]).isEmpty)
        }
    }

    @Test func acknowledgingStopsTheChainAndReopeningStartsItAgain() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let (runbooks, am, ana) = try await setUp(pool)
            let store = NotificationStore(pool: pool)
            let policy = EscalationPolicy(
                steps: [EscalationStep(delaySeconds: 0, target: .onCall), EscalationStep(delaySeconds: 600, target: .user, user: "ben")],
                renotifySeconds: nil
            )
            #expect(try await store.setEscalation(rotation: "ml-platform", policy) == policy)
            #expect(try await store.escalation(rotation: "ml-platform") == policy)
            await #expect(throws: ValidationError.self) {
                _ = try await store.setEscalation(
                    rotation: "ml-platform",
                    EscalationPolicy(steps: [.init(delaySeconds: 60, target: .user, user: "nobody")], renotifySeconds: nil)
                )
            }
            #expect(try await store.escalation(rotation: "ml-platform") == policy, "a refused policy leaves the old one")

            let ingest = IngestStore(pool: pool)
            let number = try #require(try await deliver(ingest, am, [alert("f1")], runbooks: runbooks).openedIncidents.first)
            let first = try #require(try await store.claimEscalations(limit: 10, lease: 60).first)
            let opened = try #require(try await store.pendingEscalation(incident: number))
            _ = try await store.settle([.fire(first, usernames: ["ana"], next: (position: 1, due: first.chainStartedAt.addingTimeInterval(600)))])
            let second = try #require(try await store.pendingEscalation(incident: number))
            #expect(second.position == 1 && abs(second.due.timeIntervalSince(opened.due) - 600) < 1)

            _ = try await IncidentStore(pool: pool).transition(number: number, .acknowledge, note: nil, by: .user(id: ana.id, username: "ana"))
            #expect(try await store.pendingEscalation(incident: number) == nil, "acknowledged: ben is not paged")
            #expect((try await store.notifications(incident: number) ?? []).map(\.event) == [.opened, .escalation, .acknowledged])

            // Resolved, then firing again within the reopen window: the chain starts over.
            _ = try await IncidentStore(pool: pool).transition(number: number, .resolve, note: nil, by: .user(id: ana.id, username: "ana"))
            _ = try await deliver(ingest, am, [alert("f1", .resolved)], runbooks: runbooks)
            _ = try await deliver(ingest, am, [alert("f1")], runbooks: runbooks)
            let again = try #require(try await store.pendingEscalation(incident: number))
            #expect(again.position == 0)
            #expect((try await store.notifications(incident: number) ?? []).map(\.event).suffix(2) == [.resolved, .reopened])
        }
    }

    @Test func concurrentWorkersNeverClaimTheSameNotification() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            _ = try await setUp(pool)
            let store = NotificationStore(pool: pool)
            let method = try #require(try await store.contactMethods(username: "ana").first)
            for _ in 0..<120 { _ = try await store.testContactMethod(username: "ana", id: method.id) }
            let claims = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var mine: [Int64] = []
                        while true {
                            let batch = try await store.claimNotifications(limit: 7, lease: 60)
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.id)
                        }
                    }
                }
                var all: [[Int64]] = []
                for try await ids in group { all.append(ids) }
                return all
            }
            let ids = claims.flatMap { $0 }
            #expect(ids.count == 120 && Set(ids).count == 120, "every row claimed exactly once across four workers")
        }
    }

    @Test func anEmailAddressIsUsedOnlyOnceItsCodeIsConfirmed() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            _ = try await setUp(pool)
            let store = NotificationStore(pool: pool)
            let added = try #require(
                try await store.addContactMethod(
                    username: "ben",
                    destination: try Destination(kind: .email, address: "ben@example.com"),
                    label: "work",
                    secret: nil,
                    codeHash: Secrets.hash("123456"),
                    code: "123456"
                )
            )
            #expect(!added.verified)
            let code = try #require(try await store.claimNotifications(limit: 10, lease: 60).first)
            #expect(code.event == .verify && code.detail["code"] == "123456" && code.address == "ben@example.com")
            #expect(try await store.testContactMethod(username: "ben", id: added.id) == nil, "no test before the code")
            #expect(try await store.verifyContactMethod(username: "ben", id: added.id, codeHash: Secrets.hash("000000")) == .wrongCode)
            #expect(try await store.verifyContactMethod(username: "ana", id: added.id, codeHash: Secrets.hash("123456")) == .notFound)
            #expect(try await store.verifyContactMethod(username: "ben", id: added.id, codeHash: Secrets.hash("123456")) == .verified)
            #expect(try await store.contactMethods(username: "ben").first?.verified == true)
            #expect(try await store.testContactMethod(username: "ben", id: added.id) != nil)
            #expect(try await store.removeContactMethod(username: "ana", id: added.id) == false, "only its owner's")
            #expect(try await store.removeContactMethod(username: "ben", id: added.id))

            // Five wrong codes end the code: the right one no longer works.
            let guessed = try #require(
                try await store.addContactMethod(
                    username: "ben",
                    destination: try Destination(kind: .email, address: "ben@example.org"),
                    label: "home",
                    secret: nil,
                    codeHash: Secrets.hash("654321"),
                    code: "654321"
                )
            )
            for n in 0..<5 {
                #expect(try await store.verifyContactMethod(username: "ben", id: guessed.id, codeHash: Secrets.hash("00000\(n)")) == .wrongCode)
            }
            #expect(try await store.verifyContactMethod(username: "ben", id: guessed.id, codeHash: Secrets.hash("654321")) == .expired)
        }
    }
}

@Suite struct EscalationTargetTests {
    @Test func eachStepReachesItsPeopleAtTheTimeItFires() throws {
        // ana, ben, cho weekly from Monday 2026-01-05 09:00 UTC; ben covers one afternoon.
        let at = { (text: String) in RFC3339.parse(text)! }
        let rotation = Rotation(
            name: "ml-platform",
            members: ["ana", "ben", "cho"],
            timeZone: "UTC",
            shiftLength: ShiftLength(days: 7)!,
            handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
            startDate: LocalDate("2026-01-05")!,
            overrides: [RotationOverride(id: 1, user: "ben", start: at("2026-01-07T12:00:00Z"), end: at("2026-01-07T18:00:00Z"), reason: nil)]
        )
        let tuesday = at("2026-01-06T10:00:00Z")
        #expect(EscalationStep(delaySeconds: 0, target: .onCall).people(rotation, at: tuesday, leads: []) == ["ana"])
        #expect(
            EscalationStep(delaySeconds: 0, target: .onCall).people(rotation, at: at("2026-01-07T13:00:00Z"), leads: []) == ["ben"],
            "the override"
        )
        #expect(EscalationStep(delaySeconds: 0, target: .next).people(rotation, at: tuesday, leads: []) == ["ben"])
        #expect(EscalationStep(delaySeconds: 0, target: .next).people(rotation, at: at("2026-01-20T10:00:00Z"), leads: []) == ["ana"], "wraps around")
        #expect(
            EscalationStep(delaySeconds: 0, target: .next).people(rotation, at: at("2026-01-01T00:00:00Z"), leads: []) == ["ana"],
            "before the first shift"
        )
        #expect(EscalationStep(delaySeconds: 0, target: .user, user: "lena").people(rotation, at: tuesday, leads: []) == ["lena"])
        #expect(EscalationStep(delaySeconds: 0, target: .leads).people(rotation, at: tuesday, leads: ["cho", "ana"]) == ["cho", "ana"])
    }
}
