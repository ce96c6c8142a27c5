import AsyncHTTPClient
import Foundation
public import HandrailCore
import HandrailStore
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// What reaching people needs to know, from the environment (`handrail serve`).
public struct NotificationSettings: Sendable {
    /// `HANDRAIL_SENDMAIL`: the sendmail program; `-t -i` are added.
    public var sendmail: String = "/usr/sbin/sendmail"
    /// `HANDRAIL_MAIL_FROM`.
    public var mailFrom: String = "Handrail <handrail@localhost>"
    /// `HANDRAIL_WEBHOOK_ALLOW`: ranges webhooks may reach although they are private, loopback, ….
    public var webhookAllow: [AddressRange] = []
    /// A notification still undelivered this long after it was written has failed.
    public var maxAge: Double = 24 * 3600
    /// How often an idle worker looks for due rows.
    public var poll: Duration = .milliseconds(500)
    /// Deliveries in flight per replica: enough that a few destinations answering slowly (or
    /// not, until the timeout) do not hold up everyone else's.
    public var concurrency = 16
    /// Deliveries started per second per replica, at most (`HANDRAIL_NOTIFY_RATE`). A
    /// 1,000-incident storm's 2,000 notifications on 2 cores (script/bench notifications,
    /// 10 s windows): unpaced, they drained at most 4.8 s after the last opening while resends
    /// kept a median 88 % of their rate alone (3 rounds: 81–95 %); paced at 100/s, at most
    /// 20.4 s and a median 91 % (11 rounds over 3 runs: 81–105 %). The targets: 30 s, 90 %.
    public var rate = 100
    /// One attempt's limit (`HANDRAIL_NOTIFY_TIMEOUT`, seconds).
    public var timeout: Duration = .seconds(10)
    /// How long a claimed row stays with its worker: longer than an attempt can take, so only
    /// a worker that died loses its rows to another (which sends them again, same id).
    public var leaseSeconds: Int { Int(timeout / .seconds(1)) * 3 + 5 }

    public init() {}
}

/// The workers every replica runs: deliver due notifications, fire due escalation steps.
/// Rows are claimed with FOR UPDATE SKIP LOCKED and a lease, so across replicas each is
/// handled once, and once more only if its worker died mid-delivery (same webhook-id).
struct NotificationService: Service {
    let store: NotificationStore
    let composer: MessageComposer
    let rotations: RotationStore
    let handoffs: HandoffStore
    let renderer: DocumentRenderer
    let settings: NotificationSettings
    let metrics: NotificationMetrics
    let logger: Logger

    /// The HTTP client lives while the service runs: no redirects, the attempt's timeout.
    func run() async throws {
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .seconds(5), read: .seconds(Int64(settings.timeout / .seconds(1)))),
                decompression: .disabled
            )
        )
        let courier = Courier(
            http: http,
            outbound: OutboundGuard(allow: settings.webhookAllow),
            sendmail: [settings.sendmail, "-t", "-i"],
            timeout: settings.timeout
        )
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await deliverLoop(courier) }
                group.addTask { await escalationLoop() }
                group.addTask { await handoffLoop() }
            }
        }
        try? await http.shutdown()
        logger.info("shutdown: the notification workers stopped (a delivery cut short is due again)")
    }

    // MARK: delivering

    /// Deliveries under way in this replica.
    final class InFlight: Sendable {
        let count = Mutex(0)
    }

    func deliverLoop(_ courier: Courier) async {
        let inFlight = InFlight()
        // The pace: deliveries start at least 1/rate apart (the first after a pause at once).
        let gap = Duration.seconds(1) / settings.rate
        var next = ContinuousClock.now
        var gauged = ContinuousClock.now - .seconds(60)
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let room = settings.concurrency - inFlight.count.withLock { $0 }
                var claimed = 0
                var failing = false
                if room > 0 {
                    do {
                        let batch = try await store.claimNotifications(limit: room, lease: settings.leaseSeconds)
                        claimed = batch.count
                        for n in batch {
                            let now = ContinuousClock.now
                            if next > now { try? await Task.sleep(until: next) }
                            next = max(now, next) + gap
                            inFlight.count.withLock { $0 += 1 }
                            group.addTask {
                                await deliver(n, courier)
                                inFlight.count.withLock { $0 -= 1 }
                            }
                        }
                    } catch {
                        // A database that is down (or not migrated yet): say so, and look again in a while.
                        logger.error("cannot claim notifications", metadata: ["error": "\(String(reflecting: error))"])
                        failing = true
                    }
                    // The outbox's oldest due age for /metrics: once a second is enough for a scrape.
                    if !failing, ContinuousClock.now - gauged > .seconds(1) {
                        metrics.oldestDue(try? await store.oldestDueAge())
                        gauged = .now
                    }
                }
                if failing {
                    try? await Task.sleep(for: .seconds(5))
                } else if claimed == 0 || claimed == room {
                    try? await Task.sleep(for: claimed == 0 ? settings.poll : .milliseconds(20))
                }
            }
        }
    }

    func deliver(_ n: ClaimedNotification, _ courier: Courier) async {
        do {
            let payload: String
            if let made = n.payload {
                payload = made
            } else {
                payload = try await composer.payload(n)
            }
            let (sent, retryAfter) = await send(n, payload: payload, courier)
            var attempt = sent
            if attempt.outcome == .retry {
                attempt.retryAt = DeliveryBackoff.next(
                    attempts: n.attempts + 1,
                    createdAt: n.createdAt,
                    now: Date(),
                    retryAfter: retryAfter,
                    maxAge: settings.maxAge
                )
                if attempt.retryAt == nil {
                    attempt.outcome = .failed
                    attempt.error = "gave up after \(n.attempts + 1) attempts: \(attempt.error ?? "no answer")"
                }
            }
            try await store.record(n.id, payload: payload, attempt: attempt)
            metrics.attempt(kind: n.kind, outcome: attempt.outcome)
            if attempt.outcome == .failed {
                logger.warning(
                    "notification failed",
                    metadata: ["notification": "\(n.id)", "recipient": "\(n.recipient)", "error": "\(attempt.error ?? "")"]
                )
            }
        } catch {
            // The lease ends and another pass tries again.
            logger.error("cannot deliver notification", metadata: ["notification": "\(n.id)", "error": "\(String(reflecting: error))"])
        }
    }

    /// The Standard Webhooks id of a notification: the same at every attempt.
    static func webhookID(_ id: Int64) -> String { "msg_handrail_\(id)" }

    func send(_ n: ClaimedNotification, payload: String, _ courier: Courier) async -> (DeliveryAttempt, Double?) {
        guard let address = n.address else {
            return (DeliveryAttempt(outcome: .failed, status: nil, reply: nil, error: "the destination was removed", latencyMS: 0, retryAt: nil), nil)
        }
        switch n.kind {
        case .webhook:
            guard let key = n.secret.flatMap(StandardWebhook.key) else {
                return (DeliveryAttempt(outcome: .failed, status: nil, reply: nil, error: "no signing secret", latencyMS: 0, retryAt: nil), nil)
            }
            let body = Data(payload.utf8)
            let headers = StandardWebhook.headers(id: Self.webhookID(n.id), timestamp: Int(Date().timeIntervalSince1970), body: body, key: key)
            return await courier.post(address, body: body, headers: headers)
        case .slack:
            return await courier.post(address, body: Data(payload.utf8), headers: [])
        case .email:
            let mail = MessageComposer.Mail(payload)
            let message = NotificationMessage.email(
                subject: mail.subject,
                text: mail.text,
                from: settings.mailFrom,
                to: address,
                messageID: "\(Self.webhookID(n.id))@handrail",
                at: Date()
            )
            return (await courier.mail(message), nil)
        }
    }

    // MARK: escalating

    func escalationLoop() async {
        while !Task.isCancelled {
            var fired = 0
            do {
                let due = try await store.claimEscalations(limit: 32, lease: settings.leaseSeconds)
                fired = due.count
                // A storm's incidents share a rotation: its policy, schedule and leads are
                // read once a batch, and the batch is settled in one statement.
                var rotationsRead: [String: (EscalationPolicy, Rotation)?] = [:]
                var leadsRead: [String: [String]] = [:]
                var outcomes: [NotificationStore.EscalationOutcome] = []
                for e in due {
                    var read: (EscalationPolicy, Rotation)?
                    if let name = e.rotation {
                        if rotationsRead[name] == nil {
                            let policy = try await store.escalation(rotation: name)
                            let rotation = try await rotations.find(name: name)
                            rotationsRead[name] = policy.flatMap { p in rotation.map { (p, $0) } }
                        }
                        read = rotationsRead[name] ?? nil
                    }
                    outcomes.append(try await decide(e, read, leads: &leadsRead))
                }
                let done = try await store.settle(outcomes)
                for o in outcomes where o.escalation.kind == .step && done.contains(o.escalation.id) {
                    logger.info(
                        "escalated",
                        metadata: [
                            "incident": "\(IncidentRef.display(o.escalation.incidentNumber))", "step": "\(o.escalation.position + 1)",
                            "to": "\((o.usernames ?? []).joined(separator: ","))",
                        ]
                    )
                }
            } catch {
                logger.error("cannot fire escalations", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .seconds(5))
            }
            if fired == 0 { try? await Task.sleep(for: settings.poll) }
        }
    }

    /// What to do with one due row: stop if the incident was acknowledged (or resolved, for
    /// a reminder); else notify the step's people and schedule the next step.
    func decide(
        _ e: ClaimedEscalation,
        _ read: (EscalationPolicy, Rotation)?,
        leads: inout [String: [String]]
    ) async throws -> NotificationStore.EscalationOutcome {
        guard e.live, let name = e.rotation, let (policy, rotation) = read else { return .cancel(e) }
        let now = Date()
        if e.kind == .reminder {
            let next = policy.renotifySeconds.map { (position: e.position + 1, due: now.addingTimeInterval(Double($0))) }
            return .fire(e, usernames: e.owner.map { [$0] } ?? [], next: next)
        }
        let steps = policy.effectiveSteps
        guard e.position < steps.count else { return .cancel(e) }
        let step = steps[e.position]
        if step.target == .leads, leads[name] == nil { leads[name] = try await store.leads(rotation: name) }
        let people = step.people(rotation, at: now, leads: step.target == .leads ? leads[name] ?? [] : [])
        let next: (position: Int, due: Date)? =
            e.position + 1 < steps.count
            ? (position: e.position + 1, due: max(now, e.chainStartedAt.addingTimeInterval(Double(steps[e.position + 1].delaySeconds))))
            : nil
        return .fire(e, usernames: people, next: next)
    }
}

extension NotificationService {
    /// Each rotation's last finished shift gets its handoff, generated once by whichever
    /// replica claims it first, and sent to the outgoing and incoming on-call and the
    /// rotation's channels. Shifts that ended more than a day ago are not caught up.
    func handoffLoop() async {
        while !Task.isCancelled {
            do {
                let now = Date()
                for rotation in try await rotations.list(now: now) {
                    if let last = HandoffWindow.lastShift(of: rotation, now: now), now.timeIntervalSince(last.to) < 86400 {
                        try await handoffs.schedule(rotation: rotation.name, shiftEnd: last.to)
                    }
                }
                for due in try await handoffs.claimScheduled(limit: 4, lease: 120) { try await generate(due) }
                try? await Task.sleep(for: settings.poll * 10)
            } catch {
                logger.error("cannot generate scheduled handoffs", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .seconds(30))
            }
        }
    }

    func generate(_ due: HandoffStore.ScheduledHandoff) async throws {
        guard let rotation = try await rotations.find(name: due.rotation), let k = rotation.shiftIndex(at: due.shiftEnd), k > 0 else { return }
        let window = HandoffWindow(from: rotation.shiftStart(k - 1), to: due.shiftEnd)
        let document = HandoffDocument.build(try await handoffs.collect(rotation, window: window), links: composer.publicURL ?? "")
        let outgoing = rotation.onCall(at: window.to.addingTimeInterval(-1)).user
        let incoming = rotation.onCall(at: window.to).user
        let detail = [
            "rotation": rotation.name, "from": document.from, "to": document.to, "outgoing": outgoing ?? "nobody", "incoming": incoming ?? "nobody",
            "still_open": String(document.stillOpen.count), "opened": String(document.opened.count), "resolved": String(document.resolved.count),
        ]
        let stored = try await handoffs.storeScheduled(
            due,
            window: window,
            markdown: try renderer.handoff(document),
            document: document,
            outgoing: outgoing,
            incoming: incoming,
            detail: detail
        )
        if let stored {
            logger.info("scheduled handoff generated", metadata: ["rotation": "\(rotation.name)", "handoff": "\(stored)"])
        }
    }
}

/// Deliveries by kind and outcome, and the outbox's oldest due age, for `/metrics`.
struct NotificationMetrics: Sendable {
    let factory: any MetricsFactory

    func attempt(kind: DestinationKind, outcome: DeliveryAttempt.Outcome) {
        Counter(
            label: "handrail_notification_attempts_total",
            dimensions: [("kind", kind.rawValue), ("outcome", outcome.rawValue)],
            factory: factory
        )
        .increment()
    }

    func oldestDue(_ seconds: Double?) {
        guard let seconds else { return }
        Gauge(label: "handrail_notification_oldest_due_seconds", factory: factory).record(seconds)
    }
}
