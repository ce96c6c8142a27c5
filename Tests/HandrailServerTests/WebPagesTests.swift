import Foundation
import HTTPTypes
import HandrailCore
import HandrailStore
import Hummingbird
import NIOCore
import TestSupport
import Testing

@testable import HandrailServer

/// The web UI's forms through a signed-in session (cookie and CSRF token, as a browser
/// sends them): the same rules as the API, refusals shown on the page, errors as pages.
@Suite struct WebPagesTests {
    @Test func aResponderWorksTheIncidentThroughFormsAndAViewerOnlyReads() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            try await f.makeRotation(client)
            let ref = try await f.fireDrift(client)
            let number = try #require(IncidentRef.number(ref))

            var viewer = Browser(client)
            _ = try await viewer.signIn("viewer-user", AccessFixture.password)
            let seen = try await viewer.request("/incidents/\(number)")
            #expect(seen.status == .ok)
            #expect(seen.text.contains("FeatureDriftHigh") && seen.text.contains("awaiting acceptance"))
            // A viewer gets no action forms (only signing out) …
            #expect(seen.text.components(separatedBy: "<form").count - 1 == 1)
            // … and posting one anyway is refused with an error page, not JSON.
            let token = try #require(Browser.csrfToken(in: seen))
            let refused = try await viewer.request("/incidents/\(number)/acknowledge", method: .post, form: ["csrf_token": token])
            #expect(refused.status == .forbidden)
            #expect(refused.headers[.contentType]?.hasPrefix("text/html") == true && refused.text.contains("your role does not allow this"))

            var responder = Browser(client)
            _ = try await responder.signIn("responder-user", AccessFixture.password)
            let page = try await responder.request("/incidents/\(number)")
            let csrf = try #require(Browser.csrfToken(in: page))
            #expect(page.text.contains("Accept owner"))
            // A form without the CSRF token is refused.
            #expect(try await responder.request("/incidents/\(number)/acknowledge", method: .post, form: [:]).status == .forbidden)
            // Accepting, then a step done: 303 back to the page, and the page shows who.
            let accepted = try await responder.request("/incidents/\(number)/roles/owner/accept", method: .post, form: ["csrf_token": csrf])
            #expect(accepted.status == .seeOther && accepted.headers[.location] == "/incidents/\(number)#roles")
            let done = try await responder.request("/incidents/\(number)/steps/1", method: .post, form: ["csrf_token": csrf, "outcome": "done"])
            #expect(done.status == .seeOther)
            let after = try await responder.request("/incidents/\(number)")
            #expect(after.text.contains("done by responder-user"))
            #expect(!after.text.contains("Accept owner"))
            // A failed step without a note: the page again, 400, the field named, nothing marked.
            let noNote = try await responder.request(
                "/incidents/\(number)/steps/2",
                method: .post,
                form: ["csrf_token": csrf, "outcome": "failed", "note": " "]
            )
            #expect(noNote.status == .badRequest)
            #expect(noNote.text.contains(#"<p class="error" role="alert">note: a failed step needs a note saying what happened</p>"#))
            #expect(!noNote.text.contains("failed by responder-user"))
            // The runbook lets leads and up decide: a responder's form proposes instead, and a
            // posted decision is refused with the runbook's reason.
            #expect(after.text.contains(#"action="/incidents/\#(number)/proposals" class="card" id="decision-form""#))
            #expect(!after.text.contains(#"action="/incidents/\#(number)/decisions" class="card""#))
            let decided = try await responder.request(
                "/incidents/\(number)/decisions",
                method: .post,
                form: [
                    "csrf_token": csrf, "kind": "rollback", "model": "ranker", "rationale": "v42 drifted",
                ]
            )
            #expect(decided.status == .forbidden && decided.text.contains("runbook feature-drift lets lead and up record decisions"))
            // Resolve with a note; then the page offers the postmortem draft.
            let resolved = try await responder.request(
                "/incidents/\(number)/resolve",
                method: .post,
                form: ["csrf_token": csrf, "note": "rolled back"]
            )
            #expect(resolved.status == .seeOther)
            let closed = try await responder.request("/incidents/\(number)")
            #expect(closed.text.contains(#"id="state">resolved<"#) && closed.text.contains("Generate the postmortem draft"))
            let again = try await responder.request("/incidents/\(number)/resolve", method: .post, form: ["csrf_token": csrf])
            #expect(again.status == .conflict && again.text.contains("is resolved; resolve applies to"))
        }
    }

    @Test func errorsArePagesForBrowsersAndJSONForTheAPI() async throws {
        try await AccessFixture.with { f, client in
            var browser = Browser(client)
            _ = try await browser.signIn("viewer-user", AccessFixture.password)
            let missing = try await browser.request("/incidents/424242")
            #expect(missing.status == .notFound)
            #expect(missing.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(missing.headers[.contentSecurityPolicy] != nil)
            #expect(missing.text.contains("<h1>Not found</h1>") && missing.text.contains("no incident INC-424242"))
            let nowhere = try await browser.request("/no/such/page")
            #expect(nowhere.status == .notFound && nowhere.text.contains("There is no page here."))
            let api = try await client.execute("/api/v1/incidents/424242", headers: f.headers(.viewer).merging([.accept: "text/html"]))
            #expect(api.status == .notFound && api.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    /// A page's live stream must say "changed" for a change made after the page was made but
    /// before the stream listened (the page's `since`), and only then.
    @Test func aLiveStreamTellsAPageOfAChangeItMissedWhileConnecting() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            var viewer = Browser(client)
            _ = try await viewer.signIn("viewer-user", AccessFixture.password)
            func liveURL(_ page: TestResponse) throws -> String {
                let match = try #require(page.text.firstMatch(of: /data-live="([^"]+)"/))
                return String(match.1).replacingOccurrences(of: "&amp;", with: "&")
            }
            let now = try liveURL(try await viewer.request("/"))
            #expect(now.hasPrefix("/live?since="))
            #expect(!(try await viewer.request(now)).text.contains("event: changed"), "nothing changed since the page")

            let ref = try await f.fireDrift(client)  // after the page, before its stream
            let missed = try await viewer.request(now)
            #expect(missed.text.contains("event: changed"), "\(missed.text)")

            let number = try #require(IncidentRef.number(ref))
            let incident = try liveURL(try await viewer.request("/incidents/\(number)"))
            #expect(incident.hasPrefix("/live?incident=\(number)&since="))
            #expect(!(try await viewer.request(incident)).text.contains("event: changed"))
            let note = try await client.execute(
                "/api/v1/incidents/\(number)/notes",
                method: .post,
                headers: f.headers(.responder).merging([.contentType: "application/json"]),
                body: ByteBuffer(string: #"{"text":"looking at f0"}"#)
            )
            #expect(note.status.code < 300, "\(note.text)")
            #expect((try await viewer.request(incident)).text.contains("event: changed"))
            #expect((try await viewer.request("/live?since=abc")).status == .badRequest)
        }
    }

    @Test func pagesShowTimesInTheReadersZoneTheirSettingElseTheirBrowsersElseUTC() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let number = try #require(IncidentRef.number(try await f.fireDrift(client)))
            var viewer = Browser(client)
            _ = try await viewer.signIn("viewer-user", AccessFixture.password)
            func opened() async throws -> String {
                let page = try await viewer.request("/incidents")
                let match = try #require(page.text.firstMatch(of: /opened ([A-Z][a-z]{2} \d{4}-\d{2}-\d{2} \d{2}:\d{2} [+-]\d{2}:\d{2})/))
                return String(match.1)
            }
            // No setting and no browser zone: UTC, said in the footer.
            #expect(try await opened().hasSuffix("+00:00"))
            let now = try await viewer.request("/")
            #expect(now.text.contains("Times in UTC (the default)"))
            // Where severity is listed, the page says what decides it.
            #expect(now.text.contains("Severity: the runbook's threshold for the alert's value, else the alert's own severity label"))
            #expect(try await viewer.request("/incidents").text.contains(#"id="severity-rule""#))
            // The browser's zone (the cookie handrail.js keeps), in December: -05:00.
            viewer.cookies["tz"] = "America%2FNew_York"
            #expect(try await opened().hasSuffix("-05:00"))
            #expect(try await viewer.request("/").text.contains("Times in America/New_York (your browser&#39;s)"))
            viewer.cookies["tz"] = "Mars%2FOlympus"
            #expect(try await opened().hasSuffix("+00:00"), "an unknown zone is ignored")
            // The person's own setting wins over the browser.
            viewer.cookies["tz"] = "America%2FNew_York"
            let bad = try await client.execute(
                "/api/v1/me/time-zone",
                method: .put,
                headers: f.headers(.viewer).merging([.contentType: "application/json"]),
                body: ByteBuffer(string: #"{"time_zone":"Europe/Atlantis"}"#)
            )
            #expect(bad.status == .badRequest && bad.text.contains(#""field":"time_zone""#))
            let page = try await viewer.request("/account/notifications")
            let csrf = try #require(Browser.csrfToken(in: page))
            let saved = try await viewer.request("/account/time-zone", method: .post, form: ["csrf_token": csrf, "time_zone": "Europe/Berlin"])
            #expect(saved.status == .seeOther)
            #expect(try await opened().hasSuffix("+01:00"))
            #expect(try await viewer.request("/").text.contains("Times in Europe/Berlin (your setting)"))
            let me = try await client.execute("/api/v1/me", headers: f.headers(.viewer))
            #expect(me.text.contains(#""time_zone":"Europe/Berlin""#))
            // The API answers in UTC whatever the person chose.
            let api = try await client.execute("/api/v1/incidents/\(number)", headers: f.headers(.viewer))
            #expect(api.text.contains("Z\"") && !api.text.contains("+01:00"))
        }
    }

    @Test func aStormOfChangesIsOneRefreshPerPagePerInterval() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let number = try #require(IncidentRef.number(try await f.fireDrift(client)))
            let headers = f.headers(.viewer).merging([.accept: "text/event-stream"])
            // A page 0 events behind, open for 200 ms with at most one event per 50 ms, while
            // 20 changes land: at most 5 events (a reload each), not one per change.
            async let stream = client.execute("/live?since=0", headers: headers)
            try await Task.sleep(for: .milliseconds(20))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<20 {
                    group.addTask {
                        _ = try await client.execute(
                            "/api/v1/incidents/\(number)/notes",
                            method: .post,
                            headers: f.headers(.responder).merging([.contentType: "application/json"]),
                            body: ByteBuffer(string: #"{"text":"change \#(n)"}"#)
                        )
                    }
                }
                try await group.waitForAll()
            }
            let events = try await stream.text.components(separatedBy: "event: changed").count - 1
            #expect((1...5).contains(events), "\(events) events")
        }
    }

    /// An incident page shows the newest 100 timeline entries, says how many there are, and
    /// links to the whole timeline; its cost follows what it shows.
    @Test func aLongTimelineShowsItsNewestEntriesAndLinksToTheWhole() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            let number = try #require(IncidentRef.number(try await f.fireDrift(client)))
            for n in 1...110 {
                let note = try await client.execute(
                    "/api/v1/incidents/\(number)/notes",
                    method: .post,
                    headers: f.headers(.responder).merging([.contentType: "application/json"]),
                    body: ByteBuffer(string: #"{"text":"check \#(n) done"}"#)
                )
                #expect(note.status.code < 300, "\(note.text)")
            }
            let entries = 110 + 2  // the notes, and the opening and its alerts
            let page = try await client.execute("/incidents/\(number)", headers: f.headers(.viewer)).text
            #expect(page.contains("check 110 done") && page.contains("check 11 done") && !page.contains("check 10 done"))
            #expect(page.contains("Showing the newest 100 of \(entries) entries."), "\(page)")
            #expect(page.contains("href=\"/incidents/\(number)?timeline=all#timeline\""))
            let whole = try await client.execute("/incidents/\(number)?timeline=all", headers: f.headers(.viewer)).text
            #expect(whole.contains("check 1 done") && whole.contains("check 110 done") && !whole.contains("Showing the newest"))
        }
    }
}
