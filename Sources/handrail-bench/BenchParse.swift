import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

/// `handrail-bench bench-parse FILE`: the server's own CPU per Alertmanager delivery that does not
/// touch the network or the database — reading the body (`AlertNormalizer.alertmanager`) and
/// writing the rows PostgreSQL gets (`IngestStore.repeatRowsJSON`) — over every body of FILE
/// (one JSON body per line), repeated; and the same two steps done by `JSONDecoder` and
/// `JSONEncoder` (Codable), which the hand-written reader and writer must beat to stay.
/// `script/bench` prints its figures.
struct BenchParse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-parse",
        abstract: "Time reading Alertmanager bodies and writing their rows (script/bench)."
    )

    @Argument(help: "A file of Alertmanager bodies, one per line.")
    var file: String

    @Option(help: "How many times to go over the file.")
    var rounds = 50

    /// What Handrail reads of an Alertmanager body, as Codable reads it.
    struct Body: Decodable {
        struct Alert: Decodable {
            var status: String
            var labels: [String: String]
            var annotations: [String: String]?
            var values: [String: Double]?
            var startsAt: String?
            var endsAt: String?
            var generatorURL: String?
            var fingerprint: String?
        }
        var alerts: [Alert]
        var receiver: String?
        var groupKey: String?
        var truncatedAlerts: Int?
    }

    /// What the resend statement reads of an alert, as Codable writes it.
    struct Row: Encodable {
        var ord: Int
        var fingerprint: String
        var status: String
        var labels: [String: String]
        var annotations: [String: String]
        var vals: [String: Double]
        var links: [String: String]
        var value: Double?
        var ends_at: Double?
    }

    func run() async throws {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let bodies = text.split(separator: "\n").map { Data($0.utf8) }
        guard !bodies.isEmpty else { throw fail("\(file): no bodies") }
        let batches = try bodies.map { try AlertNormalizer.alertmanager($0) }
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        func best(_ work: () throws -> Int) rethrows -> (Duration, Int) {
            let clock = ContinuousClock()
            var best = Duration.seconds(1000)
            var bytes = 0
            for _ in 0..<rounds {
                let start = clock.now
                bytes = try work()
                best = min(best, clock.now - start)
            }
            return (best, bytes)
        }
        let (read, _) = try best { try bodies.reduce(0) { $0 &+ (try AlertNormalizer.alertmanager($1)).alerts.count } }
        let (decode, _) = try best {
            try bodies.reduce(0) { n, body in
                let decoded = try decoder.decode(Body.self, from: body)
                // Dates as the reader reads them, so both do the same work.
                let dates = decoded.alerts.reduce(0) {
                    $0 &+ ($1.startsAt.flatMap(RFC3339.parse) == nil ? 0 : 1) &+ ($1.endsAt.flatMap(RFC3339.parse) == nil ? 0 : 1)
                }
                return n &+ decoded.alerts.count &+ dates
            }
        }
        let (write, bytes) = best { batches.reduce(0) { $0 &+ IngestStore.repeatRowsJSON($1.alerts).utf8.count } }
        let (encode, _) = try best {
            try batches.reduce(0) { n, batch in
                let rows = batch.alerts.enumerated().map { i, a in
                    Row(
                        ord: i,
                        fingerprint: a.fingerprint,
                        status: a.status.rawValue,
                        labels: a.labels,
                        annotations: a.annotations,
                        vals: a.values.filter { $0.value.isFinite },
                        links: a.links,
                        value: a.value,
                        ends_at: a.endsAt?.timeIntervalSince1970
                    )
                }
                return n &+ (try encoder.encode(rows)).count
            }
        }
        func micros(_ d: Duration) -> Double {
            (Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6) / Double(bodies.count)
        }
        print(
            String(
                format:
                    "per delivery, best of %d rounds over %d bodies (%d bytes of rows): reading %.1f µs (JSONDecoder %.1f µs), writing the rows %.1f µs (JSONEncoder %.1f µs)",
                rounds,
                bodies.count,
                bytes / bodies.count,
                micros(read),
                micros(decode),
                micros(write),
                micros(encode)
            )
        )
    }
}
