import ArgumentParser
import Foundation
import HandrailServer

/// The folder that holds Package.swift, found from this file's path at build time, so a
/// checkout's runbooks/, templates/ and migrations/ are the defaults wherever the command
/// runs from.
let checkoutRoot: URL = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
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
        help: ArgumentHelp("Migration SQL files. Env: HANDRAIL_MIGRATIONS_DIR. Default: the checkout's migrations/", valueName: "path")
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
        directory(migrationsDirectory, env: "HANDRAIL_MIGRATIONS_DIR", default: checkoutRoot.appendingPathComponent("migrations"))
    }

    var resolvedLogLevel: String? { logLevel ?? environment["HANDRAIL_LOG_LEVEL"] }
}

/// A flag, else an environment variable, else the default; relative paths are taken from
/// the current directory.
func directory(_ flag: String?, env: String, default fallback: URL) -> URL {
    if let value = flag ?? environment[env], !value.isEmpty {
        return URL(fileURLWithPath: value).standardizedFileURL
    }
    return fallback.standardizedFileURL
}
