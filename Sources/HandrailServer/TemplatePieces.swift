import Dispatch
import Mustache
import Synchronization

/// A document template cut at its top-level lines into pieces that render on their own, so a
/// busy week's handoff renders on every core: each piece holds at least one top-level
/// section (a list of hundreds of rows, say), and the pieces' outputs, in order, are the
/// whole template's output.
///
/// Why that holds: a cut is made only after a newline outside every section and tag, so each
/// line — and with it Mustache's standalone-line rule — stays whole in one piece, and a
/// section never spans two pieces. The pragmas (`{{% CONTENT_TYPE: … }}`) met at the top
/// level before a piece are repeated at its start, alone on a line (which renders nothing).
/// A template that changes its delimiters (`{{=<% %>=}}`), or whose tags do not balance, is
/// not cut: it renders whole. `TemplatePiecesTests` renders templates both ways.
struct TemplatePieces: Sendable {
    let templates: [MustacheTemplate]

    /// The pieces of a template's text; nil when it is not cut (one piece, or not safely).
    static func split(_ template: String) -> [String]? {
        let bytes = Array(template.utf8)
        let open = UInt8(ascii: "{")
        let close = UInt8(ascii: "}")
        let newline = UInt8(ascii: "\n")
        var pieces: [String] = []
        var pragmas: [String] = []
        var depth = 0
        var pieceStart = 0
        var pieceHasSection = false
        var pragmasBeforePiece: [String] = []
        var i = 0
        func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        /// Ends the piece that starts at `pieceStart` before `end`, its pragmas first.
        func cut(_ end: Int) { pieces.append(pragmasBeforePiece.map { $0 + "\n" }.joined() + text(pieceStart..<end)) }
        while i < bytes.count {
            if bytes[i] == newline {
                i += 1
                if depth == 0, pieceHasSection {
                    cut(i)
                    pieceStart = i
                    pieceHasSection = false
                    pragmasBeforePiece = pragmas
                }
                continue
            }
            guard bytes[i] == open, i + 2 < bytes.count, bytes[i + 1] == open else {
                i += 1
                continue
            }
            let kind = bytes[i + 2]
            let triple = kind == open
            // The tag's end: `}}}` for a triple mustache, else `}}`.
            var end = i + 2
            while end + 1 < bytes.count,
                !(bytes[end] == close && bytes[end + 1] == close && (!triple || (end + 2 < bytes.count && bytes[end + 2] == close)))
            {
                end += 1
            }
            guard end + 1 < bytes.count else { return nil }
            let after = end + (triple ? 3 : 2)
            switch kind {
            case UInt8(ascii: "="):
                return nil
            case UInt8(ascii: "#"), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "<"):
                if depth == 0 { pieceHasSection = true }
                depth += 1
            case UInt8(ascii: "/"):
                depth -= 1
                if depth < 0 { return nil }
            case UInt8(ascii: "%"):
                if depth == 0 { pragmas.append(text(i..<after)) }
            default:
                break
            }
            i = after
        }
        guard depth == 0 else { return nil }
        if pieceStart < bytes.count { cut(bytes.count) }
        return pieces.count > 1 ? pieces : nil
    }

    /// The parsed pieces of a template's text; nil when it is not cut.
    init?(_ text: String) {
        guard let texts = Self.split(text), let templates = try? texts.map({ try MustacheTemplate(string: $0) }) else { return nil }
        self.templates = templates
    }

    /// Renders the pieces at the same time, on as many threads as there are cores, and
    /// joins their outputs in order. `value` is only read.
    func render(_ value: Any) -> String {
        let outputs = Mutex([String](repeating: "", count: templates.count))
        let shared = UncheckedValue(value)
        DispatchQueue.concurrentPerform(iterations: templates.count) { n in
            let text = templates[n].render(shared.value)
            outputs.withLock { $0[n] = text }
        }
        return outputs.withLock { $0.joined() }
    }
}

/// A template value read by several renders at once. The document values are built once and
/// never changed afterwards (rows in immutable boxes), so sharing them is safe.
private struct UncheckedValue: @unchecked Sendable {
    let value: Any
    init(_ value: Any) { self.value = value }
}
