public import Foundation
public import HandrailCore
import Markdown
import Mustache

/// Markdown escaping for template values: a value is data, never Markdown. Whatever could
/// start emphasis, code, a link, an autolink or raw HTML, an entity, or (at the value's start)
/// a heading, list or quote is backslash-escaped, and a line break cannot start a new block;
/// everything else stays as written, so the Markdown still reads well as text.
struct MarkdownContentType: MustacheContentType {
    func escapeText(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        let chars = Array(text)
        for (n, c) in chars.enumerated() {
            switch c {
            case "\n", "\r":
                out.append(" ")
                continue
            case "\\", "`", "*", "[", "]", "<", "&":
                out.append("\\")
            case "_":
                // Inside a word (roll_forward) an underscore cannot emphasise anything.
                let before = n > 0 && (chars[n - 1].isLetter || chars[n - 1].isNumber)
                let after = n + 1 < chars.count && (chars[n + 1].isLetter || chars[n + 1].isNumber)
                if !(before && after) { out.append("\\") }
            case "#", "-", "+", ">", "=":
                if n == 0 { out.append("\\") }
            default:
                if n == 0, c.isNumber, let dot = chars.dropFirst().first(where: { !$0.isNumber }), dot == "." || dot == ")" {
                    out.append("\\")
                }
            }
            out.append(c)
        }
        return out
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
    public func markdown(_ name: String, _ value: Any) throws -> String {
        let file = directory.appendingPathComponent(name + ".mustache")
        let text: String
        do {
            text = try String(contentsOf: file, encoding: .utf8)
        } catch {
            throw TemplateError(template: file.lastPathComponent, line: 0, message: "cannot be read (\(error.localizedDescription))")
        }
        let template: MustacheTemplate
        do {
            template = try MustacheTemplate(string: text)
        } catch let error as MustacheTemplate.ParserError {
            throw TemplateError(template: file.lastPathComponent, line: error.context.lineNumber, message: "\(error.error) near \(error.context.line.debugDescription)")
        }
        return template.render(value)
    }

    public func handoff(_ document: HandoffDocument) throws -> String {
        try markdown("handoff.md", document)
    }

    /// Markdown to HTML, cmark's safe mode (raw HTML and unsafe links dropped).
    public static func html(_ markdown: String) -> String {
        Markdown.html(markdown)
    }

    /// A whole HTML page for a document (the API's `text/html` answers), with the stylesheet.
    static func page(title: String, markdown: String) -> String {
        let title = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            + "<title>\(title)</title><link rel=\"stylesheet\" href=\"/static/handrail.css\"></head><body><main>\n"
            + html(markdown) + "</main></body></html>\n"
    }
}
