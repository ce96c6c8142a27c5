import Foundation
import HandrailCore
import Markdown
import Testing

let drift = """
    ---
    id: model-drift-alarm
    title: Model input drift alarm
    match:
      alertname: FeatureDriftHigh
      model: /fraud-.*/
    group_by: [alertname, model]
    severity: warning
    owners: ml-platform
    thresholds:
      - { metric: psi, warning: 0.1, critical: 0.2 }
      - { metric: accuracy, warning: 0.9, critical: 0.8, direction: lower }
    auto_resolve: false
    reopen_window: 2h
    rollback:
      allowed: true
      decided_by: [lead, manager]
    ---
    # Model input drift alarm

    Intro.

    ## Steps
    1. Confirm the drift is real: open [the dashboard](https://grafana.example/d/drift).
    2. Compare PSI per feature:
       ```sql
       SELECT feature, psi FROM drift_report ORDER BY psi DESC LIMIT 10;
       ```
    3. Decide: retrain, or alert-only.

    ## Notes
    Not a step.
    """

func runbook(_ text: String, path: String = "r.md") throws -> Runbook {
    let (runbook, problems) = RunbookParser.parse(text, path: path)
    #expect(problems.isEmpty, "\(problems)")
    return try #require(runbook)
}

@Suite struct RunbookParsingTests {
    @Test func frontMatterAndStepsAreRead() throws {
        let r = try runbook(drift)
        #expect(r.id == "model-drift-alarm")
        #expect(
            r.match == [LabelMatcher(label: "alertname", value: .exact("FeatureDriftHigh")), LabelMatcher(label: "model", value: .regex("fraud-.*"))]
        )
        #expect(r.groupBy == ["alertname", "model"])
        #expect(r.owners == "ml-platform")
        #expect(r.autoResolve == false)
        #expect(r.reopenWindow == 7200)
        #expect(r.rollback == RollbackPolicy(allowed: true, decidedBy: [.lead, .manager]))
        #expect(r.steps.map(\.index) == [1, 2, 3])
        #expect(r.steps[0].title == "Confirm the drift is real: open the dashboard")
        #expect(r.steps[0].markdown == "Confirm the drift is real: open [the dashboard](https://grafana.example/d/drift).")
        #expect(r.steps[1].markdown == "Compare PSI per feature:\n```sql\nSELECT feature, psi FROM drift_report ORDER BY psi DESC LIMIT 10;\n```")
        #expect(!r.steps.contains { $0.markdown.contains("Not a step") })
    }

    @Test func defaultsApplyWhenKeysAreLeftOut() throws {
        let r = try runbook("---\nid: x\ntitle: X\nmatch: { alertname: X }\n---\n## Steps\n1. Look.\n")
        #expect(r.groupBy == ["alertname", "service"])
        #expect(r.severity == .warning)
        #expect(r.autoResolve)
        #expect(r.reopenWindow == 3600)
        #expect(r.rollback.decidedBy == [.lead, .manager, .admin])
    }

    /// Every lint error, with the line it is on.
    @Test(arguments: [
        ("id: x\n", 1, "no YAML front matter"),
        ("---\nid: x\n", 1, "not closed"),
        ("---\nid: x\ntitle: [unclosed\n---\n## Steps\n1. a\n", 4, "bad YAML"),
        ("---\nid: x\ntitle: X\nmatch: { alertname: X }\ncolour: red\n---\n## Steps\n1. a\n", 5, "unknown key \"colour\""),
        ("---\ntitle: X\nmatch: { alertname: X }\n---\n## Steps\n1. a\n", 2, "missing id"),
        ("---\nid: x\nmatch: { alertname: X }\n---\n## Steps\n1. a\n", 2, "missing title"),
        ("---\nid: x\ntitle: X\n---\n## Steps\n1. a\n", 2, "missing match"),
        ("---\nid: Not A Slug\ntitle: X\nmatch: { alertname: X }\n---\n## Steps\n1. a\n", 2, "must be a slug"),
        ("---\nid: x\ntitle: X\nmatch:\n  alertname: X\n  model: /fraud-(/\n---\n## Steps\n1. a\n", 6, "invalid regular expression"),
        (
            "---\nid: x\ntitle: X\nmatch: { alertname: X }\nthresholds:\n  - { metric: psi, warning: 0.3, critical: 0.2 }\n---\n## Steps\n1. a\n", 6,
            "out of order"
        ),
        (
            "---\nid: x\ntitle: X\nmatch: { alertname: X }\nthresholds:\n  - { metric: acc, warning: 0.8, critical: 0.9, direction: lower }\n---\n## Steps\n1. a\n",
            6, "out of order"
        ),
        (
            "---\nid: x\ntitle: X\nmatch: { alertname: X }\nthresholds:\n  - { metric: psi }\n---\n## Steps\n1. a\n", 6,
            "needs warning, critical or both"
        ),
        ("---\nid: x\ntitle: X\nmatch: { alertname: X }\nrollback:\n  decided_by: [lead, boss]\n---\n## Steps\n1. a\n", 6, "unknown role \"boss\""),
        (
            "---\nid: x\ntitle: X\nmatch: { alertname: X }\nrollback:\n  decided_by: []\n---\n## Steps\n1. a\n", 6,
            "rollback.decided_by must name at least one role"
        ),
        (
            "---\nid: x\ntitle: X\nmatch: { alertname: X }\nrollback:\n  verification_window: soon\n---\n## Steps\n1. a\n", 6,
            "rollback.verification_window must be a duration"
        ),
        ("---\nid: x\ntitle: X\nmatch: { alertname: X }\nseverity: apocalyptic\n---\n## Steps\n1. a\n", 5, "severity must be one of"),
        ("---\nid: x\ntitle: X\nmatch: { alertname: X }\nreopen_window: soon\n---\n## Steps\n1. a\n", 5, "reopen_window"),
        ("---\nid: x\ntitle: X\nmatch: { alertname: X }\n---\n# Title\n\nNo steps here.\n", 6, "no \"## Steps\" section"),
        ("---\nid: x\ntitle: X\nmatch: { alertname: X }\n---\n# Title\n\n## Steps\n- unordered\n", 8, "has no numbered list"),
    ])
    func lintErrorsNameTheirLine(text: String, line: Int, message: String) {
        let (runbook, problems) = RunbookParser.parse(text, path: "runbooks/x.md")
        #expect(runbook == nil)
        let found = problems.first { $0.message.contains(message) }
        #expect(found != nil, "expected \(message.debugDescription) in \(problems)")
        #expect(found?.line == line, "\(problems)")
        #expect(found?.description.hasPrefix("runbooks/x.md:\(line): ") == true)
    }

    @Test func duplicateIdsAndEqualSpecificityOverlapsAreLintErrors() {
        let a = "---\nid: a\ntitle: A\nmatch:\n  alertname: X\n  service: /api-.*/\n---\n## Steps\n1. a\n"
        let sameId = "---\nid: a\ntitle: A2\nmatch: { alertname: Y }\n---\n## Steps\n1. a\n"
        let tie = "---\nid: c\ntitle: C\nmatch:\n  alertname: X\n  env: prod\n---\n## Steps\n1. a\n"
        let disjoint = "---\nid: d\ntitle: D\nmatch:\n  alertname: Y\n  service: web\n---\n## Steps\n1. a\n"
        let moreSpecific = "---\nid: e\ntitle: E\nmatch:\n  alertname: X\n  service: api-1\n  env: prod\n---\n## Steps\n1. a\n"
        let (runbooks, problems) = RunbookParser.lint([("a.md", a), ("b.md", sameId), ("c.md", tie), ("d.md", disjoint), ("e.md", moreSpecific)])
        #expect(runbooks.count == 5)
        #expect(
            problems.map(\.description).sorted() == [
                "b.md:2: duplicate id \"a\" (also in a.md)",
                "c.md:4: matches the same alerts as a.md with equal specificity (2 matchers); add a matcher to the more specific one",
            ]
        )
    }
}

@Suite struct RunbookMatchingTests {
    func make(_ id: String, _ match: [String: String]) throws -> Runbook {
        let lines = match.sorted { $0.key < $1.key }.map { "  \($0.key): \"\($0.value)\"" }.joined(separator: "\n")
        return try runbook("---\nid: \(id)\ntitle: \(id)\nmatch:\n\(lines)\n---\n## Steps\n1. a\n")
    }

    @Test func mostMatchersWinAndTheReasonNamesThem() throws {
        let general = try make("general", ["alertname": "HighLatency"])
        let checkout = try make("checkout", ["alertname": "HighLatency", "service": "/checkout(-.*)?/"])
        let runbooks = [general, checkout]
        let m = try #require(runbooks.bestMatch(for: ["alertname": "HighLatency", "service": "checkout-eu", "pod": "x"]))
        #expect(m.runbook.id == "checkout")
        #expect(m.reason == "matched checkout on alertname=\"HighLatency\", service=~/checkout(-.*)?/")
        #expect(runbooks.bestMatch(for: ["alertname": "HighLatency", "service": "search"])?.runbook.id == "general")
        // Regexes match the whole value, as Prometheus matchers do.
        #expect(runbooks.bestMatch(for: ["alertname": "HighLatency", "service": "my-checkout"])?.runbook.id == "general")
        #expect(runbooks.bestMatch(for: ["alertname": "Other"]) == nil)
        #expect(runbooks.bestMatch(for: ["service": "checkout"]) == nil, "a missing label never matches")
    }

    @Test func anIncidentsTitleIsTheSummaryWithoutTheSpaceAroundIt() throws {
        let checkout = try make("checkout", ["alertname": "HighLatency"])
        func title(_ annotations: [String: String]) -> String {
            let alert = NormalizedAlert(
                source: .generic,
                fingerprint: "f",
                status: .firing,
                labels: ["alertname": "HighLatency", "service": "checkout"],
                annotations: annotations
            )
            return AlertRouter.route(alert, runbooks: [RunbookCandidate(runbook: checkout, version: 1)]).title
        }
        #expect(title(["summary": "p99 above 2 s"]) == "p99 above 2 s")
        #expect(title(["summary": " \t\u{A0}p99 above 2 s\u{3000}\r\n"]) == "p99 above 2 s", "tabs, no-break and ideographic spaces, line ends")
        #expect(title(["summary": "  inner  spaces  stay "]) == "inner  spaces  stay")
        #expect(title(["summary": "\u{200B}zero width is not white space\u{200B}"]) == "\u{200B}zero width is not white space\u{200B}")
        #expect(title(["summary": " \n ", "description": " Latency ✓ "]) == "Latency ✓", "a blank summary gives way")
        #expect(title([:]) == "HighLatency (checkout)")
    }

    /// Open incidents are found again by their grouping key: it is made of Swift's
    /// `debugDescription` of each value and must stay byte for byte what it was.
    @Test func groupingKeysQuoteValuesExactlyAsDebugDescriptionDoes() {
        let values =
            [
                "checkout", "", "a b", "say \"hi\"", "back\\slash", "tab\tand\nline", "ünïcödé ✓", "emoji 🚨", "e\u{301}", "\u{7F}del", "\u{0}nul",
                "{braces}, commas=", "~!@#$%^&*()_+`-=[]{}|;':,./<>?",
            ] + (0..<128).map { String(UnicodeScalar(UInt8($0))) }
        for value in values {
            #expect(
                AlertRouter.groupingKey(["alertname": value, "service": value], groupBy: ["service"])
                    == "alertname=\(value.debugDescription), service=\(value.debugDescription)",
                "\(value.debugDescription)"
            )
        }
        #expect(AlertRouter.groupingKey(["alertname": "X"], groupBy: ["alertname", "service"]) == #"alertname="X", service="""#)
    }

    @Test func regexMatchersGiveTheSameAnswersFromManyTasksAtOnce() async {
        let matcher = LabelMatcher(label: "model", value: .regex("fraud-(v[0-9]+|canary)"))
        let cases: [(String, Bool)] = [("fraud-v7", true), ("fraud-canary", true), ("fraud-v", false), ("xfraud-v7", false), ("fraud-v7x", false)]
        let wrong = await withTaskGroup(of: Int.self) { group in
            for t in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for n in 0..<2_000 {
                        let (value, expected) = cases[(n + t) % cases.count]
                        if matcher.matches(["model": value]) != expected { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }

    @Test func tiesChooseTheFirstIdAndSaySo() throws {
        let m = try #require([try make("b", ["alertname": "X"]), try make("a", ["alertname": "X"])].bestMatch(for: ["alertname": "X"]))
        #expect(m.runbook.id == "a")
        #expect(m.tiedWith == ["b"])
        #expect(m.reason.contains("tied with b"))
    }

    @Test func thresholdsWorkInBothDirections() throws {
        let r = try runbook(drift)
        #expect(r.severity(value: 0.05, labels: ["metric": "psi"]) == .info)
        #expect(r.severity(value: 0.1, labels: ["metric": "psi"]) == .warning)
        #expect(r.severity(value: 0.25, labels: ["metric": "psi"]) == .critical)
        #expect(r.severity(value: 0.95, labels: ["metric": "accuracy"]) == .info)
        #expect(r.severity(value: 0.85, labels: ["metric": "accuracy"]) == .warning)
        #expect(r.severity(value: 0.8, labels: ["metric": "accuracy"]) == .critical)
        // Without a value: the alert's severity label, else the runbook's default.
        #expect(r.severity(value: nil, labels: ["severity": "critical"]) == .critical)
        #expect(r.severity(value: nil, labels: ["severity": "page-everyone"]) == .warning)
        #expect(r.severity(value: nil, labels: [:]) == .warning)
    }

    @Test func theSeverityComesWithTheRuleThatDecidedIt() throws {
        let r = try runbook(drift)
        let (severity, rule) = r.severityRule(value: 0.31, labels: ["metric": "psi", "severity": "warning"])
        #expect(severity == .critical)
        #expect(
            rule == "critical: the value 0.3 reaches the runbook's critical threshold 0.2 for psi (higher is worse); the alert's label said warning"
        )
        #expect(
            r.severityRule(value: 0.05, labels: ["metric": "psi"]).rule.hasPrefix("info: the value 0.05 is short of the runbook's thresholds for psi")
        )
        #expect(
            r.severityRule(value: nil, labels: ["severity": "critical"]).rule
                == "critical: the alert's severity label (no value read against a threshold of the runbook)"
        )
        #expect(r.severityRule(value: nil, labels: [:]).rule.hasPrefix("warning: the runbook's default severity"))
    }

    @Test func valuesAreShownWithTheirThresholdsPrecisionNeverAcrossALimit() throws {
        let psi = Threshold(metric: "psi", warning: 0.1, critical: 0.25)
        #expect(NumberText.value(0.3834826453614822, against: psi) == "0.38")
        #expect(NumberText.value(0.2496, against: psi) == "0.2496", "0.25 would read as critical")
        #expect(NumberText.value(0.004, against: psi) == "0.004")
        #expect(NumberText.value(3, against: psi) == "3")
        #expect(NumberText.plain(0.3834826453614822) == "0.3835" && NumberText.plain(42) == "42")
    }

    @Test func hostileMarkdownInARunbookRendersNothingExecutable() throws {
        let hostile = """
            ---
            id: hostile
            title: Hostile
            match: { alertname: X }
            ---
            <script>alert(1)</script>
            <img src=x onerror=alert(1)>

            ## Steps
            1. Click [here](JaVaScRiPt:alert(1)) or [there](data:text/html;base64,PHNjcmlwdD4=).
            2. Or [this](&#106;avascript:alert(1)) and ![img](data:image/png;base64,AAAA) and [vb](VBScript:msgbox).
            """
        let r = try runbook(hostile)
        for html in [Markdown.html(r.body)] + r.steps.map({ Markdown.html($0.markdown) }) {
            let lower = html.lowercased()
            #expect(!lower.contains("<script"), "\(html)")
            #expect(!lower.contains("onerror"), "\(html)")
            #expect(!lower.contains("<img src=\"x"), "\(html)")
            for scheme in ["javascript:", "data:", "vbscript:"] {
                #expect(!lower.contains("href=\"\(scheme)"), "\(html)")
                #expect(!lower.contains("src=\"\(scheme)"), "\(html)")
            }
        }
    }
}

@Suite struct ShippedRunbookTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("runbooks")

    /// Every runbook in runbooks/ lints clean and is useful on day one: owners, thresholds,
    /// and several concrete steps.
    @Test func everyShippedRunbookParsesAndLintsClean() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".md") }.sorted()
        let files = try names.map { ("runbooks/" + $0, try String(contentsOf: Self.directory.appendingPathComponent($0), encoding: .utf8)) }
        let (runbooks, problems) = RunbookParser.lint(files)
        #expect(problems.isEmpty, "\(problems.map(\.description).joined(separator: "\n"))")
        #expect(runbooks.count >= 8)
        for (path, runbook) in runbooks {
            #expect(runbook.owners != nil, "\(path) has no owners")
            #expect(!runbook.thresholds.isEmpty, "\(path) has no thresholds")
            #expect(runbook.steps.count >= 4, "\(path) has \(runbook.steps.count) steps")
            #expect(runbook.steps.contains { $0.markdown.contains("```") }, "\(path) has no command or query")
        }
        let ids = Set(runbooks.map(\.runbook.id))
        for expected in [
            "feature-drift", "concept-drift", "canary-guard-breach", "serving-slo-burn", "training-serving-skew", "stale-features",
            "data-quality-breach", "retraining-failed",
        ] {
            #expect(ids.contains(expected), "missing \(expected)")
        }
        // Each shipped alert name finds its own runbook.
        let all = runbooks.map(\.runbook)
        #expect(all.bestMatch(for: ["alertname": "CanaryGuardBreached", "model": "fraud", "rollout": "r1"])?.runbook.id == "canary-guard-breach")
        #expect(all.bestMatch(for: ["alertname": "FeatureDriftHigh", "model": "fraud"])?.runbook.id == "feature-drift")
    }
}

@Suite struct LineDiffTests {
    @Test func unifiedDiffShowsChangedLinesWithContext() {
        let old = (1...10).map { "line \($0)" }.joined(separator: "\n")
        let new = old.replacingOccurrences(of: "line 5", with: "line five") + "\nline 11"
        let diff = LineDiff.unified(old, new, oldName: "x v1", newName: "x v2", context: 1)
        #expect(
            diff == """
                --- x v1
                +++ x v2
                @@ -4,3 +4,3 @@
                 line 4
                -line 5
                +line five
                 line 6
                @@ -10,1 +10,2 @@
                 line 10
                +line 11

                """
        )
        #expect(LineDiff.unified(old, old, oldName: "a", newName: "b").isEmpty)
    }

    @Test func stepTitlesAreTheFirstSentenceWithoutTheColonBeforeACodeBlock() throws {
        let text = """
            ---
            id: drift
            title: Drift
            match:
              alertname: FeatureDriftHigh
            ---
            ## Steps
            1. Confirm the drift is real and not a reporting artefact. Open the drift dashboard for the
               model and check the feature with the highest score:
               ```promql
               topk(5, feature_drift_psi)
               ```
            2. Find the run and its state:
               ```sh
               kubectl get runs
               ```
            3. Check the traffic mix: a new customer or region often explains drift.
            """
        let runbook = try #require(RunbookParser.parse(text, path: "drift.md").runbook)
        #expect(
            runbook.steps.map(\.title) == [
                "Confirm the drift is real and not a reporting artefact",
                "Find the run and its state",
                "Check the traffic mix: a new customer or region often explains drift",
            ]
        )
        // Titles stored whole by older versions (and in the log) read the same.
        let old = #"{"index": 1, "markdown": "x", "title": "Find the run and its state:"}"#
        #expect(try JSONDecoder().decode(RunbookStep.self, from: Data(old.utf8)).title == "Find the run and its state")
        #expect(RunbookStep.title(of: String(repeating: "word ", count: 40)).count <= 120)
        #expect(RunbookStep.title(of: RunbookStep.title(of: "Verify: all clear. Then record.")) == "Verify: all clear")
        // A sentence ends at . ? or ! before white space and a capital letter, in any script.
        #expect(RunbookStep.title(of: "Prüfe den Lauf!  Überprüfe dann") == "Prüfe den Lauf")
        #expect(RunbookStep.title(of: "Is it real?\nThen act") == "Is it real")
        #expect(RunbookStep.title(of: "Pause e.g. the job, then v1.2 rollout. now") == "Pause e.g. the job, then v1.2 rollout. now")
        #expect(RunbookStep.title(of: "Ends here.") == "Ends here")
    }

    @Test func aRunbookSaysWhetherItsIncidentsNeedAPostmortem() throws {
        func parse(_ value: String) -> (Runbook?, [LintProblem]) {
            RunbookParser.parse(
                """
                ---
                id: drift
                title: Drift
                match:
                  alertname: FeatureDriftHigh
                postmortem: \(value)
                ---
                ## Steps
                1. Look.
                """,
                path: "drift.md"
            )
        }
        #expect(parse("required").0?.postmortem == "required")
        #expect(parse("optional").0?.postmortem == "optional")
        let bad = parse("sometimes")
        #expect(bad.0 == nil && bad.1.first?.line == 6 && bad.1.first?.message.hasPrefix("postmortem must be required or optional") == true)
    }
}
