import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

struct Runbooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the runbooks in runbooks/ (Markdown with YAML front matter).", subcommands: [Lint.self, Sync.self])

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every runbook of a folder; print each problem as file:line: message and exit 1 when there is any.")

        @Argument(help: ArgumentHelp("The runbooks folder. Default: HANDRAIL_RUNBOOKS_DIR, else the checkout's runbooks/", valueName: "dir"))
        var directory: String?

        func run() async throws {
            let dir = Foundation.URL(fileURLWithPath: directory ?? environment["HANDRAIL_RUNBOOKS_DIR"] ?? checkoutRoot.appendingPathComponent("runbooks").path)
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
            abstract: "Sync the runbooks folder into the database now: changed files become new versions, removed ones are retired. A folder with lint problems syncs nothing.")

        @OptionGroup var database: DatabaseOptions

        @Argument(help: ArgumentHelp("The runbooks folder. Default: HANDRAIL_RUNBOOKS_DIR, else the checkout's runbooks/", valueName: "dir"))
        var directory: String?

        func run() async throws {
            let dir = Foundation.URL(fileURLWithPath: directory ?? environment["HANDRAIL_RUNBOOKS_DIR"] ?? checkoutRoot.appendingPathComponent("runbooks").path)
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
