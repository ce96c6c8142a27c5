import ArgumentParser
import Foundation
import HandrailCore
import HandrailStore
import Logging
import Synchronization

/// Opens the database the way `serve` does (applying pending migrations unless told not
/// to), runs `body`, closes it; any failure becomes one line on standard error.
func withDatabase<T>(
    _ options: DatabaseOptions,
    migrate: Bool = true,
    logLevel: String = "warning",
    mayCreate: Bool = false,
    _ body: (HandrailDatabase, Migrator) async throws -> T
) async throws -> T {
    let command = CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("-") }.prefix(2).joined(separator: " ")
    if !mayCreate, let refusal = options.refusalToCreate(command: command) { throw fail(refusal) }
    if options.verbose { FileHandle.standardError.write(Data("database: \(options.described)\n".utf8)) }
    failureDatabase.withLock { $0 = options.described }
    return try await openDatabase(options, migrate: migrate, logLevel: logLevel, body)
}

private func openDatabase<T>(
    _ options: DatabaseOptions,
    migrate: Bool,
    logLevel: String,
    _ body: (HandrailDatabase, Migrator) async throws -> T
) async throws -> T {
    let logger = bootstrapLogging(options.resolvedLogLevel ?? logLevel)
    let migrator: Migrator
    do {
        migrator = try Migrator(directory: options.resolvedMigrationsDirectory, logger: logger)
    } catch let error as MigrationError {
        throw fail(error.description)
    }
    let db: HandrailDatabase
    do {
        db = try await HandrailDatabase.open(
            databaseURL: options.resolvedDatabaseURL,
            dataDirectory: options.resolvedDataDirectory,
            maxConnections: 2,
            logger: logger
        )
    } catch let error as HandrailDatabase.Unavailable {
        throw fail(error.description)
    }
    do {
        if migrate { try await migrator.migrate(db.pool) }
        let result = try await body(db, migrator)
        await db.close()
        return result
    } catch {
        await db.close()
        switch error {
        case let e as ExitCode: throw e
        case let e as HandrailCore.ValidationError: throw fail(e.description)
        case let e as ConflictError: throw fail(e.description)
        case let e as MigrationError: throw fail(e.description)
        default: throw fail("\(error)")
        }
    }
}

/// The operator at the terminal, as the audit log names them.
var commandLineActor: AuditActor {
    let env = ProcessInfo.processInfo.environment
    let account = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) }
    return .commandLine(osUser: env["SUDO_USER"] ?? env["USER"] ?? account ?? "uid \(geteuid())")
}

var passwordHasher: PasswordHasher {
    PasswordHasher(cost: environment["HANDRAIL_BCRYPT_COST"].flatMap(UInt8.init) ?? 12)
}

/// Reads a password from standard input (one line, without its newline).
func readPasswordFromStdin() throws -> String {
    guard let line = readLine(strippingNewline: true) else { throw fail("--password-stdin: nothing on standard input") }
    return line
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage people: create, list, disable, set-role, reset-password.",
        subcommands: [Create.self, List.self, Disable.self, Enable.self, SetRole.self, ResetPassword.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a person. Prints only the password on stdout when one is generated."
        )
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Lower-case letters, digits, '.', '_', '-'.") var username: String
        @Option(help: "viewer, responder, lead, manager or admin.") var role: String
        @Option(help: "The name shown next to what they do (default: the username).") var displayName: String?
        @Option var email: String?
        @Flag(help: "Read the password from standard input instead of generating a one-time one.") var passwordStdin = false

        func run() async throws {
            let role: Role
            do {
                try User.validateUsername(username)
                role = try Role.parse(self.role)
                if let email { try User.validateEmail(email) }
            } catch { throw fail(error.description) }
            let password = passwordStdin ? try readPasswordFromStdin() : Secrets.newPassword()
            do { try PasswordHasher.validate(password) } catch { throw fail(error.description) }
            _ = try await withDatabase(database) { db, _ in
                try await UserStore(pool: db.pool).create(
                    username: username,
                    displayName: displayName ?? username,
                    email: email,
                    role: role,
                    passwordHash: passwordHasher.hash(password),
                    mustChangePassword: !passwordStdin,
                    by: commandLineActor
                )
            }
            if !passwordStdin { print(password) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List people: username, role, state, display name.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let users = try await withDatabase(database) { db, _ in try await UserStore(pool: db.pool).list() }
            for user in users {
                print([user.username, user.role.rawValue, user.disabled ? "disabled" : "active", user.displayName].joined(separator: "\t"))
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a person: their sessions end and their tokens stop working at once.")
        @OptionGroup var database: DatabaseOptions
        @Option var username: String
        func run() async throws {
            let user = try await withDatabase(database) { db, _ in
                try await UserStore(pool: db.pool).setDisabled(username: username, true, by: commandLineActor)
            }
            guard user != nil else { throw fail("username: no user \(username.debugDescription)") }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled person again.")
        @OptionGroup var database: DatabaseOptions
        @Option var username: String
        func run() async throws {
            let user = try await withDatabase(database) { db, _ in
                try await UserStore(pool: db.pool).setDisabled(username: username, false, by: commandLineActor)
            }
            guard user != nil else { throw fail("username: no user \(username.debugDescription)") }
        }
    }

    struct SetRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-role", abstract: "Change a person's role.")
        @OptionGroup var database: DatabaseOptions
        @Option var username: String
        @Option(help: "viewer, responder, lead, manager or admin.") var role: String
        func run() async throws {
            let role: Role
            do { role = try Role.parse(self.role) } catch { throw fail(error.description) }
            let user = try await withDatabase(database) { db, _ in
                try await UserStore(pool: db.pool).setRole(username: username, to: role, by: commandLineActor)
            }
            guard user != nil else { throw fail("username: no user \(username.debugDescription)") }
        }
    }

    struct ResetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-password",
            abstract: "Give a person a new one-time password (printed alone on stdout); their sessions end."
        )
        @OptionGroup var database: DatabaseOptions
        @Option var username: String
        @Flag(help: "Read the new password from standard input (not one-time).") var passwordStdin = false
        func run() async throws {
            let password = passwordStdin ? try readPasswordFromStdin() : Secrets.newPassword()
            do { try PasswordHasher.validate(password) } catch { throw fail(error.description) }
            let user = try await withDatabase(database) { db, _ in
                try await UserStore(pool: db.pool).setPassword(
                    username: username,
                    hash: passwordHasher.hash(password),
                    mustChange: !passwordStdin,
                    by: commandLineActor
                )
            }
            guard user != nil else { throw fail("username: no user \(username.debugDescription)") }
            if !passwordStdin { print(password) }
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage personal API tokens: create, list, revoke.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token for a person. Prints only the token on stdout (shown once).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "The username the token acts as.") var user: String
        @Option(help: "What the token is for (e.g. ci-deploy).") var name: String
        @Option(help: "Lifetime in days (default: no expiry).") var expiresInDays: Int?

        func run() async throws {
            if name.isEmpty || name.count > 100 { throw fail("name: must be 1–100 characters") }
            if let days = expiresInDays, days <= 0 { throw fail("expires-in-days: must be a positive number of days") }
            let token = Secrets.newAPIToken()
            try await withDatabase(database) { db, _ in
                guard let owner = try await UserStore(pool: db.pool).find(username: user) else {
                    throw fail("user: no user \(user.debugDescription)")
                }
                _ = try await APITokenStore(pool: db.pool).create(
                    for: owner,
                    name: name,
                    tokenHash: Secrets.hash(token),
                    displayPrefix: Secrets.displayPrefix(token),
                    expiresAt: expiresInDays.map { Date().addingTimeInterval(Double($0) * 86_400) },
                    by: commandLineActor
                )
            }
            print(token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API tokens: id, user, name, prefix, state.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only this person's tokens.") var user: String?

        func run() async throws {
            let tokens = try await withDatabase(database) { db, _ -> [APIToken] in
                var userID: Int?
                if let user {
                    guard let found = try await UserStore(pool: db.pool).find(username: user) else {
                        throw fail("user: no user \(user.debugDescription)")
                    }
                    userID = found.id
                }
                return try await APITokenStore(pool: db.pool).list(userID: userID)
            }
            for t in tokens {
                let state = t.revokedAt != nil ? "revoked" : (t.expiresAt.map { $0 < Date() } == true ? "expired" : "active")
                print([String(t.id), t.username, t.name, t.displayPrefix, state].joined(separator: "\t"))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API token by id (see `tokens list`).")
        @OptionGroup var database: DatabaseOptions
        @Option var id: Int
        func run() async throws {
            let revoked = try await withDatabase(database) { db, _ in
                try await APITokenStore(pool: db.pool).revoke(id: id, ownerID: nil, by: commandLineActor)
            }
            guard revoked != nil else { throw fail("id: no live token \(id)") }
        }
    }
}

struct Integrations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage alert sources' integration keys: create, list, revoke.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an integration key. Prints only the key on stdout (shown once).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "A name for the source (e.g. prod-alertmanager).") var name: String
        @Option(help: "alertmanager, grafana, pagerduty, generic, or canary (a canary controller asking gates).") var kind: String
        @Flag(help: "Require an HMAC-SHA256 signature (Grafana's X-Grafana-Alerting-Signature), keyed with the integration key itself.")
        var requireSignature = false
        @Flag(
            help:
                "Also require the signature's timestamp (X-Grafana-Alerting-Signature-Timestamp, at most five minutes old), so a captured delivery cannot be replayed later. Implies --require-signature."
        )
        var requireTimestamp = false

        func run() async throws {
            let kind: IntegrationKind
            do { kind = try IntegrationKind.parse(self.kind) } catch { throw fail(error.description) }
            if name.isEmpty || name.count > 100 { throw fail("name: must be 1–100 characters") }
            let key = Secrets.newIntegrationKey()
            _ = try await withDatabase(database) { db, _ in
                try await IntegrationKeyStore(pool: db.pool).create(
                    name: name,
                    kind: kind,
                    keyHash: Secrets.hash(key),
                    displayPrefix: Secrets.displayPrefix(key),
                    requireSignature: requireSignature,
                    requireTimestamp: requireTimestamp,
                    by: commandLineActor
                )
            }
            print(key)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List integration keys: name, kind, prefix, state.")
        @OptionGroup var database: DatabaseOptions
        func run() async throws {
            let keys = try await withDatabase(database) { db, _ in try await IntegrationKeyStore(pool: db.pool).list() }
            for k in keys {
                print([k.name, k.kind.rawValue, k.displayPrefix, k.revokedAt == nil ? "active" : "revoked"].joined(separator: "\t"))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the live integration key of that name.")
        @OptionGroup var database: DatabaseOptions
        @Option var name: String
        func run() async throws {
            let revoked = try await withDatabase(database) { db, _ in
                try await IntegrationKeyStore(pool: db.pool).revoke(name: name, by: commandLineActor)
            }
            guard revoked != nil else { throw fail("name: no live integration key \(name.debugDescription)") }
        }
    }
}
