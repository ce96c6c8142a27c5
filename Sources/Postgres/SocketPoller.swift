#if os(Linux)
import CLibPQ
import Glibc
import Synchronization
import Foundation

/// One thread that waits, with epoll, for every connection's socket at once, and wakes the
/// task waiting on a socket when it becomes ready: no thread per busy connection, and under
/// load one `epoll_wait` answers several connections.
final class SocketPoller: Sendable {
    static let shared = SocketPoller()

    enum Interest {
        case readable
        /// Readable or writable: libpq's advice while its output is not flushed.
        case readableOrWritable
    }

    private struct Waiter {
        let continuation: CheckedContinuation<Bool, Never>
        let deadline: ContinuousClock.Instant?
    }

    private let epoll: Int32
    private let waiters = Mutex<[Int32: Waiter]>([:])
    /// How often the thread looks for waiters past their deadline (deadlines are seconds long).
    private static let deadlineCheck = Duration.milliseconds(100)

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let thread = Thread { [self] in run() }
        thread.name = "handrail.postgres.poller"
        thread.start()
    }

    /// Returns true once `fd` is ready for `interest`, or has an error or hung up (the caller's
    /// next libpq call tells which). It may also return early; callers loop on libpq's state.
    /// Returns false when `deadline` passed first.
    func wait(for fd: Int32, _ interest: Interest, until deadline: ContinuousClock.Instant? = nil) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let earlier = waiters.withLock { $0.updateValue(Waiter(continuation: continuation, deadline: deadline), forKey: fd) }
            // One task per connection at a time: an earlier waiter on this socket is a bug, and
            // waking it (early, which callers allow) is better than losing it.
            earlier?.continuation.resume(returning: true)
            var event = epoll_event()
            let flags = interest == .readable ? EPOLLIN.rawValue : EPOLLIN.rawValue | EPOLLOUT.rawValue
            event.events = flags | EPOLLONESHOT.rawValue | EPOLLRDHUP.rawValue
            event.data.fd = fd
            // A socket is added the first time; afterwards its one-shot registration is re-armed.
            // (A closed socket leaves epoll by itself, so a new connection that gets the same
            // number is added again.)
            var ok = epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) == 0
            if !ok, errno == ENOENT { ok = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 }
            if !ok {
                // Nothing to wait with: return at once; the caller's libpq call reports a dead
                // socket, and a live one is asked again.
                waiters.withLock { $0.removeValue(forKey: fd) }?.continuation.resume(returning: true)
            }
        }
    }

    private func run() {
        guard epoll >= 0 else { return }
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var nextCheck = ContinuousClock.now + Self.deadlineCheck
        while true {
            let n = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), 100) }
            let ready = n > 0 ? (0..<Int(n)).map { events[$0].data.fd } : []  // n < 0: EINTR
            let woken = waiters.withLock { waiters in ready.compactMap { waiters.removeValue(forKey: $0) } }
            for item in woken { item.continuation.resume(returning: true) }
            let now = ContinuousClock.now
            guard now >= nextCheck else { continue }
            nextCheck = now + Self.deadlineCheck
            let late = waiters.withLock { waiters in
                let fds = waiters.filter { $0.value.deadline.map { $0 <= now } ?? false }.map(\.key)
                return fds.compactMap { waiters.removeValue(forKey: $0) }
            }
            for item in late { item.continuation.resume(returning: false) }
        }
    }
}
#else
#error("Handrail's PostgreSQL driver waits with epoll: it builds on Linux only")
#endif
