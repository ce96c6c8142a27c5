import Foundation
import HandrailCore

/// A value as a page template reads it: made from a view model by `TemplateEncoder`, so the
/// renderer never casts or reflects (see `PageTemplate`).
enum TemplateValue: Sendable, Equatable {
    case text(String)
    case bool(Bool)
    case list([TemplateValue])
    case object(TemplateFields)
    /// A missing optional: renders as nothing, is false in a section, and stops the lookup
    /// from climbing to an outer value of the same name.
    case null

    /// A section renders when its value is true, a non-empty list, text or an object.
    var isTruthy: Bool {
        switch self {
        case .bool(let b): b
        case .list(let l): !l.isEmpty
        case .null: false
        case .text, .object: true
        }
    }

    /// An object's value named `key`.
    subscript(key: String) -> TemplateValue? {
        if case .object(let fields) = self { fields[key] } else { nil }
    }

    /// A list's values.
    var items: [TemplateValue]? {
        if case .list(let items) = self { items } else { nil }
    }
}

/// An object's values by name, in the order written. Looked up by comparing names in turn:
/// a view model has a few dozen at most, and comparing short names is cheaper than hashing
/// them (a dictionary's hashing was 12 % of a Now page's server CPU).
struct TemplateFields: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    private(set) var names: [String] = []
    private(set) var values: [TemplateValue] = []

    init() {}

    init(dictionaryLiteral elements: (String, TemplateValue)...) {
        for (name, value) in elements { self[name] = value }
    }

    subscript(name: String) -> TemplateValue? {
        get {
            for n in names.indices where names[n] == name { return values[n] }
            return nil
        }
        set {
            if let n = names.firstIndex(of: name) {
                if let newValue {
                    values[n] = newValue
                } else {
                    names.remove(at: n)
                    values.remove(at: n)
                }
            } else if let newValue {
                names.append(name)
                values.append(newValue)
            }
        }
    }

    /// Adds a value whose name the object does not have yet (a struct's properties).
    mutating func append(_ name: String, _ value: TemplateValue) {
        names.append(name)
        values.append(value)
    }
}

/// A template of a page or a document: the Mustache the files in `templates/` are written in
/// (variables, `{{{unescaped}}}`, sections, inverted sections, partials, comments, dotted
/// names; `empty(list)`, `count(list)`, `first()` and `last()`; `{{% CONTENT_TYPE: MARKDOWN}}`
/// for a document's Markdown escaping), with the spec's standalone-line rules, rendered from
/// `TemplateValue`s.
///
/// Pages were rendered by swift-mustache from dictionaries of `Any`; its lookups cast every
/// value to several protocols and its escaping hashes each character. The Now page at 100k
/// incidents spent 75 % of its server CPU rendering (swift-mustache 55 %, the Mirror that
/// made its dictionaries 19 %): wrk, 8 connections, 158 pages/s, p99 107 ms; with this
/// renderer 351 pages/s, p99 63 ms. Documents use it too, so there is one template language.
struct PageTemplate: Sendable {
    /// What a section tests.
    enum Test: Sendable {
        /// The value of a name.
        case value([String])
        /// `empty(name)`: the list is empty (or the value missing or false).
        case empty([String])
        /// `first()`, `last()`: the first or last item of the list being rendered.
        case first, last
    }

    indirect enum Node: Sendable {
        case text(String)
        case variable([String], escaped: Bool)
        /// `{{count(name)}}`: how many items the list has.
        case count([String])
        /// `{{#test}}` (or `{{^test}}` when inverted).
        case section(Test, inverted: Bool, [Node])
        /// `{{> name}}`. (A standalone partial keeps its indentation on its first line only.)
        case partial(String)
    }

    /// How variables are escaped: for HTML (pages), or for Markdown (documents, which say
    /// `{{% CONTENT_TYPE: MARKDOWN}}`).
    enum Escaping: Sendable {
        case html, markdown

        func escape(_ text: String) -> String {
            switch self {
            case .html: Placeholders.escapeHTML(text)
            case .markdown: MarkdownEscaping.escape(text)
            }
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        let line: Int
        let message: String
        var description: String { "line \(line): \(message)" }
    }

    let nodes: [Node]
    let escaping: Escaping
    /// Partials within partials go this deep at most.
    static let partialDepth = 16

    init(_ source: String) throws(ParseError) {
        var parser = Parser(Array(source.utf8))
        nodes = try parser.parse()
        escaping = parser.escaping
    }

    /// Renders with `value` as the outermost context; partials come from `partials`.
    func render(_ value: TemplateValue, partials: [String: PageTemplate]) -> String {
        var renderer = Renderer(partials: partials, escaping: escaping, stack: [value])
        renderer.out.reserveCapacity(16 * 1024)
        renderer.render(nodes, position: nil, depth: 0)
        return renderer.out
    }

    private struct Renderer {
        let partials: [String: PageTemplate]
        let escaping: Escaping
        var stack: [TemplateValue]
        var out = ""

        /// `position`: the item being rendered of the innermost list, and how many it has.
        mutating func render(_ nodes: [Node], position: (index: Int, count: Int)?, depth: Int) {
            for node in nodes {
                switch node {
                case .text(let text):
                    out += text
                case .variable(let path, let escaped):
                    switch PageTemplate.lookup(path, stack) {
                    case .text(let s): out += escaped ? escaping.escape(s) : s
                    case .bool(let b): out += b ? "true" : "false"
                    case .list, .object, .null, nil: break
                    }
                case .count(let path):
                    if case .list(let items) = PageTemplate.lookup(path, stack) { out += String(items.count) }
                case .section(let test, let inverted, let body):
                    let value: TemplateValue =
                        switch test {
                        case .value(let path): PageTemplate.lookup(path, stack) ?? .null
                        case .empty(let path): .bool(!(PageTemplate.lookup(path, stack)?.isTruthy ?? false))
                        case .first: .bool(position?.index == 0)
                        case .last: .bool(position.map { $0.index == $0.count - 1 } ?? false)
                        }
                    if inverted {
                        if !value.isTruthy { render(body, position: position, depth: depth) }
                        continue
                    }
                    switch value {
                    case .list(let items):
                        for (n, item) in items.enumerated() {
                            stack.append(item)
                            render(body, position: (n, items.count), depth: depth)
                            stack.removeLast()
                        }
                    case .bool(true):
                        render(body, position: position, depth: depth)
                    case .text, .object:
                        stack.append(value)
                        render(body, position: position, depth: depth)
                        stack.removeLast()
                    case .bool(false), .null:
                        break
                    }
                case .partial(let name):
                    // A partial that includes itself (a template's mistake) stops, not the server.
                    guard let partial = partials[name], depth < PageTemplate.partialDepth else { continue }
                    render(partial.nodes, position: position, depth: depth + 1)
                }
            }
        }
    }

    /// `.` is the current value; a name is looked for from the innermost value out; the rest
    /// of a dotted name is looked for in what the first part found.
    fileprivate static func lookup(_ path: [String], _ stack: [TemplateValue]) -> TemplateValue? {
        guard let first = path.first else { return stack.last }
        var found: TemplateValue?
        for value in stack.reversed() {
            if case .object(let fields) = value, let v = fields[first] {
                found = v
                break
            }
        }
        for name in path.dropFirst() {
            guard case .object(let fields) = found else { return nil }
            found = fields[name]
        }
        return found
    }

    /// Reads a template into nodes. Sections nest; a tag alone on its line (a section, an
    /// inverted section, a close, a comment or a partial, with only spaces around it) takes
    /// its line with it, as the Mustache spec says.
    private struct Parser {
        let bytes: [UInt8]
        var at = 0
        var line = 1
        /// HTML unless the template says `{{% CONTENT_TYPE: MARKDOWN}}`.
        var escaping = Escaping.html

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        enum Tag {
            case variable(String, escaped: Bool)
            case open(String, inverted: Bool)
            case close(String)
            case comment
            case partial(String)
            case contentType(Escaping)
        }

        mutating func parse() throws(ParseError) -> [Node] {
            // Each open section: its name, its opening line, and the nodes before it.
            var open: [(name: String, test: Test, inverted: Bool, line: Int, outer: [Node])] = []
            var nodes: [Node] = []
            var text: [UInt8] = []
            func flush() {
                if !text.isEmpty { nodes.append(.text(String(decoding: text, as: UTF8.self))) }
                text = []
            }
            while at < bytes.count {
                guard bytes[at] == UInt8(ascii: "{"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "{") else {
                    if bytes[at] == UInt8(ascii: "\n") { line += 1 }
                    text.append(bytes[at])
                    at += 1
                    continue
                }
                let tagLine = line
                let tagStart = at
                let tag = try readTag()
                // Standalone: only spaces between the line's start and the tag, and between
                // the tag and the line's end.
                var lineStart = text.count
                while lineStart > 0, text[lineStart - 1] == UInt8(ascii: " ") || text[lineStart - 1] == UInt8(ascii: "\t") { lineStart -= 1 }
                // `text` holds the source just before the tag (since the last tag).
                let start = tagStart - (text.count - lineStart)
                let atLineStart = start == 0 || bytes[start - 1] == UInt8(ascii: "\n")
                var after = at
                while after < bytes.count, bytes[after] == UInt8(ascii: " ") || bytes[after] == UInt8(ascii: "\t") { after += 1 }
                let atLineEnd =
                    after == bytes.count || bytes[after] == UInt8(ascii: "\n")
                    || (bytes[after] == UInt8(ascii: "\r") && after + 1 < bytes.count && bytes[after + 1] == UInt8(ascii: "\n"))
                var standalone = atLineStart && atLineEnd
                if case .variable = tag { standalone = false }
                if standalone {
                    if case .partial = tag {} else { text.removeSubrange(lineStart...) }
                    at = after
                    if at < bytes.count, bytes[at] == UInt8(ascii: "\r") { at += 1 }
                    if at < bytes.count, bytes[at] == UInt8(ascii: "\n") {
                        at += 1
                        line += 1
                    }
                }
                switch tag {
                case .variable(let name, let escaped):
                    flush()
                    if let counted = Self.argument(of: "count", in: name) {
                        nodes.append(.count(Self.path(counted)))
                    } else if name.contains("(") {
                        throw ParseError(line: tagLine, message: "{{\(name)}}: the only function a value can be is count(name)")
                    } else {
                        nodes.append(.variable(Self.path(name), escaped: escaped))
                    }
                case .comment:
                    break
                case .contentType(let escaping):
                    self.escaping = escaping
                case .partial(let name):
                    flush()
                    nodes.append(.partial(name))
                case .open(let name, let inverted):
                    flush()
                    let test: Test
                    if let listed = Self.argument(of: "empty", in: name) {
                        test = .empty(Self.path(listed))
                    } else if name == "first()" {
                        test = .first
                    } else if name == "last()" {
                        test = .last
                    } else if name.contains("(") {
                        throw ParseError(
                            line: tagLine,
                            message: "{{\(inverted ? "^" : "#")\(name)}}: the only functions a section can be are empty(name), first() and last()"
                        )
                    } else {
                        test = .value(Self.path(name))
                    }
                    open.append((name, test, inverted, tagLine, nodes))
                    nodes = []
                case .close(let name):
                    flush()
                    guard let section = open.popLast() else {
                        throw ParseError(line: tagLine, message: "{{/\(name)}} closes no section")
                    }
                    guard section.name == name else {
                        throw ParseError(line: tagLine, message: "{{/\(name)}} closes {{#\(section.name)}} of line \(section.line)")
                    }
                    let body = nodes
                    nodes = section.outer
                    nodes.append(.section(section.test, inverted: section.inverted, body))
                }
            }
            flush()
            if let section = open.last {
                throw ParseError(line: section.line, message: "{{#\(section.name)}} is never closed")
            }
            return nodes
        }

        static func path(_ name: String) -> [String] {
            name == "." ? [] : name.split(separator: ".").map(String.init)
        }

        /// `list` of `count(list)` when `name` is a call of `function` with a name.
        static func argument(of function: String, in name: String) -> String? {
            guard name.hasPrefix(function + "("), name.hasSuffix(")") else { return nil }
            let argument = name.dropFirst(function.count + 1).dropLast()
            return argument.isEmpty ? nil : String(argument)
        }

        /// Reads `{{…}}` (or `{{{…}}}`) from `at`, leaving `at` after it.
        mutating func readTag() throws(ParseError) -> Tag {
            let startLine = line
            at += 2
            var triple = false
            if at < bytes.count, bytes[at] == UInt8(ascii: "{") {
                triple = true
                at += 1
            }
            let contentStart = at
            while at + 1 < bytes.count, !(bytes[at] == UInt8(ascii: "}") && bytes[at + 1] == UInt8(ascii: "}")) {
                if bytes[at] == UInt8(ascii: "\n") { line += 1 }
                at += 1
            }
            guard at + 1 < bytes.count else { throw ParseError(line: startLine, message: "a tag opened here is never closed with }}") }
            var content = String(decoding: bytes[contentStart..<at], as: UTF8.self)
            at += 2
            if triple {
                guard at < bytes.count, bytes[at] == UInt8(ascii: "}") else {
                    throw ParseError(line: startLine, message: "{{{ is closed with }} instead of }}}")
                }
                at += 1
                return .variable(content.trimmingCharacters(in: .whitespaces), escaped: false)
            }
            let sigil = content.first
            if let sigil, "#^/>!&".contains(sigil) { content.removeFirst() }
            let name = content.trimmingCharacters(in: .whitespaces)
            switch sigil {
            case "!": return .comment
            case "#": return .open(name, inverted: false)
            case "^": return .open(name, inverted: true)
            case "/": return .close(name)
            case ">": return .partial(name)
            case "&": return .variable(name, escaped: false)
            case "%":
                let pragma = name.dropFirst().trimmingCharacters(in: .whitespaces)
                switch pragma {
                case "CONTENT_TYPE: MARKDOWN": return .contentType(.markdown)
                case "CONTENT_TYPE: HTML": return .contentType(.html)
                default: throw ParseError(line: startLine, message: "{{\(content)}}: the only pragma is CONTENT_TYPE: MARKDOWN or HTML")
                }
            case "=", "<", "$":
                throw ParseError(line: startLine, message: "{{\(content)}}: templates here do not use this Mustache tag")
            default:
                guard !name.isEmpty else { throw ParseError(line: startLine, message: "an empty tag {{}}") }
                return .variable(name, escaped: true)
            }
        }
    }
}

/// Every page template of a folder (`templates/*.html.mustache`, by name without
/// `.mustache`: `now.html`), parsed once at start.
struct PageTemplates: Sendable {
    let templates: [String: PageTemplate]

    init(directory: URL) throws {
        var templates: [String: PageTemplate] = [:]
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        for file in files where file.hasSuffix(".html.mustache") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            do {
                templates[String(file.dropLast(".mustache".count))] = try PageTemplate(text)
            } catch {
                throw StartupError(description: "\(directory.appendingPathComponent(file).path): \(error)")
            }
        }
        self.templates = templates
    }

    func render(_ value: TemplateValue, template name: String) -> String? {
        templates[name]?.render(value, partials: templates)
    }
}
