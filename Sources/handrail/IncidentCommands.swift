import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

struct Incidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read incidents from the database: a list, or one incident with its alerts, steps and timeline.",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List incidents, newest first: ref, state, severity, opened, owner (? awaiting acceptance), runbook, title."
        )
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only these states, comma-separated (triggered, acknowledged, mitigated, resolved, reopened).") var state: String?
        @Flag(help: "Only open incidents (every state but resolved).") var open = false
        @Option(help: "Only this severity (info, warning, critical).") var severity: String?
        @Option(help: "Only incidents of this runbook id.") var runbook: String?
        @Option(help: "Only incidents whose service label is this.") var service: String?
        @Option(help: "Only incidents whose model label is this.") var model: String?
        @Option(help: "Only incidents this person owns (a username).") var owner: String?
        @Option(help: "Only incidents whose title contains these words (any case).") var text: String?
        @Option(help: "At most this many (1-200); the command says when more match.") var limit = 50
        @Flag(help: "Every matching incident, in pages of 200 (instead of --limit).") var all = false

        func run() async throws {
            var filter = IncidentFilter()
            do {
                if let state { filter.states = try state.split(separator: ",").map { try IncidentState.parse(String($0)) } }
                if open { filter.states = IncidentState.allCases.filter(\.isOpen) }
            } catch let error as HandrailCore.ValidationError {
                throw fail("--state: \(error.message)")
            }
            if let severity {
                guard let s = Severity(rawValue: severity.lowercased()) else { throw fail("--severity must be info, warning or critical") }
                filter.severity = s
            }
            guard (1...200).contains(limit) else { throw fail("--limit must be from 1 to 200") }
            filter.runbook = runbook
            filter.service = service
            filter.model = model
            filter.owner = owner
            filter.text = text.flatMap { $0.isEmpty ? nil : $0 }
            filter.limit = all ? 200 : limit
            // The page asked for, then (with --all) the next ones; else one more page says how
            // many more match ("at least 200" when that page is full too).
            let (incidents, more) = try await withDatabase(database) { db, _ in
                let store = IncidentStore(pool: db.pool)
                var listed = try await store.list(filter)
                var page = listed
                while page.count == filter.limit, let last = page.last?.number {
                    var next = filter
                    next.before = last
                    next.limit = 200
                    page = try await store.list(next)
                    if !all { return (listed, page.count) }
                    listed += page
                }
                return (listed, 0)
            }
            let time = ISO8601DateFormatter()
            for i in incidents {
                print(
                    [
                        i.ref, i.state.rawValue, i.severity.rawValue, time.string(from: i.openedAt),
                        i.owner.map { $0 + (i.ownerPending ? "?" : "") } ?? "unowned",
                        i.runbookId.map { "\($0) v\(i.runbookVersion ?? 0)" } ?? "no runbook", i.title,
                    ].joined(separator: "\t")
                )
            }
            if incidents.isEmpty { FileHandle.standardError.write(Data("no incidents\n".utf8)) }
            if more > 0 {
                let count = more == 200 ? "at least 200 more" : "\(more) more"
                FileHandle.standardError.write(Data("showing the newest \(incidents.count); \(count) match (--limit up to 200, or --all)\n".utf8))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one incident (42 or INC-42): state, runbook and why, alerts, steps, timeline."
        )
        @OptionGroup var database: DatabaseOptions
        @Argument(help: ArgumentHelp("The incident: 42 or INC-42", valueName: "ref")) var ref: String
        @Flag(help: "Print the same JSON as GET /api/v1/incidents/{ref}.") var json = false

        func run() async throws {
            guard let number = IncidentRef.number(ref) else { throw fail("\(ref.debugDescription) is not an incident number (42 or INC-42)") }
            guard let d = try await withDatabase(database, { db, _ in try await IncidentStore(pool: db.pool).detail(number: number) }) else {
                throw fail("no incident \(IncidentRef.display(number))")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(d), as: UTF8.self))
                return
            }
            let time = ISO8601DateFormatter()
            let i = d.incident
            print("\(i.ref)  \(i.title)")
            print(
                "state: \(i.state.rawValue)   severity: \(i.severity.rawValue)   opened: \(time.string(from: i.openedAt))"
                    + (i.resolvedAt.map { "   resolved: \(time.string(from: $0))" } ?? "")
            )
            print("owner: " + (i.owner.map { $0 + (i.ownerPending ? " (awaiting acceptance)" : "") } ?? "nobody (unowned)"))
            for r in d.roles where r.role != .owner { print("\(r.role.rawValue): \(r.user)" + (r.pending ? " (awaiting acceptance)" : "")) }
            print("grouping: \(i.groupingKey)  (\(d.groupRule))")
            if let r = d.runbook {
                print("runbook: \(r.id) v\(r.version) — \(r.title)" + (r.currentVersion != r.version ? " (current is v\(r.currentVersion))" : ""))
            }
            print("why: \(d.runbookReason)")
            print("\nalerts (\(i.openAlerts) open of \(i.alertCount), \(i.deliveryCount) deliveries):")
            for a in d.alerts {
                let labels = a.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                print("  \(a.status)\t\(a.fingerprint)\t×\(a.deliveryCount)\t\(a.value.map { "value=\($0)" } ?? "")\t{\(labels)}")
            }
            if !d.steps.isEmpty {
                print("\nsteps:")
                for s in d.steps {
                    let mark = s.outcome.map { "[\($0.rawValue) by \(s.by ?? "?")" + (s.note.map { ": \($0)" } ?? "") + "]" } ?? "[ ]"
                    print("  \(s.index). \(mark) \(s.title)")
                }
            }
            print("\ntimeline:")
            for e in d.timeline {
                var detail = ""
                if case .object(let data) = e.data {
                    detail = data.sorted { $0.key < $1.key }.compactMap { k, v in
                        switch v {
                        case .string(let s): "\(k)=\(s)"
                        case .number(let n): "\(k)=\(n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n))"
                        case .bool(let b): "\(k)=\(b)"
                        default: nil
                        }
                    }.joined(separator: " ")
                }
                print("  \(time.string(from: e.at))  \(e.type.rawValue)  by \(e.actor)  \(detail)")
            }
        }
    }
}
