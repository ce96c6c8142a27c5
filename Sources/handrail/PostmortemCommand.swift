import ArgumentParser
import Foundation
import HandrailCore
import HandrailServer
import HandrailStore

/// `handrail postmortem INC-42`: the draft postmortem of an incident, from its log.
struct Postmortem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Print an incident's postmortem: the stored one with what people wrote, else a draft from its log (summary, impact, detection, timeline, owners, steps, decisions, resolution)."
    )

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("The incident: 42 or INC-42", valueName: "ref")) var ref: String
    @Option(help: "md, html or json.") var format = "md"
    @Option(name: .customLong("time-zone"), help: "The zone times are written in (default: the owning rotation's, else UTC).") var timeZone: String?
    @Option(help: "Write to this file instead of standard output.") var output: String?
    @Option(
        name: .customLong("templates-dir"),
        help: ArgumentHelp("Templates folder. Env: HANDRAIL_TEMPLATES_DIR. Default: the shipped templates/", valueName: "path")
    )
    var templatesDirectory: String?

    func run() async throws {
        guard ["md", "html", "json"].contains(format) else { throw fail("--format must be md, html or json") }
        guard let number = IncidentRef.number(ref) else { throw fail("\(ref.debugDescription) is not an incident number (42 or INC-42)") }
        if let timeZone, TimeZone(identifier: timeZone) == nil { throw fail("--time-zone: unknown zone \(timeZone.debugDescription)") }
        let templates = directory(
            templatesDirectory,
            env: "HANDRAIL_TEMPLATES_DIR",
            default: HandrailConfiguration.checkout(root: resourceRoot, dataDirectory: database.resolvedDataDirectory).templatesDirectory
        )
        // The stored postmortem when there is one (with what people wrote), else a fresh draft.
        let document: PostmortemDocument = try await withDatabase(database) { db, _ in
            if timeZone == nil, let stored = try await PostmortemStore(pool: db.pool).find(number: number) {
                return try await PostmortemGenerator(pool: db.pool).view(stored, number: number)
            }
            guard let facts = try await PostmortemGenerator(pool: db.pool).facts(number: number, timeZone: timeZone) else {
                throw fail("no incident \(IncidentRef.display(number))")
            }
            return facts
        }
        try emitDocument(document, format: format, output: output) { try DocumentRenderer(directory: templates).postmortem(document) }
    }
}
