import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import NIOCore
import TestSupport
import Testing

@testable import HandrailServer

@Suite struct RunbookRoutesTests {
    func json(_ r: TestResponse) throws -> Any { try JSONSerialization.jsonObject(with: Data(r.text.utf8)) }

    @Test func leadsSyncEveryoneReadsAndMatchExplainsItself() async throws {
        try await AccessFixture.with { f, client in
            let viewer: HTTPFields = [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "application/json"]
            let lead: HTTPFields = [.authorization: "Bearer \(f.tokens[.lead]!)", .accept: "application/json"]
            let refused = try await client.execute(
                "/api/v1/runbooks/sync",
                method: .post,
                headers: [.authorization: "Bearer \(f.tokens[.responder]!)"]
            )
            #expect(refused.status == .forbidden)
            let synced = try await client.execute("/api/v1/runbooks/sync", method: .post, headers: lead)
            #expect(synced.status == .ok)
            let created = try #require((try json(synced) as? [String: Any])?["created"] as? [String: Int])
            #expect(created.count >= 8)

            let all = try #require(try json(try await client.execute("/api/v1/runbooks", headers: viewer)) as? [[String: Any]])
            #expect(all.count == created.count)
            let search = try #require(try json(try await client.execute("/api/v1/runbooks?q=canary", headers: viewer)) as? [[String: Any]])
            #expect(search.compactMap { $0["id"] as? String } == ["canary-gate-waiting", "canary-guard-breach"])
            let byLabels = try #require(
                try json(try await client.execute("/api/v1/runbooks?alertname=FeaturesStale&label=feature_view%3Dusers", headers: viewer))
                    as? [[String: Any]]
            )
            #expect(byLabels.compactMap { $0["id"] as? String } == ["stale-features"])

            let match = try #require(
                try json(
                    try await client.execute("/api/v1/runbooks/match?alertname=ModelServingSLOBurn&label=service%3Dranker&value=3", headers: viewer)
                ) as? [String: Any]
            )
            #expect((match["runbook"] as? [String: Any])?["id"] as? String == "serving-slo-burn")
            #expect((match["reason"] as? String)?.contains("alertname=\"ModelServingSLOBurn\"") == true)
            #expect(match["severity"] as? String == "warning", "burn rate 3 is above 2, below 14.4")
            let none = try #require(
                try json(try await client.execute("/api/v1/runbooks/match?alertname=NobodyWroteThis", headers: viewer)) as? [String: Any]
            )
            #expect(none["runbook"] == nil || none["runbook"] is NSNull)
            #expect((none["reason"] as? String)?.contains("no runbook") == true)
            let missing = try await client.execute("/api/v1/runbooks/match", headers: viewer)
            #expect(missing.status == .badRequest)
            #expect(missing.text.contains("\"field\":\"alertname\""))

            let detail = try #require(try json(try await client.execute("/api/v1/runbooks/serving-slo-burn", headers: viewer)) as? [String: Any])
            #expect(((detail["steps"] as? [[String: Any]])?.count ?? 0) >= 4)
            #expect((detail["html"] as? String)?.contains("<h1>") == true)
            #expect((detail["source"] as? String)?.hasPrefix("---\nid: serving-slo-burn") == true)
            #expect(try await client.execute("/api/v1/runbooks/nope", headers: viewer).status == .notFound)
            #expect(try await client.execute("/api/v1/runbooks/serving-slo-burn/versions/7", headers: viewer).status == .notFound)
        }
    }

    @Test func oldVersionsStayReadableDiffableAndHostileMarkdownIsDefused() async throws {
        try await AccessFixture.with { f, client in
            let viewer: HTTPFields = [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "application/json"]
            let store = RunbookStore(pool: f.pool)
            func sync(_ text: String) async throws {
                let (runbook, problems) = RunbookParser.parse(text, path: "runbooks/h.md")
                #expect(problems.isEmpty, "\(problems)")
                _ = try await store.sync([("runbooks/h.md", text, try #require(runbook))], by: "test")
            }
            let v1 = """
                ---
                id: hostile
                title: Hostile
                match: { alertname: Hostile }
                ---
                <script>alert(1)</script><img src=x onerror=alert(1)>

                ## Steps
                1. Open [this](JaVaScRiPt:alert(document.cookie)) or [that](data:text/html;base64,PHNjcmlwdD4=).
                2. Then [entity](&#x6A;avascript:alert(1)) and <b onmouseover=alert(1)>bold</b>.
                """
            try await sync(v1)
            try await sync(v1.replacingOccurrences(of: "2. Then", with: "2. Afterwards"))
            let detail = try await client.execute("/api/v1/runbooks/hostile", headers: viewer)
            let body = try #require(try json(detail) as? [String: Any])
            let htmls = [body["html"] as? String ?? ""] + ((body["steps"] as? [[String: Any]]) ?? []).compactMap { $0["html"] as? String }
            #expect(htmls.count == 3)
            for html in htmls {
                let lower = html.lowercased()
                for bad in ["<script", "onerror", "onmouseover", "href=\"javascript:", "href=\"data:", "<img src=\"x"] {
                    #expect(!lower.contains(bad), "\(html)")
                }
            }
            let old = try #require(try json(try await client.execute("/api/v1/runbooks/hostile/versions/1", headers: viewer)) as? [String: Any])
            #expect((old["source"] as? String)?.contains("2. Then") == true)
            let versions = try #require(try json(try await client.execute("/api/v1/runbooks/hostile/versions", headers: viewer)) as? [[String: Any]])
            #expect(versions.compactMap { $0["version"] as? Int } == [2, 1])
            let diff = try #require(try json(try await client.execute("/api/v1/runbooks/hostile/diff?from=1", headers: viewer)) as? [String: Any])
            let text = try #require(diff["diff"] as? String)
            #expect(text.contains("-2. Then"))
            #expect(text.contains("+2. Afterwards"))
            #expect(diff["to"] as? Int == 2)
            #expect(try await client.execute("/api/v1/runbooks/hostile/diff", headers: viewer).status == .badRequest)
            // The page: the same safe HTML, under the strict policy.
            let page = try await client.execute("/runbooks/hostile", headers: [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "text/html"])
            #expect(page.status == .ok)
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            let article = try #require(
                page.text.components(separatedBy: #"<article class="runbook">"#).last?.components(separatedBy: "</article>").first
            )
            let lower = article.lowercased()
            #expect(SecurityHeaderTests.inlineScripts(page.text) == 0)
            for bad in ["<script", "onerror", "onmouseover", "href=\"javascript:", "href=\"data:"] { #expect(!lower.contains(bad), "\(bad)") }
            #expect(page.text.contains("Afterwards"))
            let oldPage = try await client.execute(
                "/runbooks/hostile?version=1",
                headers: [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "text/html"]
            )
            #expect(oldPage.text.contains("Then") && oldPage.text.contains("version 1 of 2"))
            // The page lists both versions and compares them; the diff page marks the lines.
            let html: HTTPFields = [.authorization: "Bearer \(f.tokens[.viewer]!)", .accept: "text/html"]
            #expect(page.text.contains(#"<a href="/runbooks/hostile?version=1">version 1</a>"#) && page.text.contains("<strong>version 2</strong>"))
            let compared = try await client.execute("/runbooks/hostile/diff?from=1&to=2", headers: html)
            #expect(compared.status == .ok)
            #expect(compared.text.contains(#"<span class="add">+2. Afterwards"#))
            #expect(SecurityHeaderTests.inlineScripts(compared.text) == 0 && !compared.text.contains("<script>"))
            #expect(try await client.execute("/runbooks/hostile/diff?from=7", headers: html).status == .notFound)
            // Search: every word must appear; none found is said plainly.
            let found = try await client.execute("/runbooks?q=hostile", headers: html)
            #expect(found.text.contains(#"href="/runbooks/hostile""#))
            let none = try await client.execute("/runbooks?q=hostile+zebra", headers: html)
            #expect(!none.text.contains(#"href="/runbooks/hostile""#) && none.text.contains("No runbook mentions “hostile zebra”."))
        }
    }
}
