import HandrailStore
import Logging
import ServiceLifecycle

/// Every replica looks every few seconds for tables that have doubled since the planner
/// last saw them, and analyzes them (`TableStatistics`): on a young database the plans
/// follow the tables' growth instead of the first minute's empty tables.
struct StatisticsWatch: Service {
    let statistics: TableStatistics
    let logger: Logger
    var poll: Duration = .seconds(2)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let analyzed = try await statistics.analyzeGrownTables()
                    if !analyzed.isEmpty { logger.debug("analyzed grown tables", metadata: ["tables": "\(analyzed.joined(separator: ","))"]) }
                    try? await Task.sleep(for: poll)
                } catch {
                    logger.warning("cannot analyze grown tables", metadata: ["error": "\(String(reflecting: error))"])
                    try? await Task.sleep(for: poll * 15)
                }
            }
        }
    }
}
