public import Hummingbird
import Logging
public import NIOCore
import NIOEmbedded
import ServiceLifecycle
import Synchronization

/// In-process HTTP tests: requests go straight to the application's responder (the same
/// router and middleware `serve` runs), with the application's services running, and no
/// socket in between.
///
/// This is hummingbird's `app.test(.router)` over its public API. HummingbirdTesting itself
/// also carries its live-socket client, AsyncHTTPClient, whose NIOSSL (a second BoringSSL),
/// NIOHTTP2 and friends cost minutes of a cold build; real sockets are the black-box suite's
/// job (Tests/e2e).
public struct TestResponse: Sendable {
    public let status: HTTPResponse.Status
    public let headers: HTTPFields
    public let body: ByteBuffer
    /// The body as UTF-8 text.
    public var text: String { String(buffer: body) }
}

public struct RouterTestClient<Responder: HTTPResponder>: Sendable
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let responder: Responder
    let logger: Logger

    /// Sends one request through the router and collects the whole response.
    /// - Parameter from: the peer address the server sees (`nil`: none, as from nowhere).
    public func execute(
        _ uri: String,
        method: HTTPRequest.Method = .get,
        headers: HTTPFields = [:],
        body: ByteBuffer? = nil,
        from peer: SocketAddress? = nil
    ) async throws -> TestResponse {
        var headers = headers
        if let body { headers[.contentLength] = String(body.readableBytes) }
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: uri, headerFields: headers),
            body: RequestBody(buffer: body ?? ByteBuffer())
        )
        let channel = EmbeddedChannel()
        if let peer { try await channel.connect(to: peer).get() }
        let context = Responder.Context(source: .init(channel: channel, logger: logger))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            // What the HTTP server does with an error that leaves the router.
            response = try error.response(from: request, context: BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: logger)))
        } catch {
            response = Response(status: .internalServerError)
        }
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return TestResponse(status: response.status, headers: response.headers, body: writer.collected.withLock { $0 })
    }
}

final class CollectingWriter: ResponseBodyWriter, Sendable {
    let collected = Mutex(ByteBuffer())
    func write(_ buffer: ByteBuffer) async throws {
        collected.withLock { _ = $0.writeImmutableBuffer(buffer) }
    }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

extension ApplicationProtocol {
    /// Runs the application's services (database, background jobs), then `test` with a
    /// client that talks to the router in-process, then shuts the services down gracefully.
    public func testRouter<T: Sendable>(_ test: @Sendable (RouterTestClient<Responder>) async throws -> T) async throws -> T {
        let client = RouterTestClient(responder: try await responder, logger: logger)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let serviceGroup = ServiceGroup(
            configuration: .init(services: services + [StartedSignal(continuation: startedContinuation)], logger: logger)
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            for await _ in started {}
            do {
                let value = try await test(client)
                await serviceGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                return value
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}

/// Tells the test that the service group is running (so its shutdown reaches every service).
private struct StartedSignal: Service {
    let continuation: AsyncStream<Void>.Continuation
    func run() async throws {
        continuation.finish()
        try? await gracefulShutdown()
    }
}
