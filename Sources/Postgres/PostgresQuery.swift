/// A SQL statement with its parameters kept apart from the text.
///
/// Written as a string literal with interpolations, every interpolated value becomes a
/// numbered parameter (`$1`, `$2`, …) and never part of the SQL text:
///
/// ```swift
/// let rows = try await connection.query("SELECT id FROM users WHERE name = \(name)")
/// ```
///
/// A `String` variable cannot become a `PostgresQuery` by accident; the explicit
/// `init(sql:binds:)` exists for statements written with `$n` placeholders.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement text with `$n` placeholders.
    public var sql: String
    /// The parameters in PostgreSQL's text format; `nil` is SQL NULL.
    public var binds: [String?]

    /// A statement written with explicit `$1…$n` placeholders.
    public init(sql: String, binds: [(any PostgresEncodable)?] = []) {
        self.sql = sql
        self.binds = binds.map { $0?.postgresText }
    }

    public init(stringLiteral value: String) {
        self.sql = value
        self.binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.binds = stringInterpolation.binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql: String
        var binds: [String?]

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql = ""
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds = []
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Appends SQL text written in the source code (a shared column list, say). Only a
        /// `StaticString` is accepted, so nothing computed at run time — and so no input —
        /// can become SQL text this way.
        public mutating func appendInterpolation(sql fragment: StaticString) {
            sql += fragment.description
        }

        /// Appends a value as the next parameter.
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        /// Appends an optional value as the next parameter (`nil` is SQL NULL).
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T?) {
            binds.append(value?.postgresText)
            sql += "$\(binds.count)"
        }
    }

    /// The SQL text only — parameters are never printed, they may hold secrets.
    public var description: String { sql }
}
