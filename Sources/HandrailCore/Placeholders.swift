/// Runbook placeholders filled from an incident's alert labels: `$model`, `${model}` and
/// `:model` read the label `model`. The stored runbook text never changes; what is shown is
/// filled where it is shown, and a label's value is always text (escaped for where it goes,
/// never read as Markdown or HTML).
///
/// `$name` and `${name}` that no label fills stay visible and are marked; `:name` is filled
/// only when the label exists (a colon before a word is too common to mark), and only after
/// a character that is not a letter, digit, `:` or `/` (not `10:42`, `Note:x` or `http://x`).
public enum Placeholders {
    /// One placeholder found in a text: its range (in unicode scalars) and label name.
    struct Found {
        var range: Range<Int>
        var name: String
        var colon: Bool
    }

    /// Fills rendered HTML: text between tags only (never inside a tag or an attribute, so a
    /// link's address is never built from a label). Values are HTML-escaped; an unfilled
    /// `$name` is wrapped in `<mark class="placeholder">`.
    public static func fillHTML(_ html: String, labels: [String: String]) -> String {
        let scalars = Array(html.unicodeScalars)
        var out = String.UnicodeScalarView()
        var inTag = false
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "<" { inTag = true }
            if c == ">" { inTag = false }
            if !inTag, let found = find(scalars, at: i) {
                let written = String(String.UnicodeScalarView(scalars[found.range]))
                if let value = labels[found.name] {
                    out.append(contentsOf: escapeHTML(value).unicodeScalars)
                } else if found.colon {
                    out.append(contentsOf: written.unicodeScalars)
                } else {
                    let note = "no label \(found.name) on this incident"
                    out.append(contentsOf: "<mark class=\"placeholder\" title=\"\(escapeHTML(note))\">\(written)</mark>".unicodeScalars)
                }
                i = found.range.upperBound
                continue
            }
            out.append(c)
            i += 1
        }
        return String(out)
    }

    /// Fills plain text (a step's title, escaped later by its page or document): known
    /// placeholders become their values; others stay.
    public static func fillText(_ text: String, labels: [String: String]) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            if let found = find(scalars, at: i), let value = labels[found.name] {
                out.append(contentsOf: value.unicodeScalars)
                i = found.range.upperBound
                continue
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }

    /// The placeholder starting at `i`, if one does.
    static func find(_ s: [Unicode.Scalar], at i: Int) -> Found? {
        func isNameStart(_ c: Unicode.Scalar) -> Bool { c == "_" || (c.isASCII && c.properties.isAlphabetic) }
        func isName(_ c: Unicode.Scalar) -> Bool { isNameStart(c) || ("0"..."9").contains(c) }
        func name(from start: Int) -> Int? {
            guard start < s.count, isNameStart(s[start]) else { return nil }
            var end = start + 1
            while end < s.count, isName(s[end]) { end += 1 }
            return end
        }
        switch s[i] {
        case "$":
            if i + 1 < s.count, s[i + 1] == "{" {
                guard let end = name(from: i + 2), end < s.count, s[end] == "}" else { return nil }
                return Found(range: i..<(end + 1), name: String(String.UnicodeScalarView(s[(i + 2)..<end])), colon: false)
            }
            guard let end = name(from: i + 1) else { return nil }
            return Found(range: i..<end, name: String(String.UnicodeScalarView(s[(i + 1)..<end])), colon: false)
        case ":":
            if i > 0 {
                let before = s[i - 1]
                if isName(before) || before == ":" || before == "/" { return nil }
            }
            guard let end = name(from: i + 1) else { return nil }
            // `:name:` is an emoji shortcode or a path, not a placeholder.
            if end < s.count, s[end] == ":" || s[end] == "/" { return nil }
            return Found(range: i..<end, name: String(String.UnicodeScalarView(s[(i + 1)..<end])), colon: true)
        default:
            return nil
        }
    }

    /// Text as HTML text or an attribute's value: `&`, `<`, `>`, `"` and `'` escaped.
    public static func escapeHTML(_ text: String) -> String {
        // Most values (names, numbers, times) have nothing to escape: say so from the bytes.
        // Every page value goes through here (a Now page has ~900).
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return text }
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count + 16)
        for b in text.utf8 {
            switch b {
            case 0x26: out += Array("&amp;".utf8)
            case 0x3C: out += Array("&lt;".utf8)
            case 0x3E: out += Array("&gt;".utf8)
            case 0x22: out += Array("&quot;".utf8)
            case 0x27: out += Array("&#39;".utf8)
            default: out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
