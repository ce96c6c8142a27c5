import ArgumentParser
import Foundation
import HandrailServer
import HandrailStore
import Hummingbird
import Logging
import NIOCore

/// `handrail-bench bench-ceiling`: the raw ceiling `script/bench` measures ingestion against — a
/// minimal HTTP POST + one-row INSERT, on the same HTTP server, the same PostgreSQL driver and
/// pool size as `handrail serve`, with none of Handrail's work (no key, no parsing, no routing).
struct BenchCeiling: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ceiling",
        abstract: "Serve POST /ceiling: store the body as one row (script/bench's ceiling); the database is DATABASE_URL's."
    )

    @Option(name: .customLong("listen"), help: ArgumentHelp("host:port to listen on.", valueName: "host:port"))
    var listen = "127.0.0.1:18090"

    func run() async throws {
        var logger = Logger(label: "handrail-bench")
        logger.logLevel = .warning
        guard let (host, port) = HandrailConfiguration.parseListen(listen) else {
            throw fail("--listen: \(listen.debugDescription) is not host:port")
        }
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["DATABASE_URL"] else { throw fail("DATABASE_URL names the bench's database") }
        // The same pool size as `handrail serve`.
        let size = environment["HANDRAIL_DB_POOL_SIZE"].flatMap(Int.init) ?? HandrailConfiguration.defaultDatabaseConnections
        let db = try await HandrailDatabase.open(
            databaseURL: url,
            dataDirectory: URL(fileURLWithPath: "/nonexistent"),
            maxConnections: size,
            logger: logger
        )
        let store = CeilingStore(pool: db.pool)
        try await store.prepare()
        let router = Router()
        router.post("/ceiling") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 512 << 10)
            let id = try await store.insert(body: String(buffer: body))
            return Response(
                status: .accepted,
                headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"stored","delivery_id":\#(id)}"#))
            )
        }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
        try await app.runService()
        await db.close()
    }
}
