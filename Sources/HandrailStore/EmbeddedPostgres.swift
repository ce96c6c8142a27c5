public import Foundation
import HandrailCore
public import Logging
import Postgres
import Synchronization

/// A private PostgreSQL cluster that Handrail creates, starts and stops itself, for when no
/// `DATABASE_URL` is given.
///
/// - The cluster lives in `<dataDirectory>/postgres` and is created on first use
///   (`initdb`), reused afterwards.
/// - It listens on a Unix socket only (`listen_addresses=''`), in a directory only its owner
///   can enter; trust authentication is safe there because nobody else can reach the socket.
/// - `initdb` refuses to run as root, so when Handrail runs as root the cluster belongs to
///   the unprivileged `postgres` user (created by Debian's package), or `handrail-pg`.
/// - `pg_ctl` puts the server in its own session, so a Ctrl-C meant for Handrail does not
///   reach it; Handrail stops it itself after its own graceful shutdown, and a watchdog
///   stops it when the last Handrail using it ended without doing so (`startWatchdog`).
public struct EmbeddedPostgres: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public let dataDirectory: URL
    public var clusterDirectory: URL { dataDirectory.appendingPathComponent("postgres") }
    var runDirectory: URL { dataDirectory.appendingPathComponent("run") }
    public var logFile: URL { runDirectory.appendingPathComponent("postgres.log") }
    let binDirectory: URL
    /// The OS user the server runs as when Handrail runs as root; `nil` otherwise.
    let serverUser: String?
    let logger: Logger

    /// The database and role Handrail uses inside the cluster.
    public static let databaseName = "handrail"

    /// Finds the PostgreSQL binaries and decides who runs the server.
    /// - Throws: `Failure` with a one-line message saying what to install when `initdb`/`pg_ctl`
    ///   cannot be found.
    /// - Parameters:
    ///   - searchPath: where to look for `initdb`/`pg_ctl` and `pg_config` (default: `PATH`).
    ///   - postgresqlRoot: Debian's versioned installations (default `/usr/lib/postgresql`).
    public init(
        dataDirectory: URL,
        logger: Logger = Logger(label: "handrail.postgres.embedded"),
        searchPath: String = ProcessInfo.processInfo.environment["PATH"] ?? "",
        postgresqlRoot: String = "/usr/lib/postgresql"
    ) throws {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.logger = logger
        guard let bin = Self.findBinDirectory(searchPath: searchPath, postgresqlRoot: postgresqlRoot) else {
            throw Failure(
                description:
                    "PostgreSQL server binaries (initdb, pg_ctl) not found in PATH, `pg_config --bindir` or /usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql) or set DATABASE_URL"
            )
        }
        self.binDirectory = bin
        self.serverUser = geteuid() == 0 ? try Self.unprivilegedUser() : nil
    }

    // MARK: - Finding the binaries

    static func findBinDirectory(searchPath: String, postgresqlRoot root: String) -> URL? {
        let fm = FileManager.default
        func complete(_ dir: String) -> Bool {
            fm.isExecutableFile(atPath: dir + "/initdb") && fm.isExecutableFile(atPath: dir + "/pg_ctl")
        }
        let dirs = searchPath.split(separator: ":").map(String.init)
        if let dir = dirs.first(where: complete) { return URL(fileURLWithPath: dir) }
        // libpq-dev's pg_config knows the server's bindir (Debian keeps it off PATH).
        if let pgConfig = dirs.map({ $0 + "/pg_config" }).first(where: fm.isExecutableFile(atPath:)),
            let bindir = try? Subprocess.runBlocking(pgConfig, ["--bindir"]).output.trimmingCharacters(in: .whitespacesAndNewlines),
            !bindir.isEmpty, complete(bindir)
        {
            return URL(fileURLWithPath: bindir)
        }
        let versions = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        for v in versions where complete("\(root)/\(v)/bin") {
            return URL(fileURLWithPath: "\(root)/\(v)/bin")
        }
        return nil
    }

    static func unprivilegedUser() throws -> String {
        if getpwnam("postgres") != nil { return "postgres" }
        if getpwnam("handrail-pg") != nil { return "handrail-pg" }
        let result = try Subprocess.runBlocking("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "handrail-pg"])
        guard result.status == 0 else {
            throw Failure(
                description: "running as root, PostgreSQL needs an unprivileged user, and creating `handrail-pg` failed: \(result.output.oneLine)"
            )
        }
        return "handrail-pg"
    }

    // MARK: - Start and stop

    /// Creates the cluster if needed, starts it unless it is already running, makes sure the
    /// `handrail` database exists, and returns the libpq connection string for it.
    public func start() async throws -> String {
        let fm = FileManager.default
        if !fm.fileExists(atPath: dataDirectory.path) {
            // Searchable by the server user even under a strict umask; what is private lives
            // in the 0700 folders below it.
            try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        try prepareDirectory(runDirectory)
        try checkReachable()
        let socketDirectory = try self.socketDirectory()
        if socketDirectory != runDirectory { try prepareDirectory(socketDirectory) }

        if !fm.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) {
            logger.info("creating the embedded PostgreSQL cluster", metadata: ["path": "\(clusterDirectory.path)"])
            try? fm.removeItem(at: clusterDirectory)
            try prepareDirectory(clusterDirectory)
            try await runServerTool(
                "initdb",
                [
                    "--pgdata", clusterDirectory.path, "--username", Self.databaseName, "--auth", "trust",
                    "--encoding", "UTF8", "--no-locale", "--no-instructions",
                ]
            )
        }

        if try await isRunning() {
            logger.info("reusing the embedded PostgreSQL that is already running")
        } else {
            for path in [socketDirectory.path, logFile.path] where path.contains("'") {
                throw Failure(
                    description: "the path \(path) contains a single quote, which PostgreSQL's options cannot carry; set HANDRAIL_DATA_DIR elsewhere"
                )
            }
            // wal_init_zero=off: a new 16 MB WAL segment is not zero-filled first, which makes
            // every commit wait. A storm writes one every second or so once the recycled
            // ones are used up, and that was its p99: 63-66 ms against 43-45 ms without
            // (`script/bench storm`, 2 alternating runs; durability unchanged).
            try await runServerTool(
                "pg_ctl",
                [
                    "start", "--pgdata", clusterDirectory.path, "--wait", "--timeout", "60", "--silent",
                    "--log", logFile.path,
                    "-o",
                    "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory.path)' -c unix_socket_permissions=0700 -c wal_init_zero=off",
                ]
            )
            logger.info("started the embedded PostgreSQL", metadata: ["socket": "\(socketDirectory.path)", "log": "\(logFile.path)"])
        }

        try await startWatchdog()
        let admin = Self.conninfo(socket: socketDirectory.path, database: "postgres")
        let connection = try await PostgresConnection.connect(admin)
        defer { connection.close() }
        let exists = try await connection.query("SELECT 1 FROM pg_database WHERE datname = \(Self.databaseName)")
        if exists.isEmpty {
            try await connection.executeScript("CREATE DATABASE \(Self.databaseName)")
        }
        return Self.conninfo(socket: socketDirectory.path, database: Self.databaseName)
    }

    /// Stops the cluster once no Handrail holds a lease on it, however the last one ended
    /// (SIGKILL included, when nobody runs `close`): a process of its own, in its own session
    /// (a Ctrl-C meant for Handrail does not reach it), waits for the exclusive lock on
    /// `users.lock` (`flock`, granted only when no process holds its shared lease), then runs
    /// `pg_ctl stop --mode fast`. A Handrail that starts meanwhile waits for its lease until
    /// the stop is done, then starts the cluster again. One per start; each exits after its stop.
    func startWatchdog() async throws {
        let lock = dataDirectory.appendingPathComponent("users.lock").path
        var stop = [binDirectory.appendingPathComponent("pg_ctl").path, "stop", "--pgdata", clusterDirectory.path, "--mode", "fast", "--silent"]
        if let serverUser { stop = ["/usr/sbin/runuser", "-u", serverUser, "--"] + stop }
        // Started in the background by a shell that exits at once: the watchdog belongs to
        // init, not to this process (nothing to wait for, no zombie).
        let result = try await Subprocess.run(
            "/bin/sh",
            ["-c", #"cd / && setsid "$@" </dev/null >/dev/null 2>&1 &"#, "sh", "/usr/bin/flock", "--exclusive", lock] + stop
        )
        guard result.status == 0 else {
            throw Failure(description: "cannot start the watchdog that stops PostgreSQL with Handrail (sh, setsid, flock): \(result.output.oneLine)")
        }
    }

    /// Marks this process as a user of the cluster until `release` (a shared `flock` on
    /// `run/users.lock`, close-on-exec so the server it starts does not inherit it).
    public func lease() throws -> Lease {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let path = dataDirectory.appendingPathComponent("users.lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_SH) == 0 else {
            close(fd)
            throw Failure(description: "cannot lock \(path): \(String(cString: strerror(errno)))")
        }
        return Lease(fd: fd)
    }

    /// A process's claim on the embedded cluster. The last process to let go stops it,
    /// whoever started it — so a cluster left running by a crashed Handrail is adopted by
    /// the next one and stopped when that one stops, while a `handrail migrate` run next to
    /// a running server leaves the server's database alone.
    public final class Lease: Sendable {
        let fd: Int32
        private let released = Mutex(false)
        init(fd: Int32) { self.fd = fd }

        /// Lets go, once (a second call does nothing: closing the number again would close
        /// whatever file or socket has it by then); answers whether this process was the
        /// last user (and so must stop it).
        @discardableResult public func release() -> Bool {
            let first = released.withLock { done in
                defer { done = true }
                return !done
            }
            guard first else { return false }
            let last = flock(fd, LOCK_EX | LOCK_NB) == 0
            close(fd)
            return last
        }
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, nothing is lost).
    /// The watchdog may be stopping it at the same time: a stop that fails because the
    /// server is gone is a stop.
    public func stop() async throws {
        guard try await isRunning() else { return }
        do {
            try await runServerTool("pg_ctl", ["stop", "--pgdata", clusterDirectory.path, "--mode", "fast", "--wait", "--timeout", "60", "--silent"])
        } catch {
            if try await isRunning() { throw error }
        }
        logger.info("stopped the embedded PostgreSQL")
    }

    /// Whether a server is running on the cluster (`pg_ctl status` exits 0).
    public func isRunning() async throws -> Bool {
        guard FileManager.default.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) else { return false }
        return try await runServerTool("pg_ctl", ["status", "--pgdata", clusterDirectory.path], allowFailure: true) == 0
    }

    // MARK: - Helpers

    static func conninfo(socket: String, database: String) -> String {
        func quote(_ v: String) -> String { "'" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }
        return "host=\(quote(socket)) dbname=\(quote(database)) user=\(quote(databaseName))"
    }

    /// The socket lives in `run/` unless that path is too long for a Unix socket address
    /// (108 bytes with `/.s.PGSQL.5432`); then in a private directory under /tmp.
    func socketDirectory() throws -> URL {
        if runDirectory.path.utf8.count + 15 < 100 { return runDirectory }
        // Stable across processes (unlike `hashValue`), so a second Handrail finds the socket
        // of a cluster the first one started.
        let tag = Digest.sha256Hex(runDirectory.path).prefix(12)
        return URL(fileURLWithPath: "/tmp/handrail-pg-\(tag)")
    }

    /// Creates a directory with mode 0700, owned by the server user.
    func prepareDirectory(_ url: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: url.path)
        if let serverUser, let pw = getpwnam(serverUser) {
            guard chown(url.path, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
                throw Failure(description: "cannot hand \(url.path) to user \(serverUser): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// When the server runs as another user, every directory above the data directory must
    /// be searchable by it; say which one is not, rather than let initdb fail obscurely.
    func checkReachable() throws {
        guard let serverUser else { return }
        var dir = dataDirectory
        while dir.path != "/" {
            var info = stat()
            if stat(dir.path, &info) == 0, info.st_mode & 0o001 == 0 {
                throw Failure(
                    description:
                        "PostgreSQL runs as user \(serverUser) (Handrail runs as root), and \(dir.path) is not searchable by other users; set HANDRAIL_DATA_DIR to a directory it can reach (for example /var/lib/handrail)"
                )
            }
            dir = dir.deletingLastPathComponent()
        }
    }

    /// Runs a PostgreSQL tool, as the server user when Handrail is root.
    @discardableResult
    func runServerTool(_ tool: String, _ arguments: [String], allowFailure: Bool = false) async throws -> Int32 {
        let executable = binDirectory.appendingPathComponent(tool).path
        let (launch, args): (String, [String]) =
            if let serverUser { ("/usr/sbin/runuser", ["-u", serverUser, "--", executable] + arguments) } else { (executable, arguments) }
        let result = try await Subprocess.run(launch, args, currentDirectory: serverUser == nil ? nil : "/")
        if result.status != 0 && !allowFailure {
            var message = "\(tool) failed (exit \(result.status)): \(result.output.oneLine)"
            if tool == "pg_ctl", let log = try? String(contentsOf: logFile, encoding: .utf8) {
                message += " — last server log line: " + (log.split(separator: "\n").last.map(String.init) ?? "")
            }
            throw Failure(description: message)
        }
        return result.status
    }
}

extension String {
    /// Several lines folded into one, for one-line error messages.
    var oneLine: String {
        split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }
}
