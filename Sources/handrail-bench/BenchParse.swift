import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore

/// `handrail-bench bench-parse FILE`: the server's own CPU per Alertmanager delivery that does not
/// touch the network or the database — reading the body (`AlertNormalizer.alertmanager`) and
/// writing the rows PostgreSQL gets (`IngestStore.repeatRowsJSON`) — over every body of FILE
/// (one JSON body per line), repeated. `script/bench` prints its figure.
struct BenchParse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-parse",
        abstract: "Time reading Alertmanager bodies and writing their rows (script/bench)."
    )

    @Argument(help: "A file of Alertmanager bodies, one per line.")
    var file: String

    @Option(help: "How many times to go over the file.")
    var rounds = 50

    func run() async throws {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let bodies = text.split(separator: "\n").map { Data($0.utf8) }
        guard !bodies.isEmpty else { throw fail("\(file): no bodies") }
        var bytes = 0
        let clock = ContinuousClock()
        var best = Duration.seconds(1000)
        var parseBest = Duration.seconds(1000)
        for _ in 0..<rounds {
            var parse = Duration.zero
            let start = clock.now
            for body in bodies {
                let t0 = clock.now
                let batch = try AlertNormalizer.alertmanager(body)
                parse += clock.now - t0
                bytes &+= IngestStore.repeatRowsJSON(batch.alerts).utf8.count
            }
            best = min(best, clock.now - start)
            parseBest = min(parseBest, parse)
        }
        func micros(_ d: Duration) -> Double {
            Double(d.components.attoseconds) / 1e12 / Double(bodies.count) + Double(d.components.seconds) * 1e6 / Double(bodies.count)
        }
        print(
            String(
                format: "read + rows per delivery: %.1f µs (reading the body %.1f µs), best of %d rounds over %d bodies (%d bytes of rows)",
                micros(best),
                micros(parseBest),
                rounds,
                bodies.count,
                bytes / rounds / bodies.count
            )
        )
    }
}
