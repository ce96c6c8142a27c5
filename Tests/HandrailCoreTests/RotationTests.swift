import Foundation
import HandrailCore
import Testing

/// An instant written as UTC, `2026-03-30T07:00:00Z`.
private func utc(_ text: String) -> Date {
    RFC3339.parse(text)!
}

private func weekly(
    _ zone: String,
    members: [String] = ["ana", "ben", "cho"],
    handoff: String = "Monday 09:00",
    start: String = "2026-01-05",
    overrides: [RotationOverride] = []
) throws -> Rotation {
    Rotation(
        name: "ml-oncall",
        members: members,
        timeZone: zone,
        shiftLength: try ShiftLength.parse("1w"),
        handoff: try HandoffTime.parse(handoff),
        startDate: LocalDate(start)!,
        overrides: overrides
    )
}

@Suite("Who is on call")
struct RotationTests {
    @Test("weekly shifts hand over Monday 09:00 local and go round the members in order")
    func weeklyOrder() throws {
        let r = try weekly("Europe/Berlin")
        // 2026-01-05 is a Monday; Berlin is UTC+1 in January.
        #expect(r.onCall(at: utc("2026-01-05T07:59:59Z")).user == nil)
        #expect(r.onCall(at: utc("2026-01-05T08:00:00Z")).user == "ana")
        #expect(r.onCall(at: utc("2026-01-12T07:59:59Z")).user == "ana")
        #expect(r.onCall(at: utc("2026-01-12T08:00:00Z")).user == "ben")
        #expect(r.onCall(at: utc("2026-01-19T08:00:00Z")).user == "cho")
        #expect(r.onCall(at: utc("2026-01-26T08:00:00Z")).user == "ana")
        let now = r.onCall(at: utc("2026-01-14T12:00:00Z"))
        #expect(now.shift == 1)
        #expect(now.shiftStart == utc("2026-01-12T08:00:00Z"))
        #expect(now.shiftEnd == utc("2026-01-19T08:00:00Z"))
        #expect(now.since == now.shiftStart && now.until == now.shiftEnd)
    }

    @Test("a start date that is not the handoff weekday starts at the next such weekday")
    func startDateAligned() throws {
        let r = try weekly("Europe/Berlin", start: "2026-01-01")  // a Thursday
        #expect(r.firstShiftDate == LocalDate("2026-01-05"))
        #expect(r.onCall(at: utc("2026-01-03T12:00:00Z")).user == nil)
        #expect(r.onCall(at: utc("2026-01-05T08:00:00Z")).user == "ana")
    }

    @Test("Europe/Berlin: the handoff stays at 09:00 local across both DST changes")
    func berlinDST() throws {
        let r = try weekly("Europe/Berlin")
        // Summer time starts Sunday 2026-03-29: the shift from Mon 23 March 09:00 CET
        // (08:00Z) to Mon 30 March 09:00 CEST (07:00Z) is 167 hours long.
        let spring = r.onCall(at: utc("2026-03-29T12:00:00Z"))
        #expect(spring.shiftStart == utc("2026-03-23T08:00:00Z"))
        #expect(spring.shiftEnd == utc("2026-03-30T07:00:00Z"))
        #expect(spring.shiftEnd!.timeIntervalSince(spring.shiftStart!) == 167 * 3600)
        #expect(r.onCall(at: utc("2026-03-30T06:59:59Z")).user == spring.user)
        #expect(r.onCall(at: utc("2026-03-30T07:00:00Z")).user != spring.user)
        // Winter time returns Sunday 2026-10-25: that shift is 169 hours.
        let autumn = r.onCall(at: utc("2026-10-25T12:00:00Z"))
        #expect(autumn.shiftStart == utc("2026-10-19T07:00:00Z"))
        #expect(autumn.shiftEnd == utc("2026-10-26T08:00:00Z"))
        #expect(autumn.shiftEnd!.timeIntervalSince(autumn.shiftStart!) == 169 * 3600)
        // 42 weeks after 5 January the order has not drifted: shift 42 is 42 mod 3 = 0, ana.
        #expect(r.onCall(at: utc("2026-10-26T08:00:00Z")).shift == 42)
        #expect(r.onCall(at: utc("2026-10-26T08:00:00Z")).user == "ana")
    }

    @Test("America/New_York: daily shifts at 08:00 local across the March and November changes")
    func newYorkDST() throws {
        let r = Rotation(
            name: "serving",
            members: ["dee", "eli"],
            timeZone: "America/New_York",
            shiftLength: try ShiftLength.parse("1d"),
            handoff: try HandoffTime.parse("08:00"),
            startDate: LocalDate("2026-03-01")!
        )
        // DST starts Sunday 2026-03-08 at 02:00: 08:00 EST is 13:00Z, 08:00 EDT is 12:00Z.
        #expect(r.shiftStart(6) == utc("2026-03-07T13:00:00Z"))
        #expect(r.shiftStart(7) == utc("2026-03-08T12:00:00Z"))
        #expect(r.shiftStart(8) == utc("2026-03-09T12:00:00Z"))
        #expect(r.onCall(at: utc("2026-03-08T11:59:00Z")).user == "dee")  // shift 6 still
        #expect(r.onCall(at: utc("2026-03-08T12:00:00Z")).user == "eli")  // shift 7
        // DST ends Sunday 2026-11-01 at 02:00: the shift across it is 25 hours, from
        // Saturday 08:00 EDT (12:00Z) to Sunday 08:00 EST (13:00Z).
        let night = r.onCall(at: utc("2026-11-01T10:00:00Z"))
        #expect(night.shiftStart == utc("2026-10-31T12:00:00Z"))
        #expect(night.shiftEnd == utc("2026-11-01T13:00:00Z"))
        #expect(r.onCall(at: utc("2026-11-01T12:30:00Z")).user == night.user)
        #expect(r.onCall(at: utc("2026-11-01T13:00:00Z")).user != night.user)
    }

    @Test("a handoff time the spring-forward gap skips moves to the first moment after it")
    func handoffInTheGap() throws {
        let r = Rotation(
            name: "night",
            members: ["ana", "ben"],
            timeZone: "Europe/Berlin",
            shiftLength: try ShiftLength.parse("1d"),
            handoff: try HandoffTime.parse("02:30"),
            startDate: LocalDate("2026-03-27")!
        )
        // 2026-03-29 02:30 does not exist in Berlin; the shift starts at 03:30 CEST = 01:30Z.
        let start = r.shiftStart(2)
        #expect(start >= utc("2026-03-29T01:00:00Z") && start <= utc("2026-03-29T01:30:00Z"))
        #expect(r.shiftStart(3) == utc("2026-03-30T00:30:00Z"))
    }

    @Test("an override inside a shift puts its person on call for its stretch only")
    func overrideInside() throws {
        let cover = RotationOverride(user: "zed", start: utc("2026-01-14T08:00:00Z"), end: utc("2026-01-15T08:00:00Z"), reason: "swap")
        let r = try weekly("Europe/Berlin", overrides: [cover])
        let during = r.onCall(at: utc("2026-01-14T12:00:00Z"))
        #expect(during.user == "zed")
        #expect(during.scheduled == "ben")
        #expect(during.override == cover)
        #expect(during.since == cover.start && during.until == cover.end)
        #expect(r.onCall(at: utc("2026-01-14T07:59:59Z")).user == "ben")
        #expect(r.onCall(at: utc("2026-01-15T08:00:00Z")).user == "ben")
        let shift = r.shifts(from: utc("2026-01-13T00:00:00Z"), count: 1)[0]
        #expect(shift.scheduled == "ben")
        #expect(shift.segments.map(\.user) == ["ben", "zed", "ben"])
        #expect(shift.segments.map(\.start) == [utc("2026-01-12T08:00:00Z"), cover.start, cover.end])
    }

    @Test("an override across a handoff covers the end of one shift and the start of the next")
    func overrideAcrossBoundary() throws {
        let cover = RotationOverride(user: "zed", start: utc("2026-01-11T20:00:00Z"), end: utc("2026-01-12T20:00:00Z"))
        let r = try weekly("Europe/Berlin", overrides: [cover])
        #expect(r.onCall(at: utc("2026-01-11T19:59:00Z")).user == "ana")
        #expect(r.onCall(at: utc("2026-01-12T07:00:00Z")).user == "zed")
        #expect(r.onCall(at: utc("2026-01-12T09:00:00Z")).user == "zed")
        #expect(r.onCall(at: utc("2026-01-12T09:00:00Z")).scheduled == "ben")
        #expect(r.onCall(at: utc("2026-01-12T20:00:00Z")).user == "ben")
        let cov = r.coverage(from: utc("2026-01-10T00:00:00Z"), to: utc("2026-01-13T00:00:00Z"))
        #expect(cov.map(\.user) == ["ana", "zed", "ben"])
        // The override is one stretch although a handoff falls inside it.
        #expect(cov[1].start == cover.start && cov[1].end == cover.end)
    }

    @Test("the override listed last wins where two overlap")
    func overlappingOverrides() throws {
        let a = RotationOverride(user: "xia", start: utc("2026-01-13T00:00:00Z"), end: utc("2026-01-16T00:00:00Z"))
        let b = RotationOverride(user: "yan", start: utc("2026-01-14T00:00:00Z"), end: utc("2026-01-15T00:00:00Z"))
        let r = try weekly("Europe/Berlin", overrides: [a, b])
        #expect(r.onCall(at: utc("2026-01-13T12:00:00Z")).user == "xia")
        #expect(r.onCall(at: utc("2026-01-14T12:00:00Z")).user == "yan")
        #expect(r.onCall(at: utc("2026-01-15T12:00:00Z")).user == "xia")
    }

    @Test("a rotation of one member: always that person, every shift")
    func oneMember() throws {
        let r = try weekly("UTC", members: ["solo"])
        for day in ["2026-01-05T09:00:00Z", "2026-02-17T03:00:00Z", "2027-06-01T23:59:59Z"] {
            #expect(r.onCall(at: utc(day)).user == "solo")
        }
        #expect(r.shifts(from: utc("2026-01-06T00:00:00Z"), count: 3).map(\.scheduled) == ["solo", "solo", "solo"])
    }

    @Test("the next shifts are consecutive, with their members in order")
    func nextShifts() throws {
        let r = try weekly("Europe/Berlin")
        let shifts = r.shifts(from: utc("2026-01-20T00:00:00Z"), count: 4)
        #expect(shifts.map(\.scheduled) == ["cho", "ana", "ben", "cho"])
        #expect(shifts.map(\.index) == [2, 3, 4, 5])
        for (a, b) in zip(shifts, shifts.dropFirst()) { #expect(a.end == b.start) }
    }

    @Test("settings are parsed with errors that name the field")
    func parsing() throws {
        #expect(try ShiftLength.parse("2w").days == 14)
        #expect(try ShiftLength.parse("1 day").days == 1)
        #expect(throws: ValidationError.self) { try ShiftLength.parse("12h") }
        // Numbers whose product with a week overflows Int are refused, not trapped on.
        for huge in ["9000000000000000000w", "9223372036854775807d", "1317624576693539401w", "٣w", "0w", "367d"] {
            #expect(throws: ValidationError.self, "\(huge)") { try ShiftLength.parse(huge) }
        }
        #expect(try HandoffTime.parse("Mon 9:00") == HandoffTime(weekday: 1, hour: 9, minute: 0))
        #expect(try HandoffTime.parse("17:30") == HandoffTime(weekday: nil, hour: 17, minute: 30))
        #expect(throws: ValidationError.self) { try HandoffTime.parse("Funday 09:00") }
        #expect(throws: ValidationError.self) { try HandoffTime.parse("25:00") }
        #expect(LocalDate("2026-02-29") == nil)
        #expect(LocalDate("2028-02-29") != nil)
        var r = try weekly("Mars/Olympus")
        do {
            try r.validate()
            Issue.record("an unknown zone was accepted")
        } catch {
            #expect(error.field == "time_zone")
        }
        r = try weekly("UTC", members: [])
        #expect(throws: ValidationError(field: "members", message: "must name at least one person")) { try r.validate() }
        r = Rotation(
            name: "d",
            members: ["a"],
            timeZone: "UTC",
            shiftLength: try ShiftLength.parse("1d"),
            handoff: try HandoffTime.parse("Monday 09:00"),
            startDate: LocalDate("2026-01-01")!
        )
        #expect(throws: ValidationError.self) { try r.validate() }
    }

    @Test("calendar arithmetic on local dates round-trips over centuries")
    func localDates() {
        for n in stride(from: -200_000, through: 200_000, by: 997) {
            #expect(LocalDate(dayNumber: n).dayNumber == n)
        }
        #expect(LocalDate("2026-11-23")!.weekday == 1)
        #expect(LocalDate("2026-11-22")!.weekday == 7)
    }
}
