import ArgumentParser
import Foundation
import HandrailCore

struct Runbooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the runbooks in runbooks/ (Markdown with YAML front matter).", subcommands: [Lint.self])

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every runbook of a folder; print each problem as file:line: message and exit 1 when there is any.")

        @Argument(help: ArgumentHelp("The runbooks folder. Default: HANDRAIL_RUNBOOKS_DIR, else the checkout's runbooks/", valueName: "dir"))
        var directory: String?

        func run() async throws {
            let dir = Foundation.URL(fileURLWithPath: directory ?? environment["HANDRAIL_RUNBOOKS_DIR"] ?? checkoutRoot.appendingPathComponent("runbooks").path)
            let files: [(path: String, text: String)]
            do {
                files = try RunbookFiles.read(dir, displayPrefix: directory ?? dir.path)
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

enum RunbookFiles {
    /// The `.md` files of a runbooks folder (a README.md beside them is not a runbook).
    static func read(_ directory: Foundation.URL, displayPrefix: String) throws -> [(path: String, text: String)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".md") && $0.lowercased() != "readme.md" }.sorted()
        let prefix = displayPrefix.hasSuffix("/") ? String(displayPrefix.dropLast()) : displayPrefix
        return try names.map { name in
            (prefix + "/" + name, try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
    }
}
