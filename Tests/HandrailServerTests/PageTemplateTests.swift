import Foundation
import HandrailCore
import Testing

@testable import HandrailServer

/// The page templates' Mustache, as the templates in `templates/` use it.
struct PageTemplateTests {
    func render(_ source: String, _ value: TemplateValue, partials: [String: String] = [:]) throws -> String {
        var parsed: [String: PageTemplate] = [:]
        for (name, text) in partials { parsed[name] = try PageTemplate(text) }
        return try PageTemplate(source).render(value, partials: parsed)
    }

    @Test func valuesAreEscapedUnlessTripleBracedAndMissingOnesAreNothing() throws {
        let value = TemplateValue.object(["title": .text("<b>\"drift\" & 'skew'</b>"), "n": .text("7")])
        #expect(
            try render("{{title}}|{{{title}}}|{{& title}}|{{n}}|{{missing}}", value)
                == "&lt;b&gt;&quot;drift&quot; &amp; &#39;skew&#39;&lt;/b&gt;|<b>\"drift\" & 'skew'</b>|<b>\"drift\" & 'skew'</b>|7|"
        )
        #expect(Placeholders.escapeHTML("café ☕ plain") == "café ☕ plain")
    }

    @Test func sectionsRepeatForListsShowForTrueAndTextAndInvertedOnesShowForNothing() throws {
        let value = TemplateValue.object([
            "rows": .list([.object(["name": .text("a")]), .object(["name": .text("b")])]),
            "none": .list([]), "yes": .bool(true), "no": .bool(false), "owner": .text("ada"), "gone": .null,
        ])
        #expect(try render("{{#rows}}[{{name}}]{{/rows}}{{^none}}empty{{/none}}{{#none}}x{{/none}}", value) == "[a][b]empty")
        #expect(
            try render("{{#yes}}Y{{/yes}}{{#no}}N{{/no}}{{^no}}n{{/no}}{{#owner}}owner {{.}}{{/owner}}{{#gone}}G{{/gone}}{{^gone}}g{{/gone}}", value)
                == "Yn" + "owner ada" + "g"
        )
        #expect(try render("{{^empty(rows)}}has rows{{/empty(rows)}}{{#empty(none)}} none{{/empty(none)}}", value) == "has rows none")
    }

    @Test func aNameIsLookedForOutwardsButANullStopsTheLookup() throws {
        let value = TemplateValue.object([
            "note": .text("the page note"),
            "steps": .list([.object(["title": .text("one"), "note": .null]), .object(["title": .text("two")])]),
            "user": .object(["name": .text("ada")]),
        ])
        #expect(try render("{{#steps}}{{title}}:{{note}};{{/steps}}", value) == "one:;two:the page note;")
        #expect(try render("{{user.name}}/{{#user}}{{name}}{{/user}}/{{user.nothing.deeper}}", value) == "ada/ada/")
    }

    @Test func aTagAloneOnItsLineTakesTheLineWithIt() throws {
        let value = TemplateValue.object(["rows": .list([.text("a"), .text("b")]), "show": .bool(false)])
        let source = "<ul>\n  {{#rows}}\n  <li>{{.}}</li>\n  {{/rows}}\n  {{! a comment }}\n{{#show}}\nhidden\n{{/show}}\n</ul>\n"
        #expect(try render(source, value) == "<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>\n")
        #expect(try render("a {{#show}}x{{/show}}\nb", value) == "a \nb", "not alone on its line: the line stays")
    }

    @Test func partialsRenderWithTheValuesWhereTheyAreUsed() throws {
        let value = TemplateValue.object(["rows": .list([.object(["n": .text("1")]), .object(["n": .text("2")])])])
        #expect(
            try render(
                "{{> header.html}}\n{{#rows}}{{> row.html}}{{/rows}}",
                value,
                partials: ["header.html": "<h1>\n", "row.html": "<li>{{n}}</li>"]
            )
                == "<h1>\n<li>1</li><li>2</li>"
        )
    }

    @Test func documentsCountListsKnowTheLastItemAndEscapeForMarkdown() throws {
        let value = TemplateValue.object([
            "people": .list([.text("ana"), .text("ben_x"), .text("*cho*")]), "none": .list([]),
        ])
        let source =
            "{{% CONTENT_TYPE: MARKDOWN}}\n{{count(people)}} of them: {{#people}}{{#first()}}first {{/first()}}{{.}}{{^last()}}, {{/last()}}{{/people}}\n"
        #expect(try render(source, value) == "3 of them: first ana, ben_x, \\*cho\\*\n")
        #expect(try render("{{count(none)}}|{{^first()}}outside a list{{/first()}}", value) == "0|outside a list")
        #expect(
            try render("{{people}}<{{#people}}{{.}}{{/people}}>", .object(["people": .text("<b>")])) == "&lt;b&gt;<&lt;b&gt;>",
            "pages escape HTML"
        )
    }

    @Test func aViewModelIsReadBySnakeCaseNamesWithLabelsAsTheyAre() throws {
        struct Row: Encodable {
            var openedIso = "2026-12-04T10:00:00Z"
            var owner: String? = nil
            var count = 3
            var labels = ["podName": "ranker-7", "alertname": "Drift"]
        }
        let value = TemplateEncoder.value(Row())
        #expect(value["opened_iso"] == .text("2026-12-04T10:00:00Z") && value["owner"] == .null && value["count"] == .text("3"))
        #expect(value["labels"]?["podName"] == .text("ranker-7"), "a label's name is data, not a property name")
        #expect(TemplateEncoder.value(Row(), naming: .asDeclared)["openedIso"] != nil)
    }

    @Test func aPartialThatIncludesItselfStopsInsteadOfRecursingForever() throws {
        let out = try render("{{> loop.html}}", .object([:]), partials: ["loop.html": "x{{> loop.html}}"])
        #expect(out == String(repeating: "x", count: PageTemplate.partialDepth))
    }

    @Test func aBrokenTemplateSaysWhatAndOnWhichLine() {
        func error(_ source: String) -> String {
            do {
                _ = try PageTemplate(source)
                return "parsed"
            } catch {
                return error.description
            }
        }
        #expect(error("one\n{{#rows}}\nthree") == "line 2: {{#rows}} is never closed")
        #expect(error("{{#a}}\n{{/b}}") == "line 2: {{/b}} closes {{#a}} of line 1")
        #expect(error("a\nb\n{{/a}}") == "line 3: {{/a}} closes no section")
        #expect(error("a {{name") == "line 1: a tag opened here is never closed with }}")
        #expect(error("{{=<% %>=}}") == "line 1: {{=<% %>=}}: templates here do not use this Mustache tag")
        #expect(
            error("{{#upper(x)}}{{/upper(x)}}") == "line 1: {{#upper(x)}}: the only functions a section can be are empty(name), first() and last()"
        )
        #expect(error("{{uppercased(title)}}") == "line 1: {{uppercased(title)}}: the only function a value can be is count(name)")
        #expect(error("{{% CONTENT_TYPE: TEXT}}") == "line 1: {{% CONTENT_TYPE: TEXT}}: the only pragma is CONTENT_TYPE: MARKDOWN or HTML")
    }

    @Test func everyTemplateInTheFolderParses() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../templates").standardized
        let templates = try PageTemplates(directory: directory)
        #expect(templates.templates["now.html"] != nil && templates.templates["incident.html"] != nil)
    }
}
