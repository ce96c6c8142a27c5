import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

/// A time as people in the rotation's zone read it: `Mon 2026-11-23 09:00 +01:00`.
func localTime(_ date: Date, zone: String) -> String {
    TimeFormatter(zone: zone).string(date)
}

/// `--at`/`--from` values: RFC 3339, or nothing for now.
func parseInstant(_ text: String?, option: String) throws -> Date {
    guard let text else { return Date() }
    guard let date = RFC3339.parse(text) else {
        throw fail("\(option) must be an RFC 3339 time such as 2026-11-23T08:00:00Z, not \(text.debugDescription)")
    }
    return date
}

struct Rotations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rotations: who is on call now and next; create and change them, add overrides (audited as the OS user).",
        subcommands: [List.self, Show.self, OnCall.self, Create.self, Edit.self, Override.self, Escalation.self, Channels.self, LoadLimits.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every rotation: name, who is on call now and until when, members, shifts.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let now = Date()
            let rotations = try await withDatabase(database) { db, _ in try await RotationStore(pool: db.pool).list(now: now) }
            for r in rotations {
                let on = r.onCall(at: now)
                let until = on.until.map { " until \(localTime($0, zone: r.timeZone))" } ?? ""
                print(
                    [
                        r.name, (on.user ?? "nobody") + until, r.members.joined(separator: ","),
                        "\(r.shiftLength) shifts, handoff \(r.handoff) \(r.timeZone)",
                    ].joined(separator: "\t")
                )
            }
            if rotations.isEmpty { FileHandle.standardError.write(Data("no rotations\n".utf8)) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One rotation: settings, the next shifts with who covers them, overrides.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @Option(help: "How many shifts to list (1-100).") var shifts = 4

        func run() async throws {
            guard (1...100).contains(shifts) else { throw fail("--shifts must be from 1 to 100") }
            guard let r = try await withDatabase(database, { db, _ in try await RotationStore(pool: db.pool).find(name: name) }) else {
                throw fail("no rotation \(name.debugDescription)")
            }
            print(
                "\(r.name): \(r.members.joined(separator: ", ")) in order, \(r.shiftLength) shifts, handoff \(r.handoff) \(r.timeZone), from \(r.startDate)"
            )
            let now = Date()
            print("on call now: \(r.onCall(at: now).user ?? "nobody")")
            for shift in r.shifts(from: now, count: shifts) {
                print(
                    "shift \(shift.index): \(localTime(shift.start, zone: r.timeZone)) → \(localTime(shift.end, zone: r.timeZone))  \(shift.scheduled)"
                )
                for s in shift.segments where s.override != nil {
                    print(
                        "    covered by \(s.user) \(localTime(s.start, zone: r.timeZone)) → \(localTime(s.end, zone: r.timeZone)) (override \(s.override?.id ?? 0))"
                    )
                }
            }
            for o in r.overrides {
                print("override \(o.id ?? 0): \(o.user) \(RFC3339.format(o.start)) → \(RFC3339.format(o.end))\(o.reason.map { " (\($0))" } ?? "")")
            }
        }
    }

    struct OnCall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "oncall",
            abstract: "Who is on call in a rotation at a time (default now); prints the username."
        )
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @Option(help: "An RFC 3339 time (default now).") var at: String?

        func run() async throws {
            let t = try parseInstant(at, option: "--at")
            guard let r = try await withDatabase(database, { db, _ in try await RotationStore(pool: db.pool).find(name: name) }) else {
                throw fail("no rotation \(name.debugDescription)")
            }
            let on = r.onCall(at: t)
            guard let user = on.user else {
                throw fail("nobody is on call in \(name) at \(RFC3339.format(t)) (the first shift starts \(RFC3339.format(r.shiftStart(0))))")
            }
            print(user)
            var detail = on.override.map { "covering for \(on.scheduled ?? "nobody") (override \($0.id ?? 0))" } ?? "scheduled"
            if let until = on.until { detail += ", until \(localTime(until, zone: r.timeZone))" }
            FileHandle.standardError.write(Data("\(detail)\n".utf8))
        }
    }

    struct Settings: ParsableArguments {
        @Option(help: "Usernames in shift order, comma-separated.") var members: String
        @Option(name: .customLong("time-zone"), help: "An IANA zone such as Europe/Berlin.") var timeZone: String
        @Option(name: .customLong("shift-length"), help: "Whole days or weeks: 1d, 3d, 1w, 2w.") var shiftLength = "1w"
        @Option(help: "When shifts change hands: \"Monday 09:00\" or 09:00.") var handoff = "Monday 09:00"
        @Option(name: .customLong("start-date"), help: "The first shift's date, YYYY-MM-DD.") var startDate: String

        func rotation(_ name: String) throws -> Rotation {
            guard let date = LocalDate(startDate) else { throw fail("--start-date must be a date such as 2026-11-23") }
            return Rotation(
                name: name,
                members: members.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                timeZone: timeZone,
                shiftLength: try ShiftLength.parse(shiftLength, field: "--shift-length"),
                handoff: try HandoffTime.parse(handoff, field: "--handoff"),
                startDate: date
            )
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a rotation.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name (what runbooks name in owners:).") var name: String
        @OptionGroup var settings: Settings

        func run() async throws { try await save(name, settings, database, create: true) }
    }

    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace a rotation's settings and members.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @OptionGroup var settings: Settings

        func run() async throws { try await save(name, settings, database, create: false) }
    }

    static func save(_ name: String, _ settings: Settings, _ database: DatabaseOptions, create: Bool) async throws {
        let rotation = try settings.rotation(name)
        let saved = try await withDatabase(database) { db, _ in
            try await RotationStore(pool: db.pool).save(rotation, create: create, by: commandLineActor)
        }
        guard saved != nil else { throw fail("no rotation \(name.debugDescription)") }
        print("rotation \(name) \(create ? "created" : "changed")")
    }

    struct Override: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Someone covers a rotation from one time to another.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @Option(help: "Who covers.") var user: String
        @Option(help: "From (RFC 3339).") var from: String
        @Option(help: "To (RFC 3339).") var to: String
        @Option(help: "Why (a swap, a sick day).") var reason: String?

        func run() async throws {
            let start = try parseInstant(from, option: "--from")
            let end = try parseInstant(to, option: "--to")
            guard end > start else { throw fail("--to must be after --from") }
            let result = try await withDatabase(database) { db, _ in
                try await RotationStore(pool: db.pool).addOverride(
                    rotation: name,
                    user: user,
                    start: start,
                    end: end,
                    reason: reason,
                    by: commandLineActor
                )
            }
            switch result {
            case .added(let o): print("override \(o.id ?? 0): \(user) covers \(name) \(RFC3339.format(start)) → \(RFC3339.format(end))")
            case .noRotation: throw fail("no rotation \(name.debugDescription)")
            case .unknownUser: throw fail("--user: no enabled user \(user.debugDescription)")
            }
        }
    }
}

extension Rotations {
    struct LoadLimits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "load-limits",
            abstract: "The on-call load a rotation's handoffs flag per window: night interruptions and pages (audited)."
        )
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The rotation's name.") var name: String
        @Option(help: "Night interruptions (22:00-07:00 in the person's zone) a window before a person is flagged.") var nightPages: Int
        @Option(help: "Pages a window before a person is flagged.") var pages: Int

        func run() async throws {
            guard (0...10_000).contains(nightPages) else { throw fail("--night-pages must be from 0 to 10000") }
            guard (0...100_000).contains(pages) else { throw fail("--pages must be from 0 to 100000") }
            let set = try await withDatabase(database) { db, _ in
                try await RotationStore(pool: db.pool).setLoadLimits(rotation: name, nightPages: nightPages, pages: pages, by: commandLineActor)
            }
            guard let set else { throw fail("no rotation \(name.debugDescription)") }
            print("\(name): flags more than \(set.nightPages) night interruptions or \(set.pages) pages a window")
        }
    }
}

struct Decisions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rollback decisions of an incident (recorded by people through the API or the web UI).",
        subcommands: [List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An incident's decisions, oldest first: id, status, kind, target, who and when, rationale."
        )
        @OptionGroup var database: DatabaseOptions
        @Option(help: ArgumentHelp("The incident: 42 or INC-42", valueName: "ref")) var incident: String
        @Flag(help: "Print the same JSON as GET /api/v1/incidents/{ref}/decisions.") var json = false

        func run() async throws {
            guard let number = IncidentRef.number(incident) else {
                throw fail("--incident: \(incident.debugDescription) is not an incident number (42 or INC-42)")
            }
            guard let decisions = try await withDatabase(database, { db, _ in try await DecisionStore(pool: db.pool).list(number: number) }) else {
                throw fail("no incident \(IncidentRef.display(number))")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                struct Body: Encodable { let decisions: [Decision] }
                print(String(decoding: try encoder.encode(Body(decisions: decisions)), as: UTF8.self))
                return
            }
            for d in decisions {
                print(
                    [
                        String(d.id), d.status, d.kind.rawValue, d.target.description,
                        "\(d.decidedBy) (\(d.decidedByRole.rawValue)) \(RFC3339.format(d.decidedAt))", d.rationale,
                    ]
                    .joined(separator: "\t")
                )
                if let e = d.execution { print("\texecuted by \(e.by) \(RFC3339.format(e.at))") }
                if let o = d.outcome {
                    print("\toutcome \(o.outcome.rawValue) by \(o.confirmedBy): \(o.check)\(o.note.map { " — \($0)" } ?? "")")
                } else if let p = d.proposal {
                    print("\tproposed \(p.outcome?.rawValue ?? "nothing yet"): \(p.check)")
                }
                if let s = d.supersededBy { print("\tsuperseded by \(s)") }
            }
            if decisions.isEmpty { FileHandle.standardError.write(Data("no decisions on \(IncidentRef.display(number))\n".utf8)) }
        }
    }
}
