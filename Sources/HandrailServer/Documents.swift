public import Foundation
public import HandrailCore
import Markdown
import Mustache
import Synchronization

/// Markdown escaping for template values: a value is data, never Markdown. Whatever could
/// start emphasis, code, a link, an autolink or raw HTML, an entity, or (at the value's start)
/// a heading, list or quote is backslash-escaped, and a line break cannot start a new block;
/// everything else stays as written, so the Markdown still reads well as text.
struct MarkdownContentType: MustacheContentType {
    func escapeText(_ text: String) -> String {
        // Most values (names, refs, times) need nothing: say so from the bytes.
        if !Self.needsEscaping(text) { return text }
        var out = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        func wordy(_ s: Unicode.Scalar) -> Bool { s.properties.isAlphabetic || s.properties.numericType != nil }
        // `1. x` or `12) x` at the start would be a numbered list: escape its delimiter
        // (a backslash before a digit is not an escape in Markdown, and would show).
        let digits = scalars.prefix { Self.isDigit($0) }.count
        let listDelimiter = digits > 0 && digits < scalars.count && (scalars[digits] == "." || scalars[digits] == ")") ? digits : nil
        for (n, c) in scalars.enumerated() {
            switch c {
            case "\n", "\r":
                out.append(" ")
                continue
            case "\\", "`", "*", "[", "]", "<", "&":
                out.append("\\")
            case "_":
                // Inside a word (roll_forward) an underscore cannot emphasise anything.
                let before = n > 0 && wordy(scalars[n - 1])
                let after = n + 1 < scalars.count && wordy(scalars[n + 1])
                if !(before && after) { out.append("\\") }
            case "#", "-", "+", ">", "=":
                if n == 0 { out.append("\\") }
            default:
                if n == listDelimiter { out.append("\\") }
            }
            out.append(c)
        }
        return String(out)
    }

    static func isDigit(_ s: Unicode.Scalar) -> Bool { ("0"..."9").contains(s) }

    static func needsEscaping(_ text: String) -> Bool {
        var first = true
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\\"), UInt8(ascii: "`"), UInt8(ascii: "*"), UInt8(ascii: "["),
                UInt8(ascii: "]"), UInt8(ascii: "<"), UInt8(ascii: "&"), UInt8(ascii: "_"):
                return true
            case UInt8(ascii: "#"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: ">"), UInt8(ascii: "="), UInt8(ascii: "0")...UInt8(ascii: "9"):
                if first { return true }
            default:
                break
            }
            first = false
        }
        return false
    }
}

/// A document template that failed: which file, which line, what.
public struct TemplateError: Error, CustomStringConvertible, Sendable {
    public let template: String
    public let line: Int
    public let message: String
    public var description: String { "\(template):\(line): \(message)" }
}

/// The documents Handrail writes from the incident log — handoffs (and postmortems) —
/// rendered from `templates/*.md.mustache` to Markdown, then to HTML through cmark.
/// Templates are read from disk on each render, so a person can edit one without a restart.
public struct DocumentRenderer: Sendable {
    public let directory: URL

    public init(directory: URL) {
        DocumentRenderer.registerContentTypes()
        self.directory = directory
    }

    /// Makes `{{% CONTENT_TYPE: MARKDOWN}}` known (before any template is parsed).
    public static func registerContentTypes() {
        MustacheContentTypes.register(MarkdownContentType(), named: "MARKDOWN")
    }

    /// Renders `name` (`handoff.md` → `handoff.md.mustache`) with `value`.
    /// - Throws: `TemplateError` naming the template and the line.
    /// The template is rendered in pieces at the same time when it can be (`TemplatePieces`).
    public func markdown(_ name: String, _ value: Any) throws -> String {
        let parsed = try template(directory.appendingPathComponent(name + ".mustache"))
        return parsed.pieces?.render(value) ?? parsed.whole.render(value)
    }

    /// A template as parsed: whole (which also checks it, naming the line of an error), and
    /// cut into pieces that render at the same time, when it can be.
    struct Parsed: Sendable {
        let whole: MustacheTemplate
        let pieces: TemplatePieces?
    }

    /// Parsed templates by path, with the file's modification time and size when parsed: an
    /// edited file is parsed again on its next use; an unchanged one is not.
    private static let parsed = Mutex<[String: (modified: Date, size: Int, template: Parsed)]>([:])

    func template(_ file: URL) throws -> Parsed {
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let modified = attributes?[.modificationDate] as? Date
        let size = (attributes?[.size] as? NSNumber)?.intValue
        if let modified, let size, let cached = Self.parsed.withLock({ $0[file.path] }), cached.modified == modified, cached.size == size {
            return cached.template
        }
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw TemplateError(template: file.lastPathComponent, line: 0, message: "cannot be read (\(error.localizedDescription))")
        }
        let whole: MustacheTemplate
        do {
            whole = try MustacheTemplate(string: text)
        } catch let error as MustacheTemplate.ParserError {
            throw TemplateError(
                template: file.lastPathComponent,
                line: error.context.lineNumber,
                message: "\(error.error) near \(error.context.line.debugDescription)"
            )
        }
        let template = Parsed(whole: whole, pieces: TemplatePieces(text))
        if let modified, let size { Self.parsed.withLock { $0[file.path] = (modified, size, template) } }
        return template
    }

    public func handoff(_ document: HandoffDocument) throws -> String {
        try markdown("handoff.md", HandoffTemplateValue(document))
    }

    /// Markdown to HTML, cmark's safe mode (raw HTML and unsafe links dropped).
    public static func html(_ markdown: String) -> String {
        Markdown.html(markdown)
    }

    /// A whole HTML page for a document (the API's `text/html` answers), with the stylesheet.
    static func page(title: String, markdown: String) -> String {
        let title = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            + "<title>\(title)</title><link rel=\"stylesheet\" href=\"/static/handrail.css\"></head><body><main>\n"
            + html(markdown) + "</main></body></html>\n"
    }
}

// MARK: - Template values without reflection

/// A handoff of a busy week holds a thousand rows, and Mustache looks up every tag of every
/// row. By default it reflects over the value (`Mirror`), and each lookup copies the row
/// struct into a new existential; that was most of the render time. Instead every row is
/// handed to Mustache in a `TemplateBox` (a class: a lookup copies a reference) that answers
/// each name directly. A missing optional is `NSNull`: nothing is printed, a section over it
/// is false, and the lookup does not climb to an outer value of the same name.
/// `DocumentTemplateValuesTests` checks that every stored property is answered, with the
/// value reflection would find.
protocol TemplateFields {
    func child(named: String) -> Any?
}

final class TemplateBox<Value: TemplateFields>: MustacheParent {
    let value: Value
    init(_ value: Value) { self.value = value }
    func child(named name: String) -> Any? { value.child(named: name) }
}

/// The document's own fields, with each list boxed once.
final class HandoffTemplateValue: MustacheParent {
    let fields: [String: Any]

    init(_ d: HandoffDocument) {
        func boxed<T: TemplateFields>(_ rows: [T]) -> [TemplateBox<T>] { rows.map { TemplateBox($0) } }
        fields = [
            "rotation": d.rotation, "timeZone": d.timeZone, "from": d.from, "to": d.to,
            "onCall": boxed(d.onCall), "opened": boxed(d.opened), "resolved": boxed(d.resolved), "stillOpen": boxed(d.stillOpen),
            "decisionsMade": boxed(d.decisionsMade), "awaitingOutcome": boxed(d.awaitingOutcome), "gaps": boxed(d.gaps),
            "withoutRunbook": boxed(d.withoutRunbook), "noisiest": boxed(d.noisiest), "measures": boxed(d.measures),
            "actionItems": boxed(d.actionItems), "quiet": d.quiet, "gapFree": d.gapFree,
        ]
    }

    func child(named name: String) -> Any? { fields[name] }
}

/// A value as the template prints it. Mustache tries a chain of casts on every value
/// before printing it (template? renderable? lambda? optional? then `String(describing:)`);
/// a renderable stops the chain at the second. String transforms (`uppercased(title)`)
/// still work.
struct TemplateText: MustacheCustomRenderable, MustacheTransformable, CustomStringConvertible {
    let text: String
    init(_ text: String) { self.text = text }
    init<T: BinaryInteger>(_ number: T) { text = String(number) }
    var renderText: String { text }
    var isNull: Bool { false }
    var description: String { text }
    func transform(_ name: String) -> Any? { text.transform(name) }
}

private func value(_ optional: String?) -> Any { optional.map { TemplateText($0) as Any } ?? NSNull() }

extension HandoffDocument.Row: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "ref": TemplateText(ref)
        case "title": TemplateText(title)
        case "severity": TemplateText(severity)
        case "state": TemplateText(state)
        case "owner": TemplateText(owner)
        case "opened": TemplateText(opened)
        case "resolved": value(resolved)
        case "duration": TemplateText(duration)
        case "runbook": TemplateText(runbook)
        case "nextStep": value(nextStep)
        default: nil
        }
    }
}

extension HandoffDocument.GapRow: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "ref": TemplateText(ref)
        case "step": TemplateText(step)
        case "title": TemplateText(title)
        case "outcome": TemplateText(outcome)
        case "note": TemplateText(note)
        case "by": TemplateText(by)
        default: nil
        }
    }
}

extension HandoffDocument.DecisionRow: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "ref": TemplateText(ref)
        case "id": TemplateText(id)
        case "kind": TemplateText(kind)
        case "target": TemplateText(target)
        case "decidedBy": TemplateText(decidedBy)
        case "decided": TemplateText(decided)
        case "rationale": TemplateText(rationale)
        case "status": TemplateText(status)
        default: nil
        }
    }
}

extension HandoffDocument.Measure: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "name": TemplateText(self.name)
        case "current": TemplateText(current)
        case "previous": TemplateText(previous)
        case "change": TemplateText(change)
        default: nil
        }
    }
}

extension HandoffDocument.ActionRow: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "ref": TemplateText(ref)
        case "title": TemplateText(title)
        case "owner": TemplateText(owner)
        case "due": TemplateText(due)
        case "overdue": overdue
        default: nil
        }
    }
}

extension HandoffDocument.Cover: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "user": TemplateText(user)
        case "from": TemplateText(from)
        case "to": TemplateText(to)
        case "override": override
        default: nil
        }
    }
}

extension AlertNoise: TemplateFields {
    func child(named name: String) -> Any? {
        switch name {
        case "alertname": TemplateText(alertname)
        case "alerts": TemplateText(alerts)
        case "deliveries": TemplateText(deliveries)
        default: nil
        }
    }
}
