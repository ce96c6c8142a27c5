import Foundation
import Markdown
import Testing

@Suite struct MarkdownSafetyTests {
    /// Every upper/lower-case spelling of a word ("data" → data, Data, dAta, …).
    static func caseMixes(_ word: String) -> [String] {
        let letters = Array(word)
        return (0..<(1 << letters.count)).map { mask in
            String(letters.enumerated().map { i, c in mask & (1 << i) != 0 ? Character(c.uppercased()) : c })
        }
    }

    static let schemes = ["javascript", "vbscript", "file", "data"]

    /// The HTML must contain no href/src whose value starts with a dangerous scheme.
    static func assertNoDangerousURL(_ html: String, _ input: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lowered = html.lowercased()
        for attribute in ["href=\"", "src=\""] {
            var rest = lowered[...]
            while let range = rest.range(of: attribute) {
                let value = rest[range.upperBound...].prefix { $0 != "\"" }
                let compact = value.filter { !$0.isWhitespace && $0.asciiValue.map { $0 >= 0x20 } ?? true }
                for scheme in schemes {
                    #expect(
                        !compact.hasPrefix(scheme + ":") && !compact.hasPrefix(scheme + "&#58;"),
                        "\(input.debugDescription) rendered \(value)",
                        sourceLocation: sourceLocation
                    )
                }
                rest = rest[range.upperBound...]
            }
        }
    }

    @Test(arguments: schemes)
    func dangerousSchemesRemovedInEveryCaseMix(scheme: String) {
        for spelled in Self.caseMixes(scheme) {
            for input in [
                "[click](\(spelled):alert(1))",
                "![img](\(spelled):image/png;base64,AAAA)",
                "<\(spelled):alert(1)>",
                "[ref][x]\n\n[x]: \(spelled):alert(1)",
                "[spaced]( \(spelled):alert(1) )",
                "[angle](<\(spelled):alert(1)>)",
            ] {
                let html = Markdown.html(input)
                Self.assertNoDangerousURL(html, input)
            }
        }
    }

    @Test func obfuscatedSchemesAreRemoved() {
        let inputs = [
            "[a](java&#x09;script:alert(1))",
            "[a](&#x6A;avascript:alert(1))",
            "[a](java%0ascript:alert(1))",
            "[a](\u{01}javascript:alert(1))",
            "[a](jav&#x0A;ascript:alert(1))",
            "[a](javascript&#58;alert(1))",
            "[a](DATA:text/html;base64,PHNjcmlwdD4=)",
        ]
        for input in inputs {
            Self.assertNoDangerousURL(Markdown.html(input), input)
        }
    }

    @Test func rawHTMLIsNeverPassedThrough() {
        let inputs = [
            "<script>alert(1)</script>",
            "<SCRIPT SRC=//evil/x.js></SCRIPT>",
            "<img src=x onerror=alert(1)>",
            "<iframe src=\"https://evil\"></iframe>",
            "text <b onmouseover=alert(1)>bold</b> text",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<style>body{display:none}</style>",
            "<!-- comment --><svg onload=alert(1)>",
        ]
        for input in inputs {
            let html = Markdown.html(input).lowercased()
            for tag in ["<script", "<img", "<iframe", "<b ", "<a ", "<style", "<svg", "onerror", "onload", "onmouseover"] {
                #expect(!html.contains(tag), "\(input.debugDescription) → \(html)")
            }
        }
    }

    @Test func ordinaryLinksAndTextSurvive() {
        let html = Markdown.html(
            "See [the dashboard](https://grafana.example/d/abc?x=1&y=2), [mail](mailto:oncall@example.com), [local](/incidents/INC-42) and `kubectl rollout undo`."
        )
        #expect(html.contains("href=\"https://grafana.example/d/abc?x=1&amp;y=2\""))
        #expect(html.contains("href=\"mailto:oncall@example.com\""))
        #expect(html.contains("href=\"/incidents/INC-42\""))
        #expect(html.contains("<code>kubectl rollout undo</code>"))
        // A word that merely starts like a scheme is not a scheme.
        #expect(Markdown.isDangerousURL("datasheet.pdf") == false)
        #expect(Markdown.isDangerousURL("https://example.com/javascript:") == false)
    }

    @Test func textWithSpecialCharactersIsEscaped() {
        let html = Markdown.html("a < b && c > d \"quoted\"")
        #expect(html.contains("a &lt; b &amp;&amp; c &gt; d &quot;quoted&quot;"))
    }

    @Test func nulAndInvalidInputDoNotCrash() {
        let html = Markdown.html("before\u{0}after [x](javascript:\u{0}alert(1))")
        #expect(html.contains("before"))
        #expect(html.contains("after"))
        Self.assertNoDangerousURL(html, "nul")
        #expect(Markdown.html("") == "")
    }
}

@Suite struct MarkdownTreeTests {
    @Test func headingsListsAndLinesAreInTheTree() throws {
        let source = """
            # Model drift

            Intro paragraph.

            ## Steps
            1. Check the [dashboard](https://grafana.example/d/drift).
            2. Roll back:
               ```sh
               kubectl rollout undo deploy/model
               ```
            3. Tell #ml-oncall.
            """
        let document = MarkdownDocument(source)
        let blocks = document.root.children
        #expect(blocks.first?.kind == .heading(level: 1))
        #expect(blocks.first?.plainText == "Model drift")
        let stepsHeading = try #require(blocks.firstIndex { $0.kind == .heading(level: 2) && $0.plainText == "Steps" })
        let list = blocks[stepsHeading + 1]
        #expect(list.kind == .list(ordered: true, start: 1))
        #expect(list.children.count == 3)
        let second = list.children[1]
        #expect(second.startLine == 7)
        #expect(second.endLine == 10)
        #expect(second.children.contains { $0.kind == .codeBlock(info: "sh") && $0.literal == "kubectl rollout undo deploy/model\n" })
        #expect(document.sourceText(lines: second.startLine...second.endLine).contains("kubectl rollout undo"))
        let link = list.children[0].children[0].children.first { if case .link = $0.kind { true } else { false } }
        #expect(link?.kind == .link(url: "https://grafana.example/d/drift", title: ""))
    }
}
