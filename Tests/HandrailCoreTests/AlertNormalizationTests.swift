import Foundation
import HandrailCore
import Testing

@Suite struct AlertmanagerNormalizationTests {
    /// A group as Alertmanager sends it: the group is firing, one of its alerts has cleared.
    static let group = """
        {"version":"4","groupKey":"{}:{alertname=\\"FeatureDriftHigh\\"}","truncatedAlerts":2,"status":"firing",
         "receiver":"team\\\\ml-platform","groupLabels":{"alertname":"FeatureDriftHigh"},
         "commonLabels":{"alertname":"FeatureDriftHigh"},"commonAnnotations":{},"externalURL":"http://am:9093",
         "alerts":[
          {"status":"firing","labels":{"alertname":"FeatureDriftHigh","model":"churn","value":"0.31"},
           "annotations":{"summary":"PSI 0.31"},"startsAt":"2026-11-20T09:51:03.157076+01:00","endsAt":"0001-01-01T00:00:00Z",
           "generatorURL":"http://prom/graph","fingerprint":"a1"},
          {"status":"resolved","labels":{"alertname":"FeatureDriftHigh","model":"fraud"},
           "annotations":{},"startsAt":"2026-11-20T08:00:00Z","endsAt":"2026-11-20T09:00:00Z","fingerprint":"b2"}
         ]}
        """

    @Test func eachAlertKeepsItsOwnStatusNotTheGroups() throws {
        let batch = try AlertNormalizer.alertmanager(Data(Self.group.utf8))
        #expect(batch.alerts.map(\.status) == [.firing, .resolved])
        #expect(batch.alerts.map(\.fingerprint) == ["a1", "b2"])
        #expect(batch.truncatedAlerts == 2)
        #expect(batch.receiver == "team\\ml-platform", "receiver names with backslashes are accepted")
        let first = batch.alerts[0]
        #expect(first.endsAt == nil, "the zero time means no end")
        #expect(abs((first.startsAt?.timeIntervalSince1970 ?? 0) - 1_795_164_663.157076) < 1e-5, "microseconds kept")
        #expect(first.value == 0.31, "a value label is the alert's value")
        #expect(batch.alerts[1].endsAt == Date(timeIntervalSince1970: 1_795_165_200))
        #expect(batch.alerts[1].annotations.isEmpty)
    }

    @Test func grafanaFixtureKeepsValuesAndLinks() throws {
        // A copy of shared/fixtures/grafana-webhook-firing.json (Grafana cannot run here), kept in
        // the repository so the test does not depend on what sits beside the checkout.
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/grafana-webhook-firing.json")
        let batch = try AlertNormalizer.alertmanager(try Data(contentsOf: fixture), source: .grafana)
        let alert = try #require(batch.alerts.first)
        #expect(alert.source == .grafana)
        #expect(alert.values == ["B": 0.2371, "C": 1])
        #expect(alert.value == 0.2371, "the reduced value, not the 0/1 condition")
        #expect(alert.links["dashboardURL"] == "https://grafana.example/d/drift")
        #expect(alert.links["silenceURL"]?.hasPrefix("https://grafana.example/alerting/silence") == true)
        #expect(alert.labels["model"] == "churn-v3")
        #expect(alert.fingerprint == "c6eadffa33fcdf37")
    }

    @Test func keysHandrailDoesNotReadAreSkippedAndTheLastDuplicateWins() throws {
        let body = #"""
            {"version":"4","groupLabels":{"alertname":"X","nested":{"a":[1,2,{"b":null}]}},"commonAnnotations":{},
             "alerts":[{"labels":{"alertname":"X","model":"m"},"extra":[true,false,null,-1.5e3],"status":"resolved",
                        "annotations":{"summary":"a \"quoted\" \u00e9 summary"},"fingerprint":"f1","panelURL":"",
                        "dashboardURL":"http://g/d","endsAt":"2026-11-22T09:30:00Z","status":"firing"}],
             "receiver":"team\\prod","truncatedAlerts":3,"groupKey":"{}:{}"}
            """#
        let batch = try AlertNormalizer.alertmanager(Data(body.utf8))
        #expect(batch.alerts.count == 1)
        let a = try #require(batch.alerts.first)
        #expect(a.status == .firing)
        #expect(a.labels == ["alertname": "X", "model": "m"])
        #expect(a.annotations["summary"] == "a \"quoted\" é summary")
        #expect(a.links == ["dashboardURL": "http://g/d"])
        #expect(a.endsAt == RFC3339.parse("2026-11-22T09:30:00Z"))
        #expect(batch.receiver == "team\\prod")
        #expect(batch.truncatedAlerts == 3)
        #expect(batch.groupKey == "{}:{}")
    }

    @Test func missingFingerprintGetsAStableOne() throws {
        let body = #"{"alerts":[{"status":"firing","labels":{"b":"2","alertname":"X","a":"1"}}]}"#
        let one = try AlertNormalizer.alertmanager(Data(body.utf8)).alerts[0].fingerprint
        let reordered = #"{"alerts":[{"status":"firing","labels":{"alertname":"X","a":"1","b":"2"}}]}"#
        #expect(try AlertNormalizer.alertmanager(Data(reordered.utf8)).alerts[0].fingerprint == one)
        #expect(one.count == 16)
    }

    @Test func timesAreReadWhateverTheirSpelling() throws {
        func times(_ starts: String) throws -> Date? {
            try AlertNormalizer.alertmanager(
                Data(#"{"alerts":[{"status":"firing","labels":{"alertname":"X"},"startsAt":"#.utf8) + Data(starts.utf8) + Data("}]}".utf8)
            ).alerts[0].startsAt
        }
        let nine = Date(timeIntervalSince1970: 1_795_165_200)
        #expect(try times(#""2026-11-20T09:00:00Z""#) == nine)
        #expect(try times(#""2026-11-20T09:00:00Z""#) == nine, "an escape is read the slow way, to the same time")
        #expect(try times(#""2026-11-20T10:00:00.000+01:00""#) == nine)
        #expect(try times(#""""#) == nil)
        #expect(try times("null") == nil)
        #expect(try times(#""0001-01-01T00:00:00Z""#) == nil)
        for bad in [#""2026-02-30T00:00:00Z""#, "5", #""2026-11-20""#, #""2026-11-20T09:00:00Zjunk""#, "{}"] {
            #expect(throws: ValidationError.self, "\(bad)") { try times(bad) }
        }
    }

    @Test func invalidUTF8InAKeyHandrailSkipsIsRefused() {
        for key in ["commonLabels", "groupLabels", "externalURL", "somethingNew"] {
            let body = Data(#"{"alerts":[],""#.utf8) + Data(key.utf8) + Data(#"":{"a":""#.utf8) + Data([0xC3, 0x28]) + Data(#""}}"#.utf8)
            #expect(throws: ValidationError.self, "\(key)") { try AlertNormalizer.alertmanager(body) }
            #expect((try? AlertNormalizer.alertmanager(body)) == nil)
        }
    }

    @Test(arguments: [
        ("not json", "body", "is not valid JSON"),
        ("[]", "body", "must be a JSON object"),
        ("{}", "alerts", "is required"),
        (#"{"alerts":{}}"#, "alerts", "must be a list"),
        (#"{"alerts":[{"labels":{"alertname":"X"}}]}"#, "alerts[0].status", "is required"),
        (#"{"alerts":[{"status":"burning","labels":{"alertname":"X"}}]}"#, "alerts[0].status", "must be firing or resolved"),
        (#"{"alerts":[{"status":"firing"}]}"#, "alerts[0].labels", "is required"),
        (#"{"alerts":[{"status":"firing","labels":{"service":"x"}}]}"#, "alerts[0].labels.alertname", "is required"),
        (#"{"alerts":[{"status":"firing","labels":{"alertname":3}}]}"#, "alerts[0].labels.alertname", "must be a string"),
        (#"{"alerts":[{"status":"firing","labels":{"alertname":"X"},"startsAt":"yesterday"}]}"#, "alerts[0].startsAt", "must be an RFC 3339 time"),
        (
            #"{"alerts":[{"status":"firing","labels":{"alertname":"X"}},{"status":"firing","labels":{"alertname":"Y"},"annotations":[]}]}"#,
            "alerts[1].annotations", "must be a JSON object"
        ),
        // The checks keep their order whatever the order of the keys in the alert.
        (#"{"alerts":[{"startsAt":"yesterday","labels":{"alertname":3},"status":"firing"}]}"#, "alerts[0].labels.alertname", "must be a string"),
        (#"{"alerts":[{"status":"firing","labels":null}]}"#, "alerts[0].labels", "is required"),
        (#"{"alerts":[{"status":"firing","labels":{"alertname":"X"},"values":{"A":"high"}}]}"#, "alerts[0].values.A", "must be a number"),
        (#"{"alerts":[7]}"#, "alerts[0]", "must be a JSON object"),
        (#"{"alerts":null}"#, "alerts", "must be a list"),
        // Not well formed anywhere (after a bad field, or deep inside a key Handrail skips) wins.
        (#"{"alerts":[{"status":"burning","labels":{"alertname":"X"}}],"receiver":"r",}"#, "body", "is not valid JSON"),
        (
            #"{"groupLabels":"# + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + #","alerts":[]}"#, "body",
            "is not valid JSON"
        ),
        (#"{"alerts":[{"status":"firing","labels":{"alertname":"X"}}]} x"#, "body", "is not valid JSON"),
        // Keys Handrail skips are checked as strictly as the ones it reads.
        (#"{"alerts":[],"commonLabels":{"a":tru}}"#, "body", "is not valid JSON"),
        (#"{"alerts":[],"groupLabels":{"a":"b",}}"#, "body", "is not valid JSON"),
        (#"{"alerts":[],"externalURL":[1,]}"#, "body", "is not valid JSON"),
        (#"{"alerts":[],"version":01}"#, "body", "is not valid JSON"),
        (#"{"alerts":[],"commonAnnotations":{"a":"\x"}}"#, "body", "is not valid JSON"),
        (#"{"alerts":[{"status":"firing","labels":{"alertname":"X"},"extra":{"k" "v"}}]}"#, "body", "is not valid JSON"),
    ])
    func badInputNamesTheField(body: String, field: String, message: String) {
        #expect {
            _ = try AlertNormalizer.alertmanager(Data(body.utf8))
        } throws: { error in
            guard let e = error as? ValidationError else { return false }
            return e.field == field && e.message.hasPrefix(message)
        }
    }
}

@Suite struct GenericNormalizationTests {
    @Test func oneAlertOrAListWithTopLevelShortcuts() throws {
        let one = try AlertNormalizer.generic(
            Data(
                #"{"dedup_key":" job-42 ","alertname":"RetrainingJobFailed","severity":"critical","summary":"nightly retrain failed","value":3}"#.utf8
            )
        )
        #expect(one.alerts.count == 1)
        let alert = one.alerts[0]
        #expect(alert.fingerprint == "job-42")
        #expect(alert.status == .firing)
        #expect(alert.labels == ["alertname": "RetrainingJobFailed", "severity": "critical"])
        #expect(alert.annotations == ["summary": "nightly retrain failed"])
        #expect(alert.value == 3)
        let list = try AlertNormalizer.generic(
            Data(#"{"alerts":[{"dedup_key":"a","labels":{"alertname":"X"}},{"dedup_key":"b","alertname":"Y","status":"resolved"}]}"#.utf8)
        )
        #expect(list.alerts.map(\.status) == [.firing, .resolved])
    }

    @Test func badFieldsAreNamed() {
        func field(_ body: String) -> String? {
            do {
                _ = try AlertNormalizer.generic(Data(body.utf8))
                return nil
            } catch {
                return error.field
            }
        }
        #expect(field(#"{"alertname":"X"}"#) == "dedup_key")
        #expect(field(#"{"dedup_key":"k"}"#) == "alertname")
        #expect(field(#"{"dedup_key":"k","alertname":"X","value":"high"}"#) == "value")
        #expect(field(#"{"dedup_key":"k","alertname":"X","value":true}"#) == "value")
        #expect(field(#"{"dedup_key":"k","alertname":"X","status":"open"}"#) == "status")
        #expect(field(#"{"alerts":[{"dedup_key":"k","alertname":"X"},{"dedup_key":7}]}"#) == "alerts[1].dedup_key")
        #expect(field(#"{"alerts":[]}"#) == "alerts")
        #expect(field(#"{"dedup_key":"k","alertname":"X","labels":{"a":1}}"#) == "labels.a")
        #expect(field("[1]") == "body")
    }
}

@Suite struct RFC3339Tests {
    @Test func formatsSecondsInUTCWithTwoDigitFields() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_772_329_509.9)) == "2026-03-01T01:45:09Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_795_164_663)) == "2026-11-20T08:51:03Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59Z")
    }

    @Test func parsesWhatSourcesSendAndRefusesTheRest() {
        #expect(RFC3339.parse("1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(abs(RFC3339.parse("2026-11-20T09:51:03.157076+01:00")!.timeIntervalSince1970 - 1_795_164_663.157076) < 1e-6)
        #expect(
            RFC3339.parse("2026-02-28T23:59:59-05:30") == Date(timeIntervalSince1970: 1_772_342_999),
            "23:59:59 at -05:30 is 05:29:59Z the next day"
        )
        #expect(RFC3339.parse("2024-02-29T12:00:00Z") == Date(timeIntervalSince1970: 1_709_208_000))
        #expect(RFC3339.parse("0001-01-01T00:00:00Z")!.timeIntervalSince1970 == -62_135_596_800)
        for bad in [
            "", "2026-11-20", "2026-11-20T09:51:03", "2026-13-01T00:00:00Z", "2026-11-20T09:51:03.Z", "2026-11-20T09:51:03Zjunk", "yesterday",
        ] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct DigestTests {
    @Test func sha256HexMatchesTheStandardVectors() {
        #expect(Digest.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}

@Suite struct JSONParserTests {
    func parse(_ text: String) -> JSONValue? { try? JSONParser.parse(Data(text.utf8)) }

    @Test func readsWhatSourcesSend() {
        #expect(
            parse(#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {}} "#)
                == .object(["a": .array([.number(1), .number(-2500), .bool(true), .bool(false), .null, .string("x")]), "b": .object([:])])
        )
        #expect(
            parse(#""quote \" backslash \\ slash \/ tab \t nl \n u \u00e9 pair \ud83d\udea8""#)
                == .string("quote \" backslash \\ slash / tab \t nl \n u é pair 🚨")
        )
        #expect(parse(#""ünïcødé raw""#) == .string("ünïcødé raw"))
        #expect(parse("0") == .number(0))
        #expect(parse("[]") == .array([]))
    }

    @Test func refusesWhatIsNotJSONWithoutCrashing() {
        for bad in [
            "", "{", "[1,]", #"{"a":1,}"#, "01", "1.", "-", "+1", "tru", "nul", #""\x""#, #""\ud800""#, #""\udc00x""#,
            "\"tab\there\"", #"{"a" 1}"#, "[1 2]", "{} {}", "NaN", String(repeating: "[", count: 100_000),
        ] {
            #expect(parse(bad) == nil, "\(bad.prefix(20))")
        }
        #expect(parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60)) != nil)
        #expect(parse(Data([0x22, 0xFF, 0x22]).map { String(UnicodeScalar($0)) }.joined()) != nil, "Latin-1 read as text is valid UTF-8 again")
        #expect((try? JSONParser.parse(Data([0x22, 0xFF, 0xFE, 0x22]))) == nil, "invalid UTF-8 is refused")
        // Cut short, overlong, an encoded surrogate, a stray continuation byte; also after an
        // escape (the slower path), and as an object key.
        for bytes: [UInt8] in [
            [0xC3], [0x61, 0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x80], [0x5C, 0x6E, 0xFF], [0xF4, 0x90, 0x80, 0x80],
        ] {
            #expect((try? JSONParser.parse(Data([0x22] + bytes + [0x22]))) == nil, "\(bytes)")
            #expect((try? JSONParser.parse(Data([0x7B, 0x22] + bytes + [0x22, 0x3A, 0x31, 0x7D]))) == nil, "key \(bytes)")
        }
        // U+FFFD itself, as its three bytes, is text like any other.
        #expect((try? JSONParser.parse(Data([0x22, 0xEF, 0xBF, 0xBD, 0x22]))) == .string("\u{FFFD}"))
    }
}
