import ArgumentParser
import Foundation
import Logging
import Synchronization

@main
struct Handrail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handrail",
        abstract: "Runbooks and incidents: alerts in, the right runbook on screen, every decision on the record.",
        discussion: """
            Environment (flags win over the environment):
              DATABASE_URL                libpq connection string (URI or key=value);
                                          unset: the embedded PostgreSQL
              HANDRAIL_LISTEN             address to listen on (127.0.0.1:8080)
              HANDRAIL_DATA_DIR           Handrail's own files (.handrail)
              HANDRAIL_RUNBOOKS_DIR       runbooks folder (the shipped runbooks/)
              HANDRAIL_TEMPLATES_DIR      templates folder (the shipped templates/)
              HANDRAIL_MIGRATIONS_DIR     migrations folder (the shipped migrations/)
              HANDRAIL_SKIP_MIGRATIONS    1: do not apply pending migrations at start
              HANDRAIL_LOG_LEVEL          trace, debug, info (default), notice, warning,
                                          error
              HANDRAIL_BCRYPT_COST        bcrypt work factor for new passwords (12)
              HANDRAIL_BEHIND_TLS_PROXY   1: Secure cookies; trust a loopback proxy
              HANDRAIL_TRUSTED_PROXIES    proxies (CIDRs) whose X-Forwarded-For counts
              HANDRAIL_METRICS_PUBLIC     1: /metrics for everyone
              HANDRAIL_DB_POOL_SIZE       database connections per process (2 × cores
                                          + 2, at most 20)
              HANDRAIL_STATEMENT_TIMEOUT  seconds per database statement (5)
              HANDRAIL_READ_TIMEOUT       seconds for a request to arrive (15)
              HANDRAIL_IDLE_TIMEOUT       seconds an idle connection stays open (30)
              HANDRAIL_MAX_CONNECTIONS    HTTP connections at once (1000)
              HANDRAIL_PUBLIC_URL         the address people open Handrail at
              HANDRAIL_SENDMAIL           sendmail program for e-mail (/usr/sbin/sendmail)
              HANDRAIL_MAIL_FROM          From: of Handrail's e-mail
              HANDRAIL_WEBHOOK_ALLOW      private ranges (CIDRs) webhooks may reach
              HANDRAIL_NOTIFY_TIMEOUT     seconds per delivery attempt (10)
              HANDRAIL_NOTIFY_RATE        deliveries started per second (100)
              HANDRAIL_NOTIFY_MAX_AGE     hours a notification is retried (24)
              HANDRAIL_MAX_LIVE_PAGES     pages kept up to date at once (1000)
              HANDRAIL_POSTMORTEM_REQUIRED
                                          filled before review
                                          (impact,root_cause,action_items)
            """,
        subcommands: [
            Serve.self, Migrate.self, Users.self, Tokens.self, Integrations.self, Runbooks.self, Incidents.self, Rotations.self, Decisions.self,
            Handoff.self, Postmortem.self, Gates.self, Demo.self,
        ],
        defaultSubcommand: nil
    )
}

/// Writes one line to standard error, the way every command reports a failure; once a
/// command has chosen its database, the line ends by naming it.
func fail(_ message: String) -> ExitCode {
    let database = failureDatabase.withLock { $0 }.map { " (database: \($0))" } ?? ""
    FileHandle.standardError.write(Data("handrail: \(message)\(database)\n".utf8))
    return ExitCode.failure
}

/// The database the running command uses, in words (`withDatabase` sets it).
let failureDatabase = Mutex<String?>(nil)

/// Sets up logging once per process: to standard error, at HANDRAIL_LOG_LEVEL.
func bootstrapLogging(_ level: String?) -> Logger {
    let level = level.flatMap(Logger.Level.init(rawValue:)) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StandardErrorLogHandler(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "handrail")
}

/// swift-log's standard-error handler, except that metadata is written out only when a line
/// is: `StreamLogHandler` formats all of its metadata each time a key is set, and the server
/// sets a request id on every request's logger (a cost per alert delivery, at any level).
struct StandardErrorLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String) { stream = StreamLogHandler.standardError(label: label) }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.metadata = metadata.merging(event.metadata ?? [:]) { $1 }
        stream.log(event: event)
    }
}
