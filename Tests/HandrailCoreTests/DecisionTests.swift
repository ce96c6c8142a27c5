import Foundation
import HandrailCore
import Testing

@Suite("Rollback decisions: outcome proposals and who may decide")
struct DecisionTests {
    let executed = Date(timeIntervalSince1970: 1_790_000_000)
    func at(_ minutes: Double) -> Date { executed.addingTimeInterval(minutes * 60) }

    @Test("alerts that clear inside the window: effective, with the check in words")
    func effective() {
        let alerts = [
            OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: at(4)),
            OutcomeProposal.Alert(firstSeen: at(-15), clearedBySource: at(12)),
        ]
        let p = OutcomeProposal.propose(executedAt: executed, window: 1800, alerts: alerts, now: at(13))
        #expect(p.outcome == .effective)
        #expect(p.check == "all 2 alerts cleared within 30 min of execution (the last 12 min after execution)")
        #expect(p.windowEnds == at(30))
    }

    @Test("an alert still firing when the window closes: not effective")
    func notEffective() {
        let alerts = [
            OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: at(4)),
            OutcomeProposal.Alert(firstSeen: at(-15), clearedBySource: nil),
        ]
        let p = OutcomeProposal.propose(executedAt: executed, window: 1800, alerts: alerts, now: at(31))
        #expect(p.outcome == .notEffective)
        #expect(p.check == "1 of 2 alerts still firing 30 min after execution")
    }

    @Test("cleared only after the window closed: not effective")
    func clearedTooLate() {
        let alerts = [OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: at(45))]
        #expect(OutcomeProposal.propose(executedAt: executed, window: 1800, alerts: alerts, now: at(50)).outcome == .notEffective)
    }

    @Test("while the window is open and alerts fire, nothing is proposed yet")
    func pending() {
        let alerts = [OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: nil)]
        let p = OutcomeProposal.propose(executedAt: executed, window: 1800, alerts: alerts, now: at(10))
        #expect(p.outcome == nil)
        #expect(p.check.hasPrefix("1 of 1 alert still firing; the 30 min window ends at "))
    }

    @Test("a new alert firing inside the window counts against the decision; one after it does not")
    func newAlerts() {
        let inside = [
            OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: at(2)), OutcomeProposal.Alert(firstSeen: at(20), clearedBySource: nil),
        ]
        #expect(OutcomeProposal.propose(executedAt: executed, window: 1800, alerts: inside, now: at(40)).outcome == .notEffective)
        let after = [
            OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: at(2)), OutcomeProposal.Alert(firstSeen: at(35), clearedBySource: nil),
        ]
        #expect(OutcomeProposal.propose(executedAt: executed, window: 1800, alerts: after, now: at(40)).outcome == .effective)
    }

    @Test("alerts closed by a person resolving the incident are not the monitor clearing them")
    func closedByPerson() {
        let alerts = [OutcomeProposal.Alert(firstSeen: at(-20), clearedBySource: nil)]
        #expect(OutcomeProposal.propose(executedAt: executed, window: 900, alerts: alerts, now: at(16)).outcome == .notEffective)
    }

    @Test("the runbook's decided_by admits that role and every role above it")
    func policy() {
        let policy = RollbackPolicy(allowed: true, decidedBy: [.lead, .manager])
        #expect(policy.refusal(role: .lead, kind: .rollback, runbook: "drift") == nil)
        #expect(policy.refusal(role: .admin, kind: .hold, runbook: "drift") == nil)
        #expect(
            policy.refusal(role: .responder, kind: .hold, runbook: "drift") == "runbook drift lets lead and up record decisions; you are responder"
        )
        let noRollback = RollbackPolicy(allowed: false, decidedBy: [.responder])
        #expect(noRollback.refusal(role: .responder, kind: .hold, runbook: "x") == nil)
        #expect(noRollback.refusal(role: .admin, kind: .rollback, runbook: "x")?.contains("does not allow rollback") == true)
        #expect(
            RollbackPolicy().refusal(role: .responder, kind: .hold, runbook: nil)
                == "the default policy (no runbook) lets lead and up record decisions; you are responder"
        )
    }

    @Test("a runbook's rollback.verification_window is read, and defaults to 30 minutes")
    func verificationWindow() throws {
        let text = drift.replacingOccurrences(
            of: "  decided_by: [lead, manager]\n",
            with: "  decided_by: [lead, manager]\n  verification_window: 15m\n"
        )
        let parsed = RunbookParser.parse(text, path: "runbooks/drift.md")
        #expect(parsed.problems.isEmpty)
        #expect(parsed.runbook?.rollback.verificationWindow == 900)
        #expect(RunbookParser.parse(drift, path: "runbooks/drift.md").runbook?.rollback.verificationWindow == 1800)
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_790_000_000)) == "2026-09-21T14:13:20Z")
    }
}
