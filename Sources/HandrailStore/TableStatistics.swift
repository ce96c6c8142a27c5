public import Postgres

/// Keeps the planner's view of young tables up to date.
///
/// A pooled connection keeps the generic plan it made of each statement until the statistics
/// of a table it reads change; autovacuum gathers them only every minute and after a tenth of
/// a table has changed. On a fresh database in an alert storm (Alertmanager's first delivery
/// of every firing group to a new Handrail is one), plans made over empty tables stay while
/// the tables grow: the resend statement scanned every open alert to update none
/// (16,560 rows, 9.5 ms a delivery after 3 s), and ingestion fell from 700 to 190 deliveries/s
/// within 5 s. Analyzing a table whenever it has more than doubled since its last analysis
/// bounds that: a plan is made at no less than half the size it runs at, and a table that is
/// no longer young (where a tenth changes before it doubles) is left to autovacuum.
public struct TableStatistics: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Fewer changed rows than this are not worth an analysis, whatever the table's size.
    public static let minimumChanges = 1000

    /// Analyzes the tables of Handrail's schema that have grown to more than twice the rows
    /// of their last analysis (or have any rows, never analyzed) with at least
    /// `minimumChanges` changes since. Returns their names.
    @discardableResult
    public func analyzeGrownTables() async throws -> [String] {
        let grown = try await pool.query(
            """
            SELECT format('%I', s.relname) AS name FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze >= \(Self.minimumChanges)
              AND s.n_live_tup > 2 * greatest(c.reltuples, 0)
              AND pg_has_role(c.relowner, 'USAGE')  -- ANALYZE skips, with a warning, tables it may not analyze
            ORDER BY s.relname
            """
        ).map { try $0.decode("name", as: String.self) }
        // Names quoted by format('%I') from the catalog, not from any input.
        for name in grown { try await pool.execute(PostgresQuery(sql: "ANALYZE \(name)", binds: [])) }
        return grown
    }
}
