import ArgumentParser
import Foundation
import HandrailCore
import HandrailServer
import HandrailStore

/// `handrail postmortem INC-42`: the draft postmortem of an incident, from its log.
struct Postmortem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the draft postmortem of an incident from its log (summary, impact, detection, timeline, owners, steps, decisions, resolution).")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: ArgumentHelp("The incident: 42 or INC-42", valueName: "ref")) var ref: String
    @Option(help: "md, html or json.") var format = "md"
    @Option(name: .customLong("time-zone"), help: "The zone times are written in (default: the owning rotation's, else UTC).") var timeZone: String?
    @Option(help: "Write to this file instead of standard output.") var output: String?
    @Option(name: .customLong("templates-dir"), help: ArgumentHelp("Templates folder. Env: HANDRAIL_TEMPLATES_DIR. Default: the checkout's templates/", valueName: "path"))
    var templatesDirectory: String?

    func run() async throws {
        guard ["md", "html", "json"].contains(format) else { throw fail("--format must be md, html or json") }
        guard let number = IncidentRef.number(ref) else { throw fail("\(ref.debugDescription) is not an incident number (42 or INC-42)") }
        if let timeZone, TimeZone(identifier: timeZone) == nil { throw fail("--time-zone: unknown zone \(timeZone.debugDescription)") }
        let templates = directory(templatesDirectory, env: "HANDRAIL_TEMPLATES_DIR",
                                  default: HandrailConfiguration.checkout(root: checkoutRoot, dataDirectory: database.resolvedDataDirectory).templatesDirectory)
        let document: PostmortemDocument = try await withDatabase(database) { db, _ in
            guard let detail = try await IncidentStore(pool: db.pool).detail(number: number) else { throw fail("no incident \(IncidentRef.display(number))") }
            let decisions = try await DecisionStore(pool: db.pool).list(number: number) ?? []
            var thresholds: [Threshold] = []
            if let r = detail.runbook, let version = try await RunbookStore(pool: db.pool).version(id: r.id, r.version) {
                thresholds = version.runbook.thresholds
            }
            var zone = timeZone ?? "UTC"
            if timeZone == nil, let rotation = detail.ownersRotation, let found = try await RotationStore(pool: db.pool).find(name: rotation) {
                zone = found.timeZone
            }
            return PostmortemDocument.build(detail, decisions: decisions, thresholds: thresholds, timeZone: zone)
        }
        try emitDocument(document, format: format, output: output) { try DocumentRenderer(directory: templates).postmortem(document) }
    }
}
