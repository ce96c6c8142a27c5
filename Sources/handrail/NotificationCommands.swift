import ArgumentParser
import Foundation
import HandrailCore
import HandrailServer
import HandrailStore

extension Rotations {
    /// `handrail rotations escalation ml-platform --step 0:on_call --step 10:user:lena --renotify 30`
    struct Escalation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a rotation's escalation chain, or replace it (with --step, --renotify or --clear).",
            discussion: """
                Each --step is MINUTES:TARGET[:USER]: after that many minutes without acknowledgement (from the \
                opening), notify on_call, next, leads, or user:NAME. No steps: the on-call, at once.
                """
        )
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @Option(name: .customLong("step"), help: ArgumentHelp("A step, MINUTES:TARGET[:USER], in order.", valueName: "step")) var steps: [String] = []
        @Option(help: ArgumentHelp("Remind the owner of an acknowledged, unresolved incident every so many minutes.", valueName: "minutes"))
        var renotify: Double?
        @Flag(help: "Remove every step and the reminder (the on-call hears at once).") var clear = false

        func run() async throws {
            let change = clear || !steps.isEmpty || renotify != nil
            let policy: EscalationPolicy? = try await withDatabase(database) { db, _ in
                let store = NotificationStore(pool: db.pool)
                guard change else { return try await store.escalation(rotation: name) }
                return try await store.setEscalation(rotation: name, try Self.policy(steps: clear ? [] : steps, renotify: clear ? nil : renotify))
            }
            guard let policy else { throw fail("no rotation \(name.debugDescription)") }
            for (n, step) in policy.effectiveSteps.enumerated() {
                let minutes = NumberText.plain(Double(step.delaySeconds) / 60)
                print("step \(n + 1)\tafter \(minutes) min\t\(step.target.rawValue)\(step.user.map { " \($0)" } ?? "")")
            }
            print("reminders\t\(policy.renotifySeconds.map { "every \(NumberText.plain(Double($0) / 60)) min" } ?? "off")")
        }

        static func policy(steps: [String], renotify: Double?) throws -> EscalationPolicy {
            var out: [EscalationStep] = []
            for (n, text) in steps.enumerated() {
                let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard (2...3).contains(parts.count), let minutes = Double(parts[0]), minutes.isFinite, (0...10080).contains(minutes),
                    let target = EscalationStep.Target(rawValue: parts[1]), (target == .user) == (parts.count == 3)
                else {
                    throw fail("--step \(n + 1): \(text.debugDescription) is not MINUTES:TARGET[:USER] (on_call, next, leads, user:NAME)")
                }
                let seconds = Int((minutes * 60).rounded())
                guard seconds > (out.last?.delaySeconds ?? -1) else { throw fail("--step \(n + 1) must come later than the step before") }
                out.append(EscalationStep(delaySeconds: seconds, target: target, user: parts.count == 3 ? parts[2] : nil))
            }
            if let r = renotify, !(r.isFinite && r * 60 >= 1 && r <= 10080) { throw fail("--renotify must be minutes from 1 to 10080") }
            return EscalationPolicy(steps: out, renotifySeconds: renotify.map { Int(($0 * 60).rounded()) })
        }
    }

    /// `handrail rotations channels ml-platform [--add-slack URL | --add-webhook URL] [--label L] [--remove ID]`
    struct Channels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a rotation's team channels, or add one (its signing secret is printed once) or remove one.",
            discussion: "A URL's host must not resolve to loopback, private or link-local addresses unless HANDRAIL_WEBHOOK_ALLOW allows them."
        )
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @Option(name: .customLong("add-slack"), help: ArgumentHelp("Add a Slack-compatible incoming webhook.", valueName: "url")) var slack: String?
        @Option(name: .customLong("add-webhook"), help: ArgumentHelp("Add a signed generic webhook.", valueName: "url")) var webhook: String?
        @Option(help: "The new channel's name.") var label = "team"
        @Option(help: ArgumentHelp("Remove the channel with this id.", valueName: "id")) var remove: Int64?

        func run() async throws {
            guard [slack, webhook].compactMap({ $0 }).count + (remove == nil ? 0 : 1) <= 1 else {
                throw fail("give one of --add-slack, --add-webhook, --remove")
            }
            let allow = try AddressRange.list(ProcessInfo.processInfo.environment["HANDRAIL_WEBHOOK_ALLOW"] ?? "", field: "HANDRAIL_WEBHOOK_ALLOW")
            try await withDatabase(database) { db, _ in
                let store = NotificationStore(pool: db.pool)
                if let remove {
                    guard try await store.removeChannel(rotation: name, id: remove) else { throw fail("\(name) has no channel \(remove)") }
                    try await AuditStore(pool: db.pool).record("channel.removed", target: name, detail: ["id": String(remove)], by: commandLineActor)
                } else if let (kind, url) = slack.map({ (DestinationKind.slack, $0) }) ?? webhook.map({ (DestinationKind.webhook, $0) }) {
                    let destination: Destination
                    do { destination = try Destination(kind: kind, address: url, field: "url") } catch let error as HandrailCore.ValidationError {
                        throw fail("the URL \(error.message)")
                    }
                    if let refused = await OutboundCheck.refusal(destination.address, allow: allow) { throw fail(refused) }
                    let secret = kind == .webhook ? StandardWebhook.newSecret() : nil
                    guard let added = try await store.addChannel(rotation: name, destination: destination, label: label, secret: secret) else {
                        throw fail("no rotation \(name.debugDescription)")
                    }
                    try await AuditStore(pool: db.pool).record(
                        "channel.added",
                        target: name,
                        detail: ["id": String(added.id), "kind": kind.rawValue, "hint": added.hint],
                        by: commandLineActor
                    )
                    if let secret { print("signing secret (shown once): \(secret)") }
                }
                for c in try await store.channels(rotation: name) { print("\(c.id)\t\(c.kind.rawValue)\t\(c.label)\t\(c.hint)") }
            }
        }
    }
}
