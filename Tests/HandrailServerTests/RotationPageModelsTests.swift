import Foundation
import HandrailCore
import Testing

@testable import HandrailServer
@testable import HandrailStore

/// The rotation and handoff pages' view models.
@Suite struct RotationPageModelsTests {
    static let rotation = Rotation(
        name: "ml-platform",
        members: ["ana", "ben"],
        timeZone: "Europe/Berlin",
        shiftLength: ShiftLength(days: 7)!,
        handoff: HandoffTime(weekday: 1, hour: 9, minute: 0)!,
        startDate: LocalDate("2026-01-05")!,
        overrides: []
    )

    static func handoff(incoming: String?, acknowledgedBy: String?, onBehalf: Bool = false) -> StoredHandoff {
        let at = RFC3339.parse("2026-11-23T08:00:00Z")!
        return StoredHandoff(
            id: 5,
            rotation: "ml-platform",
            from: at.addingTimeInterval(-7 * 86400),
            to: at,
            generatedAt: at,
            generatedBy: "lena",
            contentHash: "abc",
            incoming: incoming,
            acknowledgedBy: acknowledgedBy,
            acknowledgedAt: acknowledgedBy == nil ? nil : at,
            acknowledgedOnBehalf: onBehalf,
            markdown: "# Handoff",
            document: nil
        )
    }

    static func person(_ name: String, _ role: Role) -> User {
        User(id: 1, username: name, displayName: name, email: nil, role: role, disabled: false, mustChangePassword: false, createdAt: Date())
    }

    @Test func onlyTheIncomingOnCallAcknowledgesAsSuchALeadOnTheirBehalfAndOnlyOnce() {
        let open = Self.handoff(incoming: "ben", acknowledgedBy: nil)
        let ben = HandoffPage(open, markdown: "# Handoff", user: Self.person("ben", .responder))
        #expect(ben.canAcknowledge && !ben.canAcknowledgeOnBehalf)
        let ana = HandoffPage(open, markdown: "# Handoff", user: Self.person("ana", .responder))
        #expect(!ana.canAcknowledge && !ana.canAcknowledgeOnBehalf)
        let lena = HandoffPage(open, markdown: "# Handoff", user: Self.person("lena", .lead))
        #expect(!lena.canAcknowledge && lena.canAcknowledgeOnBehalf, "a lead does not acknowledge as the incoming on-call")
        #expect(!HandoffPage(open, markdown: "# Handoff", user: nil).canAcknowledge)
        let forBen = HandoffPage(Self.handoff(incoming: "ben", acknowledgedBy: "lena", onBehalf: true), markdown: "# Handoff", user: nil)
        #expect(forBen.acknowledged?.hasPrefix("Acknowledged by lena on behalf of the incoming on-call, ben at") == true)
        let done = HandoffPage(Self.handoff(incoming: "ben", acknowledgedBy: "ben"), markdown: "# Handoff", user: Self.person("ben", .responder))
        #expect(!done.canAcknowledge && done.acknowledged?.hasPrefix("Acknowledged by ben at") == true)
        #expect(done.html.contains("<h1>Handoff</h1>"))
    }

    @Test func theRotationPageShowsWhoIsOnCallAndWhoMayGenerate() {
        let now = RFC3339.parse("2026-11-25T12:00:00Z")!
        let page = RotationPage(Self.rotation, handoffs: [Self.handoff(incoming: nil, acknowledgedBy: nil)], role: .viewer, now: now)
        #expect(!page.canGenerate && page.hasHandoffs && !page.hasOverrides)
        #expect(page.handoffs.first?.incoming == "nobody" && page.handoffs.first?.acknowledged == "not acknowledged")
        #expect(page.shifts.count == 4 && page.now == page.shifts.first?.who)
        #expect(RotationPage(Self.rotation, handoffs: [], role: .responder, now: now).canGenerate)
        let list = RotationsPage([Self.rotation], now: now)
        #expect(list.rotations.first?.now == page.now && list.rotations.first?.next != page.now)
    }

    @Test func theSettingsShowTheChainInWordsAndOnlyLeadsMayEditIt() {
        let policy = EscalationPolicy(
            steps: [EscalationStep(delaySeconds: 0, target: .onCall), EscalationStep(delaySeconds: 90, target: .user, user: "lena")],
            renotifySeconds: 1800
        )
        let channel = RotationChannel(
            id: 3,
            rotation: "ml-platform",
            kind: .slack,
            label: "#ml",
            hint: "https://hooks.slack.com/…abcd",
            createdAt: Date()
        )
        let lead = RotationPage(Self.rotation, handoffs: [], role: .lead, now: Date(), policy: policy, channels: [channel])
        #expect(lead.escalation == ["after 0 min: on_call", "after 1.5 min: user lena"])
        #expect(lead.stepsText == "0 on_call\n1.5 user lena" && lead.renotifyMinutes == "30")
        #expect(lead.reminders == "every 30 min while acknowledged and unresolved")
        #expect(lead.channels.map(\.hint) == ["https://hooks.slack.com/…abcd"] && lead.canEdit)
        let responder = RotationPage(Self.rotation, handoffs: [], role: .responder, now: Date())
        #expect(responder.escalation == ["after 0 min: on_call"], "no steps: the on-call, at once")
        #expect(responder.reminders == "off" && !responder.canEdit)
    }
}
