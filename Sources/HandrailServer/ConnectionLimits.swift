import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What one HTTP connection may cost: how long its request may take to arrive, how long it
/// may sit idle, and how many connections are served at once. Slow or idle sockets are
/// closed so that they cannot hold the server's file descriptors (and with them health
/// checks and ingestion) for long.
public struct ConnectionLimits: Sendable {
    /// A request's head and body must arrive within this long of its first byte (slow-header
    /// and slow-body senders are cut off).
    public var readTimeout: Duration = .seconds(15)
    /// A connection with no request in flight is closed after this long.
    public var idleTimeout: Duration = .seconds(30)
    /// Connections served at once; more are closed as they arrive. Default: 1,000, or half the
    /// process's file descriptor limit when that is lower.
    public var maxConnections: Int = ConnectionLimits.defaultMaxConnections

    public init() {}

    static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1_000 }
        return max(16, min(1_000, Int(clamping: limit.rlim_cur / 2)))
    }

    /// The HTTP/1 server Hummingbird runs with these limits.
    func server() -> HTTPServerBuilder {
        let open = OpenConnections(limit: maxConnections)
        let readTimeout = TimeAmount.nanoseconds(Int64(clamping: readTimeout.components.seconds) * 1_000_000_000)
        return .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionCountHandler(open: open), RequestReadTimeoutHandler(timeout: readTimeout)],
                idleTimeout: .nanoseconds(Int64(clamping: idleTimeout.components.seconds) * 1_000_000_000)
            )
        )
    }
}

/// The connections open now, against the limit.
final class OpenConnections: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Counts a new connection; false when it is over the limit (it is counted all the same,
    /// and uncounted when it closes).
    func open() -> Bool { count.wrappingAdd(1, ordering: .relaxed).newValue <= limit }
    func close() { count.wrappingSubtract(1, ordering: .relaxed) }
    var current: Int { count.load(ordering: .relaxed) }
}

/// Closes a connection that arrives while `limit` are open.
final class ConnectionCountHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    let open: OpenConnections
    private var counted = false

    init(open: OpenConnections) { self.open = open }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        if !open.open() { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted { open.close() }
        counted = false
    }
}

/// Closes a connection whose request (head and body) has not fully arrived `timeout` after
/// the connection opened or the previous request ended and its next one began.
final class RequestReadTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }
    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context)
        case .body: break
        case .end: disarm()
        }
        context.fireChannelRead(data)
    }

    /// (Re)starts the clock for one request. Waiting for the first request on a new
    /// connection counts too: a slow header never produces a head.
    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}
