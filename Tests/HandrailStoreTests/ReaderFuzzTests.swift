import Foundation
import HandrailCore
import HandrailStore
import Testing

/// Seeded random-input fuzzing of everything that reads what a client sends: the
/// Alertmanager/Grafana, generic and PagerDuty readers and the runbook parser. Each seed body
/// is mutated (bytes flipped, inserted, cut, copied, and tokens that broke parsers before:
/// NUL escapes, `1e999`, lone surrogates, deep nesting, huge numbers, long strings). A trap
/// kills the test process, which fails the suite; a reader must also never hand on an alert
/// that PostgreSQL could not store. `HANDRAIL_FUZZ_ITERATIONS` (default 3,000 per seed)
/// fuzzes longer on demand; `HANDRAIL_FUZZ_SEED` picks another sequence.
@Suite struct ReaderFuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["HANDRAIL_FUZZ_ITERATIONS"] ?? "") ?? 3_000
    static let seed = UInt64(ProcessInfo.processInfo.environment["HANDRAIL_FUZZ_SEED"] ?? "") ?? 0x4841_4E44_5241_494C

    static let alertmanager = #"""
        {"version":"4","groupKey":"{}:{alertname=\"FeatureDriftHigh\"}","truncatedAlerts":0,"status":"firing","receiver":"handrail",
         "groupLabels":{"alertname":"FeatureDriftHigh"},"commonLabels":{"alertname":"FeatureDriftHigh"},"commonAnnotations":{},
         "externalURL":"http://am:9093","alerts":[{"status":"firing","labels":{"alertname":"FeatureDriftHigh","model":"ranker","severity":"warning"},
         "annotations":{"summary":"PSI 0.31","value":"0.31"},"startsAt":"2026-11-20T09:51:03.157076+01:00","endsAt":"0001-01-01T00:00:00Z",
         "generatorURL":"http://prom/graph?g0.expr=psi","fingerprint":"1f3a9c0e77b24d05"},
         {"status":"resolved","labels":{"alertname":"FeatureDriftHigh","model":"fraud"},"annotations":{},"startsAt":"2026-11-20T09:00:00Z",
         "endsAt":"2026-11-20T10:00:00Z","fingerprint":"2f3a9c0e77b24d05"}]}
        """#
    static let grafana = #"""
        {"receiver":"handrail","status":"firing","orgId":1,"alerts":[{"status":"firing","labels":{"alertname":"FeatureDriftHigh","model":"churn-v3"},
         "annotations":{"summary":"PSI above 0.2"},"startsAt":"2026-11-20T09:51:03.157076+01:00","endsAt":"0001-01-01T00:00:00Z",
         "generatorURL":"http://grafana/alerting/grafana/x/view","fingerprint":"a1b2c3d4e5f60718","silenceURL":"http://grafana/s",
         "dashboardURL":"http://grafana/d","panelURL":"http://grafana/p","values":{"A":0.27,"C":1},"valueString":"[ var='A' value=0.27 ]"}],
         "groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://grafana/","version":"1",
         "groupKey":"{}/{}:{}","truncatedAlerts":0,"title":"[FIRING:1]","state":"alerting","message":"x"}
        """#
    static let generic = #"""
        {"alerts":[{"dedup_key":"job-42","alertname":"RetrainingJobFailed","severity":"critical","service":"trainer","labels":{"job":"42"},
         "summary":"retraining failed","value":3,"starts_at":"2026-11-20T09:00:00Z","links":{"logs":"http://logs/42"}},
         {"dedup_key":"job-43","status":"resolved","alertname":"RetrainingJobFailed"}]}
        """#
    static let pagerDuty = #"""
        {"routing_key":"0123456789abcdef0123456789abcdef","event_action":"trigger","dedup_key":"disk-db1","client_url":"http://mon/db1",
         "links":[{"href":"http://mon/db1","text":"graph"}],"payload":{"summary":"disk 91% full","source":"db1","severity":"error",
         "timestamp":"2026-11-20T09:00:00Z","class":"DiskFull","component":"postgres","group":"storage","custom_details":{"value":0.91,"free":"9%","nested":{"a":[1,2]}}}}
        """#

    static let tokens: [String] = [
        #"\u0000"#, "1e999", "-1e999", "1e-999", "9223372036854775808", "-9223372036854775809", "0.00000000000000000000001",
        #"\ud800"#, #"\udfff"#, #"\ud800\udc00"#, "\"", "\\", "{", "}", "[", "]", ",", ":", "null", "true", "false", "\u{0}",
        "\u{FEFF}", "é", "🚨", "\"alerts\":", "\"labels\":{}", "\"status\":\"resolved\"", "\"fingerprint\":\"\"",
        String(repeating: "[", count: 200), String(repeating: "{\"a\":", count: 100), String(repeating: "x", count: 5_000),
        "\"" + String(repeating: "y", count: 3_000) + "\"", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00",
        "2026-02-30T25:61:61Z", "\"startsAt\":\"", "\"endsAt\":1e308", "\"truncatedAlerts\":1e308", "\"value\":NaN",
    ]

    /// SplitMix64: the same sequence for the same seed, on every machine.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    }

    /// One to four mutations of `seed`.
    static func mutate(_ seed: [UInt8], _ r: inout Random) -> [UInt8] {
        var bytes = seed
        for _ in 0...r.below(4) {
            let at = r.below(bytes.count + 1)
            switch r.below(6) {
            case 0 where !bytes.isEmpty: bytes[min(at, bytes.count - 1)] ^= UInt8(truncatingIfNeeded: 1 << r.below(8))
            case 1: bytes.insert(UInt8(truncatingIfNeeded: r.next()), at: at)
            case 2 where !bytes.isEmpty:
                let end = min(bytes.count, at + r.below(40))
                bytes.removeSubrange(min(at, end)..<end)
            case 3 where !bytes.isEmpty:
                let start = r.below(bytes.count)
                let end = min(bytes.count, start + r.below(200))
                bytes.insert(contentsOf: bytes[start..<end], at: at)
            default: bytes.insert(contentsOf: Array(tokens[r.below(tokens.count)].utf8), at: at)
            }
        }
        return bytes
    }

    /// Runs `read` on mutations of `seed`; `check` sees every value that came out.
    static func fuzz<T>(_ name: String, seed text: String, salt: UInt64, read: (Data) -> T?, check: (T) -> String?) -> [String] {
        var r = Random(state: seed ^ salt)
        let original = Array(text.utf8)
        var problems: [String] = []
        #expect(read(Data(original)) != nil, "the \(name) seed itself must read")
        for n in 0..<iterations {
            let input = mutate(original, &r)
            if let value = read(Data(input)), let problem = check(value) {
                problems.append("\(name) #\(n): \(problem) — input: \(String(decoding: input.prefix(300), as: UTF8.self).debugDescription)")
                if problems.count >= 5 { break }
            }
        }
        return problems
    }

    /// What a reader hands on must be storable: within the limits, no NUL, and rows whose
    /// JSON PostgreSQL can parse.
    static func storable(_ alerts: [NormalizedAlert]) -> String? {
        for a in alerts {
            do { try AlertLimits.check(a, name: { AlertLimits.webhookName($0, prefix: "") }) } catch { return "unstorable alert: \(error)" }
        }
        let rows = IngestStore.repeatRowsJSON(alerts)
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(rows.utf8)) else { return "rows that are not JSON: \(rows.prefix(200))" }
        func holdsNUL(_ value: Any) -> Bool {
            switch value {
            case let s as String: return s.utf8.contains(0)
            case let a as [Any]: return a.contains(where: holdsNUL)
            case let o as [String: Any]: return o.contains { $0.key.utf8.contains(0) || holdsNUL($0.value) }
            default: return false
            }
        }
        return holdsNUL(parsed) ? "rows holding a NUL character" : nil
    }

    @Test func alertmanagerAndGrafanaBodiesNeverTrapOrPassUnstorableAlerts() {
        let alertmanager = Self.fuzz(
            "alertmanager",
            seed: Self.alertmanager,
            salt: 1,
            read: { try? AlertNormalizer.alertmanager($0) },
            check: { Self.storable($0.alerts) }
        )
        let grafana = Self.fuzz(
            "grafana",
            seed: Self.grafana,
            salt: 2,
            read: { try? AlertNormalizer.alertmanager($0, source: .grafana) },
            check: { Self.storable($0.alerts) }
        )
        #expect((alertmanager + grafana).isEmpty, "\(alertmanager + grafana)")
    }

    @Test func genericBodiesNeverTrapOrPassUnstorableAlerts() {
        let problems = Self.fuzz(
            "generic",
            seed: Self.generic,
            salt: 3,
            read: { try? AlertNormalizer.generic($0) },
            check: { Self.storable($0.alerts) }
        )
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func pagerDutyEventsNeverTrapOrPassUnstorableAlerts() {
        let problems = Self.fuzz(
            "pagerduty",
            seed: Self.pagerDuty,
            salt: 4,
            read: { try? PagerDutyEvent.parse($0) },
            check: { event in
                if event.dedupKey.utf8.contains(0) || event.dedupKey.count > AlertLimits.fingerprint { return "an unstorable dedup_key" }
                return event.alert.flatMap { Self.storable([$0]) }
            }
        )
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func runbooksNeverTrapTheParser() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent("runbooks/feature-drift.md")
        let text = try String(contentsOf: file, encoding: .utf8)
        let problems = Self.fuzz(
            "runbook",
            seed: text,
            salt: 5,
            read: { data -> Runbook? in
                RunbookParser.parse(String(decoding: data, as: UTF8.self), path: "fuzz.md").runbook
            },
            check: { runbook in
                runbook.steps.allSatisfy { $0.index > 0 } ? nil : "a step numbered below 1"
            }
        )
        #expect(problems.isEmpty, "\(problems)")
    }
}
