import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

struct Runbooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the runbooks in runbooks/ (Markdown with YAML front matter).",
        subcommands: [Lint.self, Sync.self, List.self, Show.self, Match.self]
    )

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every runbook of a folder; print each problem as file:line: message and exit 1 when there is any."
        )

        @Argument(help: ArgumentHelp("The runbooks folder. Default: HANDRAIL_RUNBOOKS_DIR, else the shipped runbooks/", valueName: "dir"))
        var directory: String?

        func run() async throws {
            let dir = runbooksDirectory(directory)
            let files: [(path: String, text: String)]
            do {
                files = try RunbookDirectory.read(dir, displayPrefix: directory ?? dir.path)
            } catch {
                throw fail("\(dir.path): \(error.localizedDescription)")
            }
            let (runbooks, problems) = RunbookParser.lint(files)
            for problem in problems { print(problem.description) }
            if !problems.isEmpty {
                FileHandle.standardError.write(Data("handrail: \(problems.count) problem(s) in \(files.count) file(s)\n".utf8))
                throw ExitCode.failure
            }
            print("\(runbooks.count) runbook(s), no problems")
        }
    }
}

extension Runbooks {
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Sync the runbooks folder into the database now: changed files become new versions, removed ones are retired. A folder with lint problems syncs nothing."
        )

        @OptionGroup var database: DatabaseOptions

        @Argument(help: ArgumentHelp("The runbooks folder. Default: HANDRAIL_RUNBOOKS_DIR, else the shipped runbooks/", valueName: "dir"))
        var directory: String?

        func run() async throws {
            let dir = runbooksDirectory(directory)
            try await withDatabase(database) { db, _ in
                switch try await RunbookDirectory.sync(dir, store: RunbookStore(pool: db.pool), by: commandLineActor.name) {
                case .synced(let report):
                    for (id, version) in report.created.sorted(by: { $0.key < $1.key }) { print("\(id): new version \(version)") }
                    for id in report.retired { print("\(id): retired (its file is gone; it stays readable)") }
                    for id in report.restored { print("\(id): restored") }
                    print("\(report.created.count) new version(s), \(report.unchanged.count) unchanged, \(report.retired.count) retired")
                case .refused(let problems):
                    for problem in problems { print(problem.description) }
                    throw fail("\(problems.count) problem(s): nothing synced")
                }
            }
        }
    }
}

extension Runbooks {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the synced runbooks: id, version, owners, state, title.")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Include retired runbooks.") var retired = false

        func run() async throws {
            let versions = try await withDatabase(database) { db, _ in try await RunbookStore(pool: db.pool).list(includeRetired: retired) }
            for v in versions {
                print(
                    [v.id, "v\(v.version)", v.runbook.owners ?? "-", v.retiredAt == nil ? "active" : "retired", v.runbook.title].joined(
                        separator: "\t"
                    )
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a runbook's source as synced (the current version, or --version N).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The runbook id.") var id: String
        @Option(help: "A version number (default: the current one).") var version: Int?

        func run() async throws {
            let found = try await withDatabase(database) { db, _ in
                let store = RunbookStore(pool: db.pool)
                if let version { return try await store.version(id: id, version) }
                return try await store.current(id: id)
            }
            guard let found else { throw fail("id: no runbook \(id.debugDescription)\(version.map { " with version \($0)" } ?? "")") }
            print(
                "# \(found.id) v\(found.version) of \(found.currentVersion), synced \(found.syncedAt.formatted(.iso8601)) by \(found.syncedBy)\(found.retiredAt == nil ? "" : ", retired")"
            )
            print(found.source)
        }
    }

    struct Match: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Which runbook an alert with these labels would get, and why.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "The alert's alertname.") var alertname: String
        @Option(name: .customLong("label"), help: "Another label, key=value (repeatable).") var labels: [String] = []
        @Option(help: "The alert's value, for the severity from thresholds.") var value: Double?

        func run() async throws {
            var alert = ["alertname": alertname]
            for label in labels {
                let parts = label.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, !parts[0].isEmpty else { throw fail("label: \(label.debugDescription) is not key=value") }
                alert[String(parts[0])] = String(parts[1])
            }
            let runbooks = try await withDatabase(database) { db, _ in try await RunbookStore(pool: db.pool).list().map(\.runbook) }
            guard let match = runbooks.bestMatch(for: alert) else {
                print("no runbook matches; the incident would open flagged \"no runbook\"")
                throw ExitCode(2)
            }
            print(match.runbook.id)
            print(match.reason)
            print("severity: \(match.runbook.severity(value: value, labels: alert).rawValue)")
        }
    }
}

/// The runbooks folder: the argument, else HANDRAIL_RUNBOOKS_DIR, else the shipped runbooks/.
func runbooksDirectory(_ argument: String?) -> Foundation.URL {
    Foundation.URL(fileURLWithPath: argument ?? environment["HANDRAIL_RUNBOOKS_DIR"] ?? resourceRoot.appendingPathComponent("runbooks").path)
}
