import Foundation
import HandrailCore
import Testing

@Suite struct JSONTextTests {
    @Test func stringsAreEscapedAsJSONNeedsAndReadBackUnchanged() throws {
        let values = [
            "", "plain", "quote \" backslash \\ slash /", "line\nfeed\r\ttab", "bell \u{7} unit \u{1F} del \u{7F}",
            "ünïcödé → 🚀", String(repeating: "long line of Markdown\n", count: 5000) + "\"end\"",
        ]
        for value in values {
            var t = JSONText()
            t.string(value)
            let back = try JSONDecoder().decode(String.self, from: Data(t.text.utf8))
            #expect(back == value)
        }
        var t = JSONText()
        t.string("a\"b\\c\nd\u{1}e/f")
        #expect(t.text == #""a\"b\\c\nd\u0001e/f""#)
        // PostgreSQL text cannot hold NUL, so it is written as U+FFFD.
        var nul = JSONText()
        nul.string("a\u{0}b")
        #expect(nul.text == #""a\ufffdb""#)
    }
}
