import ArgumentParser
import Foundation
import HandrailCore
import HandrailServer
import HandrailStore

/// `handrail demo`: a year of realistic, reproducible history for newcomers and benchmarks.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Fill the database with a year of demo history: people, rotations, incidents from the shipped runbooks with owners, steps, decisions and postmortems.",
        discussion:
            "Reproducible: the same --seed and --incidents give the same history (relative to today). Refuses a database that holds incidents other than demo ones, unless --force."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "How many incidents (1-5000000).") var incidents = 500
    @Option(help: "The random seed.") var seed: UInt64 = 42
    @Option(help: "Over how many past years (1-20); benchmarks use it to grow the history at the same weekly rate.") var years = 1
    @Flag(help: "Write even into a database that holds real (non-demo) incidents.") var force = false
    @Option(name: .customLong("runbooks-dir"), help: ArgumentHelp("Runbooks folder. Default: the shipped runbooks/", valueName: "path"))
    var runbooksDirectory: String?

    func run() async throws {
        guard (1...5_000_000).contains(incidents) else { throw fail("--incidents must be from 1 to 5000000") }
        guard (1...20).contains(years) else { throw fail("--years must be from 1 to 20") }
        let runbooks = directory(runbooksDirectory, env: "HANDRAIL_RUNBOOKS_DIR", default: resourceRoot.appendingPathComponent("runbooks"))
        let now = Date()
        let today = LocalDate(String(RFC3339.format(now).prefix(10)))!
        // Rotations that began before the history does, handing over on Mondays.
        let start = today.adding(days: -366 * years - 35)
        let rotations = [
            Rotation(
                name: "ml-platform",
                members: ["ana", "ben", "cho"],
                timeZone: "Europe/Berlin",
                shiftLength: ShiftLength(days: 7)!,
                handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
                startDate: start
            ),
            Rotation(
                name: "ml-serving",
                members: ["dee", "eli", "ben"],
                timeZone: "America/New_York",
                shiftLength: ShiftLength(days: 7)!,
                handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
                startDate: start
            ),
            Rotation(
                name: "data-platform",
                members: ["cho", "dee"],
                timeZone: "UTC",
                shiftLength: ShiftLength(days: 7)!,
                handoff: HandoffTime(weekday: 1, hour: 10, minute: 0)!,
                startDate: start
            ),
        ]
        try await withDatabase(database, mayCreate: true) { db, _ in
            let demo = DemoStore(pool: db.pool)
            let existing = try await demo.demoIncidents()
            if existing > 0 { throw fail("this database already holds demo history (\(existing) incidents); use a fresh database") }
            let foreign = try await demo.foreignIncidents()
            if foreign > 0, !force {
                throw fail("this database holds \(foreign) incident(s) that are not demo history; --force to add demo history anyway")
            }
            guard case .synced = try await RunbookDirectory.sync(runbooks, store: RunbookStore(pool: db.pool), by: "demo") else {
                throw fail("the runbooks in \(runbooks.path) have problems; run handrail runbooks lint")
            }
            let versions = try await RunbookStore(pool: db.pool).list().map { (id: $0.id, version: $0.version, runbook: $0.runbook) }.sorted {
                $0.id < $1.id
            }
            let (users, integration) = try await demo.prepare(rotations: rotations)
            var byName: [String: Rotation] = [:]
            for r in rotations { byName[r.name] = try await RotationStore(pool: db.pool).find(name: r.name) ?? r }
            let history = DemoHistory.incidents(
                count: incidents,
                seed: seed,
                now: now,
                years: years,
                runbooks: versions,
                rotations: byName,
                responders: ["ana", "ben", "cho", "dee", "eli"]
            )
            let batch = 500
            var written = 0
            for start in stride(from: 0, to: history.count, by: batch) {
                try await demo.write(Array(history[start..<min(start + batch, history.count)]), users: users, integration: integration)
                written = min(start + batch, history.count)
                if written % 10_000 == 0 || written == history.count {
                    FileHandle.standardError.write(Data("\(written) of \(history.count) incidents written\n".utf8))
                }
            }
            try await demo.analyze()
        }
        print(
            "demo history: \(incidents) incidents over the past \(years == 1 ? "year" : "\(years) years") (seed \(seed)); rotations ml-platform, ml-serving, data-platform"
        )
    }
}
