import Postgres

/// The statement of `handrail-bench bench-ceiling`, the minimal HTTP POST + one-row INSERT
/// that `script/bench` measures Handrail's ingestion against: the benchmark's own table in
/// its throwaway database, not Handrail's data (whose SQL all lives in HandrailStore).
struct CeilingStore: Sendable {
    let pool: PostgresPool

    init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Creates the table the ceiling writes to (in the bench's throwaway database).
    func prepare() async throws {
        try await pool.execute(
            """
            CREATE TABLE IF NOT EXISTS ceiling_deliveries (
              id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
              received_at timestamptz NOT NULL DEFAULT now(),
              body jsonb NOT NULL)
            """
        )
    }

    /// Stores one body as one row; returns its id.
    func insert(body: String) async throws -> Int64 {
        try await pool.query("INSERT INTO ceiling_deliveries (body) VALUES (\(body)::jsonb) RETURNING id")[0].decode("id", as: Int64.self)
    }
}
