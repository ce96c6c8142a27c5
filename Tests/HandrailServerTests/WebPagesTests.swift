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
            let firstNumber = try #require(IncidentRef.number(ref))
            let firstID = try #require(try await IncidentStore(pool: f.pool).id(number: firstNumber))
            #expect(missed.text.contains("event: changed\ndata: \(firstID)\n"), "it names the incident: \(missed.text)")
            // A browser reconnecting says the last event it had (the SSE id): nothing since.
            let eventID = try #require(missed.text.firstMatch(of: /id: (\d+)\n/)).1
            let reconnected = try await viewer.request(now, headers: [WebController.lastEventID: String(eventID)])
            #expect(!reconnected.text.contains("event: changed"), "\(reconnected.text)")

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
            let id = try #require(try await IncidentStore(pool: f.pool).id(number: number))
            let heard = try await viewer.request(incident)
            #expect(heard.text.contains("event: changed\ndata: \(id)\n"), "the event names the incident: \(heard.text)")
            #expect((try await viewer.request("/live?since=abc")).status == .badRequest)
        }
    }

    /// A live Now page fetches only what changed: each list's order as numbers, with rows for
    /// the changed incidents and any the page lacks (the page keeps its own for the rest).
    @Test func aNowPageRefreshRendersOnlyTheRowsThatChangedOrAreNew() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            var viewer = Browser(client)
            _ = try await viewer.signIn("viewer-user", AccessFixture.password)
            let first = try #require(IncidentRef.number(try await f.fireDrift(client)))
            let page = try await viewer.request("/")
            #expect(page.text.contains(#"data-rows="/now/rows""#) && page.text.contains(#"<li class="warning" data-number="\#(first)">"#))
            // A second incident opens; the page's stream names it.
            let sent = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("g1", "firing", ["alertname": "GPUMemoryHigh", "service": "trainer"])])
            )
            #expect(sent.status == .ok, "\(sent.text)")
            let second = try #require((try await IncidentStore(pool: f.pool).list(IncidentFilter())).map(\.number).max())
            let store = IncidentStore(pool: f.pool)
            let secondID = try #require(try await store.id(number: second))
            let firstID = try #require(try await store.id(number: first))
            func rows(_ query: String) async throws -> String {
                let r = try await viewer.request("/now/rows?" + query)
                #expect(r.status == .ok, "\(r.text)")
                return r.text
            }
            let added = try await rows("changed=\(secondID)&shown=\(first)")
            #expect(added.contains(#"data-open-count="2""#), "\(added)")
            #expect(added.contains(#"href="/incidents/\#(second)""#), "the new incident's row")
            #expect(!added.contains(#"href="/incidents/\#(first)""#), "the page keeps its own row of the unchanged one")
            #expect(added.contains(#"data-open="\#(first),\#(second)""#) || added.contains(#"data-open="\#(second),\#(first)""#))
            // A page that lacks a row gets it even when it did not change.
            let lacking = try await rows("changed=\(secondID)&shown=")
            #expect(lacking.contains(#"href="/incidents/\#(first)""#) && lacking.contains(#"href="/incidents/\#(second)""#))
            // Resolved: it leaves the open list for the recently resolved, rendered.
            let resolved = try await client.execute(
                "/api/v1/incidents/\(first)/resolve",
                method: .post,
                headers: f.headers(.responder).merging([.contentType: "application/json"]),
                body: ByteBuffer(string: "{}")
            )
            #expect(resolved.status.code < 300, "\(resolved.text)")
            let moved = try await rows("changed=\(firstID)&shown=\(first),\(second)")
            #expect(moved.contains(#"data-open-count="1" data-open="\#(second)" data-resolved="\#(first)""#), "\(moved)")
            let resolvedRows = try #require(moved.range(of: #"data-rows="resolved""#))
            #expect(moved[resolvedRows.upperBound...].contains(#"href="/incidents/\#(first)""#), "\(moved)")
            #expect(!moved.contains(#"href="/incidents/\#(second)""#))
            // Bad input names the field.
            let bad = try await viewer.request("/now/rows?changed=1,x&shown=")
            #expect(bad.status == .badRequest && bad.text.contains("changed"), "\(bad.text)")
            let tooMany = try await viewer.request("/now/rows?shown=" + (1...401).map(String.init).joined(separator: ","))
            #expect(tooMany.status == .badRequest && tooMany.text.contains("shown"))
        }
    }

    /// A live incident page fetches what it lacks: new timeline entries, the alerts when they
    /// changed, and "reload" for changes that touch the rest of the page.
    @Test func anIncidentPageRefreshBringsNewEntriesAndAlertsOrSaysReload() async throws {
        try await AccessFixture.with { f, client in
            try await f.syncRunbooks()
            var viewer = Browser(client)
            _ = try await viewer.signIn("viewer-user", AccessFixture.password)
            let number = try #require(IncidentRef.number(try await f.fireDrift(client)))
            let page = try await viewer.request("/incidents/\(number)")
            let found = try #require(page.text.firstMatch(of: /data-updates="([^"]+)" data-after="(\d+)"/))
            let updates = String(found.1)
            var after = try #require(Int64(found.2))
            #expect(updates == "/incidents/\(number)/updates")
            #expect(!(try await viewer.request("\(updates)?after=\(after)")).text.contains("<li>"), "nothing new")
            func update() async throws -> String {
                let r = try await viewer.request("\(updates)?after=\(after)")
                #expect(r.status == .ok, "\(r.text)")
                let newest = try #require(r.text.firstMatch(of: /data-after="(\d+)"/))
                after = try #require(Int64(newest.1))
                return r.text
            }
            // A note: only the entry.
            let note = try await client.execute(
                "/api/v1/incidents/\(number)/notes",
                method: .post,
                headers: f.headers(.responder).merging([.contentType: "application/json"]),
                body: ByteBuffer(string: #"{"text":"looking at the age feature"}"#)
            )
            #expect(note.status.code < 300, "\(note.text)")
            let noted = try await update()
            #expect(noted.contains("looking at the age feature") && !noted.contains("data-reload") && !noted.contains(#"id="alerts""#))
            #expect(try await update().contains("<li>") == false, "the page now has it")
            // A second alert joins: the entry and the alerts.
            let labels = ["alertname": "FeatureDriftHigh", "model": "ranker", "feature": "age"]
            var other = labels
            other["feature"] = "country"
            let sent = try await client.execute(
                "/api/v1/alerts/alertmanager",
                method: .post,
                headers: f.amHeaders,
                body: alertmanagerBody([("d1", "firing", labels), ("d2", "firing", other)])
            )
            #expect(sent.status == .ok, "\(sent.text)")
            let joined = try await update()
            #expect(joined.contains(#"id="alerts""#) && joined.contains("Alerts (2)") && !joined.contains("data-reload"), "\(joined)")
            // A state change touches the page's header and actions: reload.
            let ack = try await client.execute(
                "/api/v1/incidents/\(number)/acknowledge",
                method: .post,
                headers: f.headers(.responder).merging([.contentType: "application/json"]),
                body: ByteBuffer(string: "{}")
            )
            #expect(ack.status.code < 300, "\(ack.text)")
            #expect(try await update().contains("data-reload"))
            let bad = try await viewer.request("\(updates)?after=soon")
            #expect(bad.status == .badRequest && bad.text.contains("after"))
            #expect(try await viewer.request("/incidents/424242/updates?after=0").status == .notFound)
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
