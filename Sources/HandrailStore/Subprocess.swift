public import Foundation

/// Runs a program and collects its output, without Foundation's `Process` (pg_ctl, and
/// sendmail for e-mail notifications).
///
/// Foundation's `Process` on Linux watches for the child's exit through a descriptor the
/// child inherits; `pg_ctl start` forks the PostgreSQL server, which keeps that descriptor
/// open for its whole life, so `Process` never reports that `pg_ctl` exited. Here the only
/// descriptors a child gets are standard input (/dev/null) and one pipe as standard output
/// and error, opened close-on-exec, so nothing leaks into daemons the child starts.
public enum Subprocess {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `executable` with `arguments`, optionally from `currentDirectory`, with `input`
    /// as its standard input (else /dev/null), and returns its exit status and combined
    /// output. Waits on a background thread, never on a thread of the cooperative pool.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        currentDirectory: String? = nil,
        input: Data? = nil,
        timeout: Duration? = nil
    ) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result { try runBlocking(executable, arguments, currentDirectory: currentDirectory, input: input, timeout: timeout) }
                )
            }
        }
    }

    static func runBlocking(
        _ executable: String,
        _ arguments: [String],
        currentDirectory: String? = nil,
        input: Data? = nil,
        timeout: Duration? = nil
    ) throws -> (status: Int32, output: String) {
        var argv = [executable] + arguments
        var path = executable
        if let currentDirectory {
            // `sh -c 'cd DIR && exec "$@"'` changes directory without a glibc extension.
            argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", currentDirectory] + argv
            path = "/bin/sh"
        }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw Failure(description: "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec: the child sees the pipe only as its descriptors 1 and 2.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inFds: [Int32] = [-1, -1]
        if input != nil {
            // A socket pair, not a pipe: a child that exits without reading makes send() fail
            // with EPIPE (MSG_NOSIGNAL), where a pipe's write would raise SIGPIPE.
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &inFds) == 0 else {
                throw Failure(description: "cannot create a socket pair: \(String(cString: strerror(errno)))")
            }
            _ = fcntl(inFds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(inFds[1], F_SETFD, FD_CLOEXEC)
            posix_spawn_file_actions_adddup2(&actions, inFds[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)

        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for item in cArgs { free(item) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, cArgs, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            if input != nil {
                close(inFds[0])
                close(inFds[1])
            }
            throw Failure(description: "cannot run \(executable): \(String(cString: strerror(spawned)))")
        }
        if let input {
            close(inFds[0])
            if let timeout {
                // A child that neither reads nor exits cannot hold the write past the deadline.
                var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
                _ = setsockopt(inFds[1], SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            }
            // Messages are small (a few KB): written whole before the output is read.
            input.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var offset = 0
                while offset < raw.count {
                    let n = send(inFds[1], base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                    if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
                }
            }
            close(inFds[1])
        }
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        // With a timeout, a child still running at the deadline is killed (before it is
        // reaped, so the signal cannot reach another process); its output then ends.
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var killed = false
        while true {
            if let deadline, !killed {
                let left = ContinuousClock.now.duration(to: deadline)
                var ready = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
                let ms = max(0, Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
                if poll(&ready, 1, ms) == 0 {
                    kill(pid, SIGKILL)
                    killed = true
                    continue
                }
            }
            let n = read(fds[0], &buffer, buffer.count)
            if n > 0 {
                output.append(buffer, count: n)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        if killed { throw Failure(description: "\(executable) did not finish within \(timeout ?? .zero) and was stopped") }
        return (exitStatus, String(decoding: output, as: UTF8.self))
    }
}
