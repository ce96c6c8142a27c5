import CCmark
import Foundation

/// Markdown, the language of every human-facing document in Handrail, through cmark (the
/// CommonMark reference implementation).
///
/// Rendering is always safe: raw HTML is replaced by a comment, and links and images whose
/// destination uses a dangerous scheme (`javascript:`, `vbscript:`, `file:`, `data:`, in any
/// case-mix, with or without leading blanks or control characters) lose their destination.
public enum Markdown {
    /// Renders Markdown to HTML in safe mode.
    public static func html(_ markdown: String) -> String {
        MarkdownDocument(markdown).html()
    }

    /// Whether a link destination uses a scheme Handrail never renders as a link.
    /// Browsers ignore leading blanks and control characters, and tabs and newlines
    /// inside the scheme (`java\tscript:`), so this does too.
    public static func isDangerousURL(_ url: String) -> Bool {
        var scheme = ""
        for scalar in url.unicodeScalars {
            if scalar == ":" { break }
            if scalar.value <= 0x20 || scalar.value == 0x7F { continue }
            if scheme.count > 16 { return false }
            scheme.unicodeScalars.append(scalar)
        }
        guard url.unicodeScalars.contains(":") else { return false }
        switch scheme.lowercased() {
        case "javascript", "vbscript", "file", "data": return true
        default: return false
        }
    }
}

/// A parsed Markdown document: its tree, and its safe HTML.
public struct MarkdownDocument: Sendable {
    /// The Markdown text the document was parsed from.
    public let source: String
    /// The document's root node (`kind == .document`).
    public let root: MarkdownNode

    /// Parses Markdown (never fails: every string is a CommonMark document).
    public init(_ source: String) {
        self.source = source
        self.root =
            Self.parse(source) { root in MarkdownNode(root) }
            ?? MarkdownNode(kind: .document, literal: "", startLine: 0, endLine: 0, children: [])
    }

    /// The document as HTML in safe mode.
    public func html() -> String {
        Self.parse(source) { root in
            Self.neutraliseDangerousLinks(root)
            guard let html = cmark_render_html(root, CMARK_OPT_DEFAULT) else { return "" }
            defer { free(html) }
            return String(cString: html)
        } ?? ""
    }

    /// The Markdown source of lines `lines` (1-based, inclusive) — how a node's own text
    /// (a runbook step with its code blocks and links) is kept verbatim.
    public func sourceText(lines: ClosedRange<Int>) -> String {
        let all = source.split(separator: "\n", omittingEmptySubsequences: false)
        let lower = max(lines.lowerBound, 1) - 1
        let upper = min(lines.upperBound, all.count) - 1
        guard lower <= upper else { return "" }
        return all[lower...upper].joined(separator: "\n")
    }

    private static func parse<T>(_ source: String, _ body: (OpaquePointer) -> T) -> T? {
        // Pass the byte count, not a C string: a NUL inside the text must not end it early
        // (cmark turns NUL into U+FFFD itself).
        let bytes = Array(source.utf8) + [0]
        let parsed = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { cmark_parse_document($0.baseAddress, buffer.count - 1, CMARK_OPT_DEFAULT) }
        }
        // cmark answers NULL only when it cannot allocate; an empty document is the safe answer.
        guard let root = parsed else { return nil }
        defer { cmark_node_free(root) }
        return body(root)
    }

    private static func neutraliseDangerousLinks(_ root: OpaquePointer) {
        guard let iterator = cmark_iter_new(root) else { return }
        defer { cmark_iter_free(iterator) }
        while true {
            let event = cmark_iter_next(iterator)
            if event == CMARK_EVENT_DONE { break }
            guard event == CMARK_EVENT_ENTER, let node = cmark_iter_get_node(iterator) else { continue }
            let type = cmark_node_get_type(node)
            guard type == CMARK_NODE_LINK || type == CMARK_NODE_IMAGE else { continue }
            if let url = cmark_node_get_url(node), Markdown.isDangerousURL(String(cString: url)) {
                cmark_node_set_url(node, "")
            }
        }
    }
}

/// One node of a Markdown document tree, as a Swift value.
public struct MarkdownNode: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case document
        case blockQuote
        case list(ordered: Bool, start: Int)
        case item
        case codeBlock(info: String)
        case htmlBlock
        case paragraph
        case heading(level: Int)
        case thematicBreak
        case text
        case softBreak
        case lineBreak
        case code
        case htmlInline
        case emphasis
        case strong
        case link(url: String, title: String)
        case image(url: String, title: String)
        case other
    }

    public var kind: Kind
    /// The literal text of leaf nodes (text, code, code blocks, raw HTML); empty otherwise.
    public var literal: String
    /// 1-based source lines the node spans (0 when cmark does not know, as for inlines).
    public var startLine: Int
    public var endLine: Int
    public var children: [MarkdownNode]

    init(kind: Kind, literal: String, startLine: Int, endLine: Int, children: [MarkdownNode]) {
        self.kind = kind
        self.literal = literal
        self.startLine = startLine
        self.endLine = endLine
        self.children = children
    }

    init(_ node: OpaquePointer) {
        let type = cmark_node_get_type(node)
        func string(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }
        switch type {
        case CMARK_NODE_DOCUMENT: kind = .document
        case CMARK_NODE_BLOCK_QUOTE: kind = .blockQuote
        case CMARK_NODE_LIST:
            kind = .list(ordered: cmark_node_get_list_type(node) == CMARK_ORDERED_LIST, start: Int(cmark_node_get_list_start(node)))
        case CMARK_NODE_ITEM: kind = .item
        case CMARK_NODE_CODE_BLOCK: kind = .codeBlock(info: string(cmark_node_get_fence_info(node)))
        case CMARK_NODE_HTML_BLOCK: kind = .htmlBlock
        case CMARK_NODE_PARAGRAPH: kind = .paragraph
        case CMARK_NODE_HEADING: kind = .heading(level: Int(cmark_node_get_heading_level(node)))
        case CMARK_NODE_THEMATIC_BREAK: kind = .thematicBreak
        case CMARK_NODE_TEXT: kind = .text
        case CMARK_NODE_SOFTBREAK: kind = .softBreak
        case CMARK_NODE_LINEBREAK: kind = .lineBreak
        case CMARK_NODE_CODE: kind = .code
        case CMARK_NODE_HTML_INLINE: kind = .htmlInline
        case CMARK_NODE_EMPH: kind = .emphasis
        case CMARK_NODE_STRONG: kind = .strong
        case CMARK_NODE_LINK: kind = .link(url: string(cmark_node_get_url(node)), title: string(cmark_node_get_title(node)))
        case CMARK_NODE_IMAGE: kind = .image(url: string(cmark_node_get_url(node)), title: string(cmark_node_get_title(node)))
        default: kind = .other
        }
        literal = string(cmark_node_get_literal(node))
        startLine = Int(cmark_node_get_start_line(node))
        endLine = Int(cmark_node_get_end_line(node))
        var children: [MarkdownNode] = []
        var child = cmark_node_first_child(node)
        while let c = child {
            children.append(MarkdownNode(c))
            child = cmark_node_next(c)
        }
        self.children = children
    }

    /// The node's plain text: the literals of all its text-like descendants, concatenated.
    public var plainText: String {
        switch kind {
        case .text, .code, .codeBlock: return literal
        case .softBreak, .lineBreak: return " "
        default: return children.map(\.plainText).joined()
        }
    }
}
