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

    @Test func objectsAndArraysGetTheirCommasAndLeaveOutWhatJSONCannotHold() throws {
        var w = JSONText()
        w.object { w in
            w.field("missing", nil as String?)
            w.field("name", "a")
            w.field("none", Double.nan)
            w.field("values", ["x": 1.5, "bad": .infinity])
            w.field("rows", [1, 2]) { w, n in
                w.object { w in
                    w.field("n", n)
                    w.field("labels", ["k": "v\"q"])
                    w.field("empty", [String: String]())
                }
            }
            w.field("last", true)
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(w.text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["name", "values", "rows", "last"])
        #expect(object["values"] as? [String: Double] == ["x": 1.5])
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows.map { $0["n"] as? Int } == [1, 2])
        #expect(rows.map { $0["labels"] as? [String: String] } == [["k": "v\"q"], ["k": "v\"q"]])
        #expect(w.text.hasPrefix(#"{"name":"a","values":{"x":1.5},"rows":[{"n":1,"#))
    }
}
