public import Foundation
public import HandrailCore
import Markdown
import Synchronization

/// Markdown escaping for template values: a value is data, never Markdown. Whatever could
/// start emphasis, code, a link, an autolink or raw HTML, an entity, or (at the value's start)
/// a heading, list or quote is backslash-escaped, and a line break cannot start a new block;
/// everything else stays as written, so the Markdown still reads well as text.
enum MarkdownEscaping {
    static func escape(_ text: String) -> String {
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

/// The documents Handrail writes from the incident log (handoffs and postmortems),
/// rendered from `templates/*.md.mustache` (`PageTemplate`, Markdown-escaped) to Markdown,
/// then to HTML through cmark. A template is parsed on first use and again only when its file
/// changes, so a person can edit one without a restart.
public struct DocumentRenderer: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// Renders `name` (`handoff.md` → `handoff.md.mustache`) with `value`, whose properties
    /// the template reads by their Swift names (`decidedBy`).
    /// - Throws: `TemplateError` naming the template and the line.
    func markdown(_ name: String, _ value: some Encodable) throws -> String {
        try template(directory.appendingPathComponent(name + ".mustache")).render(TemplateEncoder.value(value, naming: .asDeclared), partials: [:])
    }

    /// Parsed templates by path, with the file's modification time and size when parsed.
    private static let parsed = Mutex<[String: (modified: Date, size: Int, template: PageTemplate)]>([:])

    func template(_ file: URL) throws -> PageTemplate {
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
        let template: PageTemplate
        do {
            template = try PageTemplate(text)
        } catch {
            throw TemplateError(template: file.lastPathComponent, line: error.line, message: error.message)
        }
        if let modified, let size { Self.parsed.withLock { $0[file.path] = (modified, size, template) } }
        return template
    }

    /// A busy week's handoff (480 incidents opened, 207 KB) took about 45 ms rendered by
    /// swift-mustache from dictionaries, 125 ms from the structs (release build); the
    /// handoff's target is p99 < 250 ms.
    public func handoff(_ document: HandoffDocument) throws -> String {
        try markdown("handoff.md", document)
    }

    /// Markdown to HTML, cmark's safe mode (raw HTML and unsafe links dropped).
    public static func html(_ markdown: String) -> String {
        Markdown.html(markdown)
    }

    /// A whole HTML page for a document (the API's `text/html` answers), with the stylesheet.
    static func page(title: String, markdown: String) -> String {
        let title = Placeholders.escapeHTML(title)
        return
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            + "<title>\(title)</title><link rel=\"stylesheet\" href=\"/static/handrail.css\"></head><body><main>\n"
            + html(markdown) + "</main></body></html>\n"
    }
}
