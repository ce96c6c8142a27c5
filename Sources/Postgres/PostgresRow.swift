/// The rows a statement returned, copied out of libpq, with column lookup by name.
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names in order.
    public let columns: [String]
    let columnIndex: [String: Int]
    /// Every row's values, row after row (one array for the whole result, not one per row).
    let cells: [String?]
    let rowCount: Int
    /// For INSERT/UPDATE/DELETE: how many rows the statement touched.
    public let affectedRows: Int
    /// The command tag the server answered with (`INSERT 0 1`, `COMMIT`, `ROLLBACK`, …).
    public let commandTag: String

    init(columns: [String], cells: [String?], rowCount: Int, affectedRows: Int, commandTag: String) {
        self.commandTag = commandTag
        self.columns = columns
        var index: [String: Int] = [:]
        index.reserveCapacity(columns.count)
        for (n, name) in columns.enumerated() where index[name] == nil { index[name] = n }
        self.columnIndex = index
        self.cells = cells
        self.rowCount = rowCount
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { rowCount }
    public subscript(position: Int) -> PostgresRow {
        let width = columns.count
        return PostgresRow(columns: columns, columnIndex: columnIndex, values: cells[(position * width)..<((position + 1) * width)])
    }

    /// The only row, or `nil` when there is none.
    /// - Throws: `PostgresError` of kind `.decoding` when there is more than one.
    public func single() throws(PostgresError) -> PostgresRow? {
        guard count <= 1 else {
            throw PostgresError(kind: .decoding, message: "expected at most one row, got \(count)")
        }
        return first
    }
}

/// One row of a result. Values decode from PostgreSQL's text format; SQL NULL decodes as
/// `nil` for optional types and throws for non-optional ones.
public struct PostgresRow: Sendable {
    public let columns: [String]
    let columnIndex: [String: Int]
    /// This row's part of the result's cells.
    let values: ArraySlice<String?>

    /// Decodes the value at a column position.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at index: Int) throws(PostgresError) -> T {
        guard index >= 0, index < values.count else {
            throw PostgresError(kind: .decoding, message: "no column at position \(index)")
        }
        guard let text = values[values.startIndex + index] else { return try T.decodeNull() }
        return try T(postgresText: text)
    }

    /// Decodes the value of a named column.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        guard let index = columnIndex[column] else {
            throw PostgresError(kind: .decoding, message: "no column named \(column.debugDescription)")
        }
        do {
            return try decode(T.self, at: index)
        } catch {
            var e = error
            e.column = column
            throw e
        }
    }

    /// The raw text of a named column (`nil` for NULL or an unknown column).
    public subscript(column: String) -> String? {
        guard let index = columnIndex[column] else { return nil }
        return values[values.startIndex + index]
    }
}
