import ArgumentParser
import Foundation
import HandrailCore
import HandrailServer
import HandrailStore

/// `handrail handoff`: the handoff of a rotation for a window, written from the incident log.
struct Handoff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a rotation's handoff from the incident log: the shift that just ended, an ISO week, or --from/--to.",
        discussion: "Same log, same window → the same bytes. Rendered from templates/handoff.md.mustache (HANDRAIL_TEMPLATES_DIR)."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "The rotation's name.") var rotation: String
    @Option(help: "An ISO week in the rotation's zone, such as 2026-W47.") var week: String?
    @Option(help: "The window's start (RFC 3339), with --to.") var from: String?
    @Option(help: "The window's end (RFC 3339), with --from.") var to: String?
    @Option(help: "md, html or json.") var format = "md"
    @Option(help: "Write to this file instead of standard output.") var output: String?
    @Option(
        name: .customLong("templates-dir"),
        help: ArgumentHelp("Templates folder. Env: HANDRAIL_TEMPLATES_DIR. Default: the shipped templates/", valueName: "path")
    )
    var templatesDirectory: String?

    func run() async throws {
        guard ["md", "html", "json"].contains(format) else { throw fail("--format must be md, html or json") }
        guard week == nil || (from == nil && to == nil) else { throw fail("give --week or --from/--to, not both") }
        guard (from == nil) == (to == nil) else { throw fail("--from and --to go together") }
        let templates = directory(
            templatesDirectory,
            env: "HANDRAIL_TEMPLATES_DIR",
            default: HandrailConfiguration.checkout(root: resourceRoot, dataDirectory: database.resolvedDataDirectory).templatesDirectory
        )
        let log: HandoffLog = try await withDatabase(database) { db, _ in
            guard let r = try await RotationStore(pool: db.pool).find(name: rotation) else { throw fail("no rotation \(rotation.debugDescription)") }
            let window: HandoffWindow
            if let week {
                window = try HandoffWindow.isoWeek(week, timeZone: r.timeZone, field: "--week")
            } else if let from, let to {
                let start = try parseInstant(from, option: "--from")
                let end = try parseInstant(to, option: "--to")
                guard end > start else { throw fail("--to must be after --from") }
                window = HandoffWindow(from: start, to: end)
            } else {
                guard let last = HandoffWindow.lastShift(of: r, now: Date()) else {
                    throw fail("\(rotation) has no finished shift yet; give --week or --from/--to")
                }
                window = last
            }
            return try await HandoffStore(pool: db.pool).collect(r, window: window)
        }
        // Links to incidents are absolute when HANDRAIL_PUBLIC_URL says where Handrail is.
        let base = environment["HANDRAIL_PUBLIC_URL"].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? ""
        let document = HandoffDocument.build(log, links: base)
        try emitDocument(document, format: format, output: output) { try DocumentRenderer(directory: templates).handoff(document) }
    }
}

/// Prints or writes a generated document as md, html or json (the document commands' output).
func emitDocument<D: Encodable>(_ document: D, format: String, output: String?, markdown: () throws -> String) throws {
    let text: String
    do {
        switch format {
        case "json":
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            text = String(decoding: try encoder.encode(document), as: UTF8.self) + "\n"
        case "html":
            text = DocumentRenderer.html(try markdown())
        default:
            text = try markdown()
        }
    } catch let error as TemplateError {
        throw fail(error.description)
    }
    if let output {
        do {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } catch {
            throw fail("--output: cannot write \(output): \(error.localizedDescription)")
        }
    } else {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
