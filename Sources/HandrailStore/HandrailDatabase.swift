public import Foundation
public import Logging
public import Postgres

/// The database Handrail runs on: the one `DATABASE_URL` names, or the embedded cluster.
public final class HandrailDatabase: Sendable {
    public let pool: PostgresPool
    /// The embedded cluster and this process's lease on it, when there is one.
    let embedded: (cluster: EmbeddedPostgres, lease: EmbeddedPostgres.Lease)?
    /// Where the data lives, for log lines (never the connection string: it may hold a password).
    public let location: String

    /// What stops Handrail from reaching its database, in one line.
    public struct Unavailable: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private init(pool: PostgresPool, embedded: (cluster: EmbeddedPostgres, lease: EmbeddedPostgres.Lease)?, location: String) {
        self.pool = pool
        self.embedded = embedded
        self.location = location
    }

    /// Connects to `databaseURL`, or creates/starts the embedded cluster under
    /// `dataDirectory` when it is `nil`, and checks that one connection works.
    /// - Throws: `Unavailable` with a one-line message (no password, no stack trace).
    public static func open(
        databaseURL: String?,
        dataDirectory: URL,
        maxConnections: Int = 10,
        statementTimeout: Duration? = nil,
        logger: Logger = Logger(label: "handrail.database")
    ) async throws -> HandrailDatabase {
        var embedded: (cluster: EmbeddedPostgres, lease: EmbeddedPostgres.Lease)?
        let conninfo: String
        let location: String
        if let databaseURL, !databaseURL.isEmpty {
            conninfo = databaseURL
            location = "DATABASE_URL"
        } else {
            do {
                let cluster = try EmbeddedPostgres(dataDirectory: dataDirectory, logger: logger)
                let lease = try cluster.lease()
                embedded = (cluster, lease)
                conninfo = try await cluster.start()
                location = "embedded PostgreSQL in \(cluster.clusterDirectory.path)"
            } catch {
                if let embedded { _ = embedded.lease.release() }
                if let failure = error as? EmbeddedPostgres.Failure {
                    throw Unavailable(description: "embedded PostgreSQL: \(failure.description)")
                }
                throw Unavailable(description: "embedded PostgreSQL: \((error as? PostgresError)?.oneLineMessage ?? "\(error)")")
            }
        }
        // A server that answers nothing (frozen, cut off) costs a request at most the statement
        // timeout, waiting for a connection included; then it answers 503.
        let pool = PostgresPool(
            conninfo: conninfo,
            maxConnections: maxConnections,
            checkoutTimeout: statementTimeout ?? .seconds(30),
            statementTimeout: statementTimeout,
            logger: logger
        )
        let database = HandrailDatabase(pool: pool, embedded: embedded, location: location)
        do {
            try await pool.execute("SELECT 1")
        } catch let error as PostgresError {
            await database.close()
            throw Unavailable(description: "cannot connect to PostgreSQL (\(location)): \(error.oneLineMessage)")
        }
        return database
    }

    /// Closes the pool and, when this was the last process using the embedded cluster,
    /// stops it. Call once.
    public func close() async {
        pool.close()
        if let embedded, embedded.lease.release() {
            do {
                try await embedded.cluster.stop()
            } catch {
                Logger(label: "handrail.database").error("could not stop the embedded PostgreSQL: \(error)")
            }
        }
    }
}
