import Foundation
import HandrailCore
import TestSupport
import Testing

@testable import HandrailServer
@testable import HandrailStore

private func at(_ text: String) -> Date { RFC3339.parse(text)! }

/// ml-platform: ana and ben weekly from Monday 09:00 Berlin, cho covering one night.
private let rotation = Rotation(
    name: "ml-platform",
    members: ["ana", "ben"],
    timeZone: "Europe/Berlin",
    shiftLength: ShiftLength(days: 7)!,
    handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
    startDate: LocalDate("2026-01-05")!,
    overrides: [RotationOverride(id: 4, user: "cho", start: at("2026-11-17T17:00:00Z"), end: at("2026-11-18T07:00:00Z"), reason: "swap")]
)

/// A week of the ML platform's on-call: one incident across the window's start, two opened
/// and resolved in it (one without a runbook), one still open with a rollback awaiting its
/// outcome, a skipped step, a change of mind, and the week before for comparison.
private func week47() throws -> HandoffLog {
    let window = try HandoffWindow.isoWeek("2026-W47", timeZone: "Europe/Berlin")
    let skipped = HandoffIncident.Gap(
        step: 2,
        title: "Open the drift dashboard",
        outcome: .skipped,
        note: "Grafana was down; used the PSI query instead",
        by: "ana"
    )
    let failed = HandoffIncident.Gap(step: 3, title: "Pause the canary", outcome: .failed, note: "argo rollouts pause timed out", by: "ben")
    var log = HandoffLog(
        rotation: rotation,
        window: window,
        incidents: [
            HandoffIncident(
                number: 95,
                title: "Feature drift on fraud-scorer (amount)",
                severity: .warning,
                state: .resolved,
                openedAt: at("2026-11-10T13:00:00Z"),
                acknowledgedAt: at("2026-11-10T13:04:00Z"),
                resolvedAt: at("2026-11-10T13:50:00Z"),
                owner: "ben",
                runbookId: "feature-drift",
                runbookVersion: 3
            ),
            HandoffIncident(
                number: 99,
                title: "Concept drift on ranker",
                severity: .critical,
                state: .resolved,
                openedAt: at("2026-11-12T15:00:00Z"),
                acknowledgedAt: at("2026-11-12T15:10:00Z"),
                resolvedAt: at("2026-11-17T08:00:00Z"),
                owner: "ana",
                runbookId: "concept-drift",
                runbookVersion: 2
            ),
            HandoffIncident(
                number: 101,
                title: "Feature drift on ranker (age, country)",
                severity: .critical,
                state: .resolved,
                openedAt: at("2026-11-16T09:12:00Z"),
                acknowledgedAt: at("2026-11-16T09:15:00Z"),
                resolvedAt: at("2026-11-16T10:40:00Z"),
                owner: "ana",
                runbookId: "feature-drift",
                runbookVersion: 3,
                gaps: [skipped]
            ),
            HandoffIncident(
                number: 102,
                title: "Canary guard breach: ranker v42 error rate 2.4× baseline",
                severity: .critical,
                state: .acknowledged,
                openedAt: at("2026-11-18T01:05:00Z"),
                acknowledgedAt: at("2026-11-18T01:30:00Z"),
                owner: "ben",
                runbookId: "canary-guard-breach",
                runbookVersion: 1,
                nextStep: "Compare canary and baseline side by side",
                gaps: [failed]
            ),
            HandoffIncident(
                number: 103,
                title: "GPUMemoryHigh on trainer-3",
                severity: .warning,
                state: .resolved,
                openedAt: at("2026-11-21T10:00:00Z"),
                resolvedAt: at("2026-11-21T10:20:00Z")
            ),
        ],
        decisions: [
            HandoffDecision(
                id: 6,
                incident: 101,
                kind: .hold,
                target: "ranker",
                decidedBy: "lena",
                decidedAt: at("2026-11-16T09:20:00Z"),
                rationale: "wait for the nightly retrain",
                status: "superseded"
            ),
            HandoffDecision(
                id: 7,
                incident: 101,
                kind: .rollForward,
                target: "ranker → v43",
                decidedBy: "lena",
                decidedAt: at("2026-11-16T09:45:00Z"),
                rationale: "v43 has the fixed feature pipeline",
                status: "effective"
            ),
            HandoffDecision(
                id: 8,
                incident: 102,
                kind: .rollback,
                target: "ranker v42 → v41",
                decidedBy: "ben",
                decidedAt: at("2026-11-18T01:40:00Z"),
                rationale: "error rate 2.4× for 10 min, over the 2× criterion",
                status: "awaiting_outcome"
            ),
        ],
        noise: [
            AlertNoise(alertname: "CanaryGuardBreached", alerts: 1, deliveries: 12),
            AlertNoise(alertname: "FeatureDriftHigh", alerts: 2, deliveries: 340),
            AlertNoise(alertname: "GPUMemoryHigh", alerts: 1, deliveries: 3),
        ],
        withoutRunbook: ["GPUMemoryHigh": 1],
        actionItems: [
            OpenActionItem(incident: 99, title: "Alert on concept drift a day earlier", owner: "ana", due: LocalDate("2026-12-01")!),
            OpenActionItem(incident: 95, title: "Add a schema check to the amount feature", owner: "ben", due: LocalDate("2026-11-20")!),
        ]
    )
    // ben is paged twice at night (Berlin) and twice by day; cho, who reads nights in New
    // York, once in her evening (after midnight in Berlin); ana once the week before.
    log.load = HandoffLoadInput(
        pages: [
            .init(user: "ana", at: at("2026-11-12T15:00:00Z"), incident: 99),
            .init(user: "ben", at: at("2026-11-18T01:06:00Z"), incident: 102),
            .init(user: "ben", at: at("2026-11-18T01:20:00Z"), incident: 102),
            .init(user: "ben", at: at("2026-11-18T07:30:00Z"), incident: 102),
            .init(user: "ben", at: at("2026-11-19T10:00:00Z"), incident: 102),
            .init(user: "cho", at: at("2026-11-17T23:30:00Z"), incident: 102),
        ],
        zones: ["cho": "America/New_York"],
        nightPageLimit: 1,
        pageLimit: 20
    )
    log.postmortemsNeeded = [NeededPostmortem(incident: 101, title: "Feature drift on ranker (age, country)", why: "critical")]
    // Rollouts: a promotion decided go in the window (after a hold), a traffic increase
    // still waiting, one rolled back at another gate (waits no more), and a go made the
    // week before (not listed as decided in this one).
    let ranker = ReleaseRef(namespace: "model-serving", name: "ranker", checksum: "6d5f8c7b9")
    let fraud = ReleaseRef(namespace: "model-serving", name: "fraud-scorer", checksum: "a1b2c3")
    log.rollouts = [
        HandoffRollout(
            gate: 7,
            release: ranker,
            stage: "confirm-promotion",
            openedAt: at("2026-11-18T09:00:00Z"),
            decisions: [
                .init(kind: .hold, by: "ben", at: at("2026-11-18T09:30:00Z"), rationale: "wait for the nightly eval", gate: 7),
                .init(kind: .go, by: "ana", at: at("2026-11-19T08:15:00Z"), rationale: "eval +0.4% NDCG, guards quiet for 24 h", gate: 7),
            ]
        ),
        HandoffRollout(gate: 9, release: ranker, stage: "confirm-traffic-increase #1", openedAt: at("2026-11-20T14:00:00Z"), decisions: []),
        HandoffRollout(
            gate: 11,
            release: fraud,
            stage: "confirm-traffic-increase #2",
            openedAt: at("2026-11-20T16:00:00Z"),
            decisions: [.init(kind: .rollback, by: "ana", at: at("2026-11-20T16:40:00Z"), rationale: "error rate 2.3x baseline", gate: 10)]
        ),
        HandoffRollout(
            gate: 5,
            release: fraud,
            stage: "confirm-rollout",
            openedAt: at("2026-11-13T10:00:00Z"),
            decisions: [.init(kind: .go, by: "ben", at: at("2026-11-13T10:05:00Z"), rationale: "shadow traffic clean", gate: 5)]
        ),
    ]
    return log
}

private let renderer = DocumentRenderer(directory: TestDatabase.checkoutRoot.appendingPathComponent("templates"))

/// Compares with `Tests/Fixtures/golden/<name>`; HANDRAIL_UPDATE_GOLDEN=1 writes it instead.
private func golden(_ name: String, _ text: String) throws {
    let file = TestDatabase.checkoutRoot.appendingPathComponent("Tests/Fixtures/golden/\(name)")
    if ProcessInfo.processInfo.environment["HANDRAIL_UPDATE_GOLDEN"] == "1" {
        try text.write(to: file, atomically: true, encoding: .utf8)
        return
    }
    let expected = try String(contentsOf: file, encoding: .utf8)
    #expect(text == expected, "\(name) differs from the golden file; run with HANDRAIL_UPDATE_GOLDEN=1 and review the diff")
}

@Suite struct HandoffDocumentTests {
    @Test func aWeekOfOnCallRendersToTheGoldenMarkdown() throws {
        let markdown = try renderer.handoff(HandoffDocument.build(try week47()))
        try golden("handoff-2026-W47.md", markdown)
        // Same log, same bytes.
        #expect(try renderer.handoff(HandoffDocument.build(try week47())) == markdown)
        // Each incident is listed once, under still open or resolved; the opened ones are counted.
        let incidents = try #require(markdown.components(separatedBy: "## Rollback decisions").first)
        for ref in ["INC-99", "INC-101", "INC-102", "INC-103"] {
            #expect(incidents.components(separatedBy: "**[\(ref)](").count == 2, "\(ref) is listed once")
        }
        #expect(incidents.contains("3 incidents opened in this window: 1 still open, 2 resolved."))
        // Rollouts: both decisions at the promotion gate, the waiting increase, nothing for
        // last week's go, and the rolled-back release's gate no longer waits.
        let rollouts = try #require(markdown.components(separatedBy: "## Rollouts").last?.components(separatedBy: "## Runbook gaps").first)
        #expect(rollouts.contains("- go at **model-serving/ranker** (6d5f8c7b9), confirm-promotion, by ana at Thu 2026-11-19 09:15 +01:00"))
        #expect(rollouts.contains("- hold at **model-serving/ranker**"))
        #expect(rollouts.contains("- Still waiting: **model-serving/ranker** (6d5f8c7b9), confirm-traffic-increase #1"))
        #expect(!rollouts.contains("shadow traffic clean") && !rollouts.contains("Still waiting: **model-serving/fraud-scorer**"))
    }

    @Test func onCallLoadReadsNightsInEachPersonsZoneAndFlagsWhoeverCrossedTheRotationsLimit() throws {
        let doc = HandoffDocument.build(try week47())
        let ben = try #require(doc.load.first { $0.user == "ben" })
        #expect(ben.flagged && ben.crossed == "2 night interruptions (limit 1)")
        #expect(ben.text.hasPrefix("4 pages (previous window 0), 2 at night, 3 out of hours (Europe/Berlin)"))
        // 23:30 UTC is after midnight in Berlin but 18:30 in New York, where cho lives: not a night.
        let cho = try #require(doc.load.first { $0.user == "cho" })
        #expect(!cho.flagged && cho.text.hasPrefix("1 page (previous window 0), 0 at night, 1 out of hours (America/New_York)"))
        #expect(doc.load.map(\.user) == ["ana", "ben", "cho"], "members in the rotation's order")
        #expect(doc.loadAverage.hasPrefix("2 pages, 1 at night"))
        #expect(OnCallLoad.isNight(at("2026-11-18T21:30:00Z"), zone: TimeZone(identifier: "Europe/Berlin")!))
        #expect(!OnCallLoad.isOutOfHours(at("2026-11-18T10:00:00Z"), zone: TimeZone(identifier: "Europe/Berlin")!))
        #expect(OnCallLoad.isOutOfHours(at("2026-11-21T12:00:00Z"), zone: TimeZone(identifier: "Europe/Berlin")!), "a Saturday")
    }

    @Test func anEmptyWeekSaysSoPlainly() throws {
        let log = HandoffLog(
            rotation: rotation,
            window: try HandoffWindow.isoWeek("2026-W46", timeZone: "Europe/Berlin"),
            incidents: [],
            decisions: [],
            noise: [],
            withoutRunbook: [:]
        )
        let markdown = try renderer.handoff(HandoffDocument.build(log))
        try golden("handoff-empty-week.md", markdown)
        #expect(markdown.contains("A quiet window: no incidents were opened, resolved or left open"))
    }

    @Test func anIncidentStillOpenInAnUnfinishedWindowIsOpenUntilNowNotTheWindowsEnd() throws {
        // INC-102 opened Wed 01:05 UTC; the week is read on Thursday 12:05, two days before it ends.
        let whileRunning = HandoffDocument.build(try week47(), now: at("2026-11-19T12:05:00Z"))
        #expect(whileRunning.stillOpen.first?.duration == "35 h", "\(whileRunning.stillOpen)")
        // Read after the week ended, it was open until the window's end.
        let after = HandoffDocument.build(try week47(), now: at("2026-12-01T00:00:00Z"))
        #expect(after.stillOpen.first?.duration == "117 h 55 min", "\(after.stillOpen)")
    }

    @Test func aWindowWithADSTChangeShowsBothOffsets() throws {
        let window = try HandoffWindow.isoWeek("2026-W13", timeZone: "Europe/Berlin")
        #expect(window.to.timeIntervalSince(window.from) == 167 * 3600)
        let doc = HandoffDocument.build(HandoffLog(rotation: rotation, window: window, incidents: [], decisions: [], noise: [], withoutRunbook: [:]))
        #expect(doc.from == "Mon 2026-03-23 00:00 +01:00")
        #expect(doc.to == "Mon 2026-03-30 00:00 +02:00")
        #expect(doc.onCall.map(\.to).contains("Mon 2026-03-23 09:00 +01:00"))
    }

    @Test func theDocumentSortsItsSectionsAndSpansTheWindowsEdges() throws {
        let doc = HandoffDocument.build(try week47())
        #expect(doc.opened.map(\.ref) == ["INC-101", "INC-102", "INC-103"])
        #expect(doc.resolved.map(\.ref) == ["INC-99", "INC-101", "INC-103"], "INC-99 opened the week before and resolved in this one")
        #expect(doc.stillOpen.map(\.ref) == ["INC-102"])
        #expect(doc.decisionsMade.map(\.status) == ["superseded", "effective", "awaiting_outcome"])
        #expect(doc.awaitingOutcome.map(\.id) == [8])
        #expect(doc.noisiest.map(\.alertname) == ["FeatureDriftHigh", "CanaryGuardBreached", "GPUMemoryHigh"])
        // ana until Monday 09:00 (shift 44), then ben, with cho's override inside his shift.
        #expect(doc.onCall.map(\.user) == ["ana", "ben", "cho", "ben"])
        // MTTA: this week (3 + 25) / 2 = 14 min; the week before (4 + 10) / 2 = 7 min.
        #expect(doc.measures[0].current == "14 min" && doc.measures[0].previous == "7 min")
    }

    @Test func valuesAreDataNotMarkdownOrHTML() throws {
        var log = try week47()
        log.incidents[2].title = "<script>alert(1)</script> **bold** [x](javascript:alert(1))\n# heading"
        let markdown = try renderer.handoff(HandoffDocument.build(log))
        let html = DocumentRenderer.html(markdown)
        #expect(!html.contains("<script>"))
        #expect(!html.contains("<strong>bold</strong>"))
        #expect(!html.contains("href=\"javascript"))
        #expect(!html.contains("<h1>heading"))
        #expect(html.contains("&lt;script&gt;"))
        #expect(html.contains("<h1>Handoff: ml-platform</h1>"))
    }

    @Test func aTemplateThatDoesNotParseIsNamedWithItsLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handrail-templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "# Handoff\n\n{{#opened}}\n- {{ref}}\n".write(to: dir.appendingPathComponent("handoff.md.mustache"), atomically: true, encoding: .utf8)
        do {
            _ = try DocumentRenderer(directory: dir).handoff(HandoffDocument.build(try week47()))
            Issue.record("an unclosed section rendered")
        } catch let error as TemplateError {
            #expect(error.template == "handoff.md.mustache")
            #expect(error.line >= 3)
        }
    }

    @Test func anEditedTemplateIsUsedOnTheNextRenderWithoutARestart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handrail-templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("handoff.md.mustache")
        let doc = HandoffDocument.build(try week47())
        let renderer = DocumentRenderer(directory: dir)
        try "# {{rotation}}\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(try renderer.handoff(doc) == "# ml-platform\n")
        #expect(try renderer.handoff(doc) == "# ml-platform\n", "the parsed template is reused")
        try "Handoff of {{rotation}}: {{count(opened)}} opened\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(try renderer.handoff(doc) == "Handoff of ml-platform: 3 opened\n")
        try "{{#opened}}\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: TemplateError.self) { try renderer.handoff(doc) }
    }

    /// Values with everything JSON must escape, and a missing optional.
    func awkwardDocument() throws -> HandoffDocument {
        var log = try week47()
        log.incidents[2].title = "quote \" backslash \\ slash / tab \t bell \u{7} newline \n unicode ü → 🚀"
        log.decisions[1].rationale = "v43 </script> fixes it; see https://example.com/a/b"
        return HandoffDocument.build(log)
    }

    @Test func theStoredDocumentIsTheAPIsSnakeCaseJSONAndReadsBackUnchanged() throws {
        let doc = try awkwardDocument()
        #expect(doc.opened.contains { $0.resolved == nil } && doc.opened.contains { $0.resolved != nil })
        let json = try HandoffStore.documentJSON(doc)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["time_zone"] as? String == "Europe/Berlin")
        #expect(object["gap_free"] is Bool && object["decisions_made"] is [Any] && object["timeZone"] == nil)
        #expect(json.contains("https://example.com/a/b"), "slashes are not escaped")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(HandoffDocument.self, from: Data(json.utf8)) == doc)
        #expect(try HandoffStore.document(json)["time_zone"] == .string("Europe/Berlin"))
    }

    @Test func timesAreWrittenInTheRotationsZoneAsTheCalendarReadsThem() throws {
        // Half-hour and negative offsets, both DST directions, dates before 1970.
        let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "Pacific/Chatham"]
        var calendar = Calendar(identifier: .gregorian)
        var seconds = -86_400.0 * 400 + 17
        while seconds < 86_400 * 365 * 60 {
            let date = Date(timeIntervalSince1970: seconds)
            for zone in zones {
                let tz = TimeZone(identifier: zone)!
                calendar.timeZone = tz
                let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: date)
                let offset = tz.secondsFromGMT(for: date)
                let sign = offset < 0 ? "-" : "+"
                let expected = String(
                    format: "%@ %04d-%02d-%02d %02d:%02d %@%02d:%02d",
                    ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][c.weekday! - 1],
                    c.year!,
                    c.month!,
                    c.day!,
                    c.hour!,
                    c.minute!,
                    sign,
                    abs(offset) / 3600,
                    abs(offset) % 3600 / 60
                )
                #expect(TimeFormatter(zone: zone).string(date) == expected, "\(zone) \(date)")
            }
            seconds += 86_400 * 13 + 3_600 * 7 + 61  // walks through every hour, weekday and month
        }
    }

    @Test func markdownEscapingLeavesPlainValuesAloneAndEscapesWhatCouldBeMarkup() {
        for plain in ["INC-42", "Mon 2026-11-16 09:00 +01:00", "ranker v42 → v41", "roll_forward", "a-b+c", "größe_änderung", "v1.2"] {
            #expect(MarkdownEscaping.escape(plain) == plain)
        }
        #expect(MarkdownEscaping.escape("_lead") == "\\_lead")
        #expect(MarkdownEscaping.escape("1. first") == "1\\. first")
        #expect(MarkdownEscaping.escape("12) x") == "12\\) x")
        #expect(DocumentRenderer.html(MarkdownEscaping.escape("1. first")) == "<p>1. first</p>\n", "not a list, and no backslash shows")
        #expect(MarkdownEscaping.escape("- item") == "\\- item")
        #expect(MarkdownEscaping.escape("a *b* `c` [d](e) <f> &g; \\h") == "a \\*b\\* \\`c\\` \\[d\\](e) \\<f> \\&g; \\\\h")
        #expect(MarkdownEscaping.escape("one\ntwo\r\n# three") == "one two  # three")
    }
}
