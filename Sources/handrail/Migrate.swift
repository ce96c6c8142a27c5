import ArgumentParser
import Foundation
import HandrailStore
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations, or show where the database stands (--status).")

    @OptionGroup var database: DatabaseOptions

    @Flag(name: .customLong("status"), help: "List every migration with its state; change nothing. Exits 1 when not current.")
    var status = false

    func run() async throws {
        let logger = bootstrapLogging(database.resolvedLogLevel)
        let migrator: Migrator
        do {
            migrator = try Migrator(directory: database.resolvedMigrationsDirectory, logger: logger)
        } catch let error as MigrationError {
            throw fail(error.description)
        }
        let db: HandrailDatabase
        do {
            db = try await HandrailDatabase.open(databaseURL: database.resolvedDatabaseURL, dataDirectory: database.resolvedDataDirectory, maxConnections: 2, logger: logger)
        } catch let error as HandrailDatabase.Unavailable {
            throw fail(error.description)
        }
        do {
            if status {
                let current = try await migrator.status(db.pool)
                for entry in current.entries {
                    let state = entry.modified ? "MODIFIED since applied" : entry.appliedAt.map { "applied \($0.formatted(.iso8601))" } ?? "pending"
                    print("\(entry.migration.name)  \(state)")
                }
                for version in current.unknownVersions {
                    print("\(String(format: "%04d", version))  applied, but no such file here")
                }
                await db.close()
                if !current.isCurrent { throw ExitCode.failure }
            } else {
                let applied = try await migrator.migrate(db.pool)
                print(applied.isEmpty ? "nothing to apply: the database is current" : "applied \(applied.count) migration(s): " + applied.map(\.name).joined(separator: ", "))
                await db.close()
            }
        } catch let error as MigrationError {
            await db.close()
            throw fail(error.description)
        } catch let error as ExitCode {
            throw error
        } catch {
            await db.close()
            throw fail("\(error)")
        }
    }
}
