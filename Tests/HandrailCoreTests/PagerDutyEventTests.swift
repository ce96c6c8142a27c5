import Foundation
import HandrailCore
import Testing

@Suite struct PagerDutyEventTests {
    let key = "0123456789abcdef0123456789abcdef"

    @Test func triggerBecomesAFiringAlertAndGetsADedupKeyWhenItHasNone() throws {
        let body =
            #"{"routing_key":"\#(key)","event_action":"trigger","payload":{"summary":"Canary p99 above guard","source":"ranker-canary-7","severity":"error","class":"CanaryGuardBreached","component":"ranker","custom_details":{"value":1.7,"rollout":"r7","dims":{"a":1}}},"links":[{"href":"https://grafana.example/d/x","text":"dash"}]}"#
        let event = try PagerDutyEvent.parse(Data(body.utf8), newDedupKey: { "generated-1" })
        #expect(event.action == .trigger)
        #expect(event.dedupKey == "generated-1")
        let alert = try #require(event.alert)
        #expect(alert.fingerprint == "generated-1")
        #expect(alert.status == .firing)
        #expect(alert.labels["alertname"] == "CanaryGuardBreached")
        #expect(alert.labels["severity"] == "critical", "PagerDuty's error is Handrail's critical")
        #expect(alert.labels["component"] == "ranker")
        #expect(alert.annotations["rollout"] == "r7")
        #expect(alert.annotations["dims"] == #"{"a":1}"#)
        #expect(alert.value == 1.7)
        #expect(alert.links["link0"] == "https://grafana.example/d/x")
    }

    @Test func acknowledgeAndResolveCarryTheCallersKey() throws {
        for action in ["acknowledge", "resolve"] {
            let event = try PagerDutyEvent.parse(Data(#"{"routing_key":"\#(key)","event_action":"\#(action)","dedup_key":"db1-disk"}"#.utf8))
            #expect(event.action.rawValue == action)
            #expect(event.dedupKey == "db1-disk")
            #expect(event.alert == nil)
        }
    }

    @Test func everyProblemIsListedAsPagerDutyDoes() {
        #expect(throws: PagerDutyEvent.Invalid.self) { try PagerDutyEvent.parse(Data("nope".utf8)) }
        do {
            _ = try PagerDutyEvent.parse(Data(#"{"routing_key":"short","event_action":"trigger","payload":{"summary":"","severity":"fatal"}}"#.utf8))
            Issue.record("an invalid event was accepted")
        } catch {
            #expect(
                error.errors == [
                    "Length of 'routing_key' is incorrect (should be 32 characters)",
                    "'payload.summary' is missing or blank",
                    "'payload.source' is missing or blank",
                    "'payload.severity' is invalid (should be critical, error, warning or info)",
                ]
            )
        }
        do {
            _ = try PagerDutyEvent.parse(Data(#"{"routing_key":"\#(key)","event_action":"resolve"}"#.utf8))
            Issue.record("a resolve without dedup_key was accepted")
        } catch {
            #expect(error.errors == ["'dedup_key' is required for resolve events"])
        }
        do {
            _ = try PagerDutyEvent.parse(Data(#"{"routing_key":"\#(key)","event_action":"explode"}"#.utf8))
            Issue.record("an unknown action was accepted")
        } catch {
            #expect(error.errors.first?.contains("'event_action'") == true)
        }
    }
}
