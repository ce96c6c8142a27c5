import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

struct Gates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Canary gates: list them, or open one before the controller asks (decisions are people's, in the web UI or the API).",
        subcommands: [List.self, Open.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Gates, newest first (at most 100): id, answer, target at checksum, stage, waiting since, questions, runbook."
        )
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Only gates waiting for a person's decision, the longest waiting first.") var waiting = false

        func run() async throws {
            let gates = try await withDatabase(database) { db, _ in try await GateStore(pool: db.pool).gates(waitingOnly: waiting) }
            for g in gates {
                let stage = g.stage.rawValue + (g.stage == .confirmTrafficIncrease ? " #\(g.step)" : "")
                print(
                    [
                        String(g.id), g.answer.rawValue, "\(g.release.target)@\(g.release.checksum)", stage, RFC3339.format(g.openedAt),
                        "\(g.timesAsked)", g.runbook ?? "-",
                    ].joined(separator: "\t")
                )
            }
            if gates.isEmpty { FileHandle.standardError.write(Data((waiting ? "no gate is waiting\n" : "no gates\n").utf8)) }
        }
    }

    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a gate for a release before its controller asks (it waits, like any gate, for a person's go); prints its id."
        )
        @OptionGroup var database: DatabaseOptions
        @Option(help: "The target's namespace.") var namespace: String
        @Option(help: "The target's name (the Canary or Rollout).") var name: String
        @Option(help: "The release: Flagger's checksum or Argo's pod template hash.") var checksum: String
        @Option(help: "confirm-rollout, confirm-traffic-increase or confirm-promotion.") var stage = "confirm-rollout"
        @Option(help: "The runbook whose rollback.decided_by says who may decide.") var runbook: String?

        func run() async throws {
            let release: ReleaseRef
            let gateStage: GateStage
            do {
                release = try ReleaseRef.validated(namespace: namespace, name: name, checksum: checksum)
                gateStage = try GateStage.parse(stage)
            } catch {
                throw fail("--\(error.field): \(error.message)")
            }
            let asker = GateStore.Asker(controller: "manual", integration: nil, name: commandLineActor.name)
            let result = try await withDatabase(database) { db, _ in
                try await GateStore(pool: db.pool).ask(release, stage: gateStage, metadata: [:], runbook: runbook, by: asker)
            }
            switch result {
            case .answered(let gate): print(gate.id)
            case .unknownRunbook(let id): throw fail("--runbook: no runbook \(id.debugDescription) is synced (handrail runbooks list)")
            }
        }
    }
}
