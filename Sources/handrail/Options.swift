import ArgumentParser
import Foundation
import HandrailServer

/// Where the files Handrail ships live (`migrations/`, `templates/` with `static/`,
/// `runbooks/`, `openapi.yaml`), found from the running executable: `../share/handrail/`
/// beside its folder (an install: `/usr/bin/handrail` reads `/usr/share/handrail/`), else the
/// checkout it was built in (the nearest folder above it holding `Package.swift` and
/// `migrations/`: `.build/…/handrail` in a clone). Flags and environment variables override
/// each path; a copy of the binary elsewhere needs its `share/handrail/` beside it.
let resourceRoot: URL = {
    let fm = FileManager.default
    let path = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let folder = URL(fileURLWithPath: path).resolvingSymlinksInPath().deletingLastPathComponent()
    let installed = folder.deletingLastPathComponent().appendingPathComponent("share/handrail")
    if fm.fileExists(atPath: installed.appendingPathComponent("migrations").path) { return installed }
    var dir = folder
    while dir.path != "/" {
        if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
            fm.fileExists(atPath: dir.appendingPathComponent("migrations").path)
        {
            return dir
        }
        dir = dir.deletingLastPathComponent()
    }
    return installed
}()

let environment = ProcessInfo.processInfo.environment

/// Options every command that touches the database shares.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp("libpq connection string (URI or key=value). Env: DATABASE_URL. Unset: the embedded PostgreSQL.", valueName: "conninfo")
    )
    var databaseURL: String?

    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "Handrail's own files; the embedded cluster lives in its postgres/. Env: HANDRAIL_DATA_DIR. Default: .handrail",
            valueName: "path"
        )
    )
    var dataDirectory: String?

    @Option(
        name: .customLong("migrations-dir"),
        help: ArgumentHelp(
            "Migration SQL files. Env: HANDRAIL_MIGRATIONS_DIR. Default: migrations/ of ../share/handrail (or of the checkout)",
            valueName: "path"
        )
    )
    var migrationsDirectory: String?

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp("trace, debug, info, notice, warning or error. Env: HANDRAIL_LOG_LEVEL. Default: info", valueName: "level")
    )
    var logLevel: String?

    var resolvedDatabaseURL: String? {
        let value = databaseURL ?? environment["DATABASE_URL"]
        return value?.isEmpty == true ? nil : value
    }

    var resolvedDataDirectory: URL {
        directory(dataDirectory, env: "HANDRAIL_DATA_DIR", default: URL(fileURLWithPath: ".handrail"))
    }

    var resolvedMigrationsDirectory: URL {
        directory(migrationsDirectory, env: "HANDRAIL_MIGRATIONS_DIR", default: resourceRoot.appendingPathComponent("migrations"))
    }

    @Flag(help: "Say on standard error which database the command uses.") var verbose = false

    var resolvedLogLevel: String? { logLevel ?? environment["HANDRAIL_LOG_LEVEL"] }

    /// The database in words, without its password: what `--verbose` and errors name.
    var described: String {
        if let url = resolvedDatabaseURL { return "PostgreSQL at \(Self.redacted(url))" }
        return "the embedded PostgreSQL in \(resolvedDataDirectory.appendingPathComponent("postgres").path)"
    }

    /// Why this command must not make a new embedded database, or nil: it may. Only `serve`
    /// and `demo` make one unasked; any other command needs `DATABASE_URL`, a data directory
    /// named (`--data-dir`, `HANDRAIL_DATA_DIR`), or one already there, so that a command run
    /// from the wrong folder does not answer from a new, empty database.
    func refusalToCreate(command: String) -> String? {
        guard resolvedDatabaseURL == nil, dataDirectory == nil, environment["HANDRAIL_DATA_DIR"]?.isEmpty ?? true else { return nil }
        let cluster = resolvedDataDirectory.appendingPathComponent("postgres/PG_VERSION").path
        guard !FileManager.default.fileExists(atPath: cluster) else { return nil }
        return "no database here: DATABASE_URL is not set and \(resolvedDataDirectory.path) holds no embedded PostgreSQL. "
            + "Set DATABASE_URL (or --database-url), run from the folder where `handrail serve` keeps its data, "
            + "or give --data-dir to use (or create) one there; `handrail \(command)` does not create a database by itself."
    }

    /// A connection string with its password replaced: `password=…` (key=value) and
    /// `user:…@` (URI).
    static func redacted(_ url: String) -> String {
        var out = url.replacing(/password\s*=\s*('([^'\\]|\\.)*'|\S+)/, with: "password=…")
        out = out.replacing(/(:\/\/[^:\/@]*):[^@\/]*@/) { "\($0.1):…@" }
        return out.replacing(/([?&]password=)[^&]*/) { "\($0.1)…" }
    }
}

/// A flag, else an environment variable, else the default; relative paths are taken from
/// the current directory.
func directory(_ flag: String?, env: String, default fallback: URL) -> URL {
    if let value = flag ?? environment[env], !value.isEmpty {
        return URL(fileURLWithPath: value).standardizedFileURL
    }
    return fallback.standardizedFileURL
}
