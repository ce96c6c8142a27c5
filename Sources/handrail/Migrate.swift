import ArgumentParser
import Foundation
import HandrailStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations, or show where the database stands (--status)."
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(name: .customLong("status"), help: "List every migration with its state; change nothing. Exits 1 when not current.")
    var status = false

    func run() async throws {
        try await withDatabase(database, migrate: false, logLevel: "info") { db, migrator in
            if status {
                let current = try await migrator.status(db.pool)
                for entry in current.entries {
                    let state = entry.modified ? "MODIFIED since applied" : entry.appliedAt.map { "applied \($0.formatted(.iso8601))" } ?? "pending"
                    print("\(entry.migration.name)  \(state)")
                }
                for version in current.unknownVersions {
                    print("\(String(format: "%04d", version))  applied, but no such file here")
                }
                if !current.isCurrent { throw ExitCode.failure }
            } else {
                let applied = try await migrator.migrate(db.pool)
                print(
                    applied.isEmpty
                        ? "nothing to apply: the database is current"
                        : "applied \(applied.count) migration(s): " + applied.map(\.name).joined(separator: ", ")
                )
            }
        }
    }
}
