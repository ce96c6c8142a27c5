import Foundation
import Postgres
import TestSupport
import Testing

@Suite struct PostgresRoundTripTests {
    static let hostileStrings: [String] = [
        "'; DROP TABLE users; --",
        "Robert'); DROP TABLE students;--",
        "it's \"quoted\" and 'single' and `back`",
        "back\\slash \\\\ and \\' escaped",
        "$1 $2 $$dollar$$ $tag$",
        "{braces,\"and\",commas}",
        "NULL",
        "",
        "  leading and trailing  ",
        "line\nbreak\r\nand\ttab",
        "ünïcödé — ✓ 中文 日本語 한국어 العربية עברית",
        "emoji 🚨🔥👩🏽‍💻 flags 🇩🇪",
        "combining e\u{301} and zero\u{200B}width",
        "\u{7F}\u{1}\u{1F} control",
        String(repeating: "long ", count: 20_000),
    ]

    @Test func hostileStringsRoundTripUnchanged() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            try await pool.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, tags text[] NOT NULL, doc jsonb NOT NULL)")
            try await pool.execute("CREATE TABLE users (id int)")
            for text in Self.hostileStrings {
                let doc = try PostgresJSON(encoding: ["body": text])
                let row = try #require(
                    try await pool.query(
                        "INSERT INTO notes (body, tags, doc) VALUES (\(text), \([text, "x", text]), \(doc)) RETURNING id, body, tags, doc"
                    ).first
                )
                #expect(try row.decode("body", as: String.self) == text)
                #expect(try row.decode("tags", as: [String].self) == [text, "x", text])
                #expect(try row.decode("doc", as: PostgresJSON.self).decode(as: [String: String].self) == ["body": text])
                // And found again by equality, as a parameter.
                let id: Int = try row.decode("id")
                let found = try await pool.query("SELECT id FROM notes WHERE body = \(text) AND id = \(id)")
                #expect(found.count == 1)
            }
            // The table the injection strings name is still there.
            let value = try await pool.query("SELECT to_regclass('users') IS NOT NULL AS present").first?.decode("present", as: Bool.self)
            #expect(value == true)
        }
    }

    @Test func stringWithNULIsRefusedNotTruncated() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            await #expect {
                try await pool.query("SELECT \("before\u{0}after")::text AS v")
            } throws: { error in
                (error as? PostgresError)?.kind == .invalidParameter
            }
            // Also once the statement is prepared (a first run without the NUL), and in the text.
            let fine = try await pool.query("SELECT \("before after")::text AS v").first?.decode("v", as: String.self)
            #expect(fine == "before after")
            await #expect(throws: PostgresError.self) { try await pool.query("SELECT \("before\u{0}after")::text AS v") }
            await #expect(throws: PostgresError.self) { try await pool.query(PostgresQuery(sql: "SELECT 1\u{0}")) }
            // The connection is still fine afterwards.
            let value = try await pool.query("SELECT 1 AS one").first?.decode("one", as: Int.self)
            #expect(value == 1)
        }
    }

    @Test func typedValuesDecode() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            let id = UUID()
            let when = Date(timeIntervalSince1970: 1_767_225_600.123456)  // 2026-01-01T00:00:00.123456Z
            let row = try #require(
                try await pool.query(
                    """
                    SELECT \(42)::int AS i, \(Int64.max)::bigint AS big, \(true) AS yes, \(false) AS no,
                           \(id)::uuid AS id, \(when)::timestamptz AS at, \(2.5)::float8 AS ratio,
                           '{"a": [1, 2]}'::jsonb AS doc, ARRAY['x', NULL]::text[] AS with_null,
                           ARRAY[]::text[] AS empty, NULL::text AS nothing,
                           '2026-03-29 01:30:00+02'::timestamptz AS offset_time
                    """
                ).first
            )
            #expect(try row.decode("i", as: Int.self) == 42)
            #expect(try row.decode("big", as: Int64.self) == .max)
            #expect(try row.decode("yes", as: Bool.self) == true)
            #expect(try row.decode("no", as: Bool.self) == false)
            #expect(try row.decode("id", as: UUID.self) == id)
            let at: Date = try row.decode("at")
            #expect(abs(at.timeIntervalSince(when)) < 0.000_001)
            #expect(try row.decode("ratio", as: Double.self) == 2.5)
            #expect(try row.decode("doc", as: PostgresJSON.self).decode(as: [String: [Int]].self) == ["a": [1, 2]])
            #expect(try row.decode("empty", as: [String].self) == [])
            #expect(try row.decode("nothing", as: String?.self) == nil)
            #expect(try row.decode("offset_time", as: Date.self) == Date(timeIntervalSince1970: 1_774_740_600))
            // NULL into a non-optional is an error, not a default value.
            #expect(throws: PostgresError.self) { try row.decode("nothing", as: String.self) }
            #expect(throws: PostgresError.self) { try row.decode("with_null", as: [String].self) }
            #expect(throws: PostgresError.self) { try row.decode("no_such_column", as: String.self) }
        }
    }

    @Test func optionalParametersBindAsNull() async throws {
        try await TestDatabase.withEmpty { pool, _ in
            let missing: String? = nil
            let present: Int? = 7
            let row = try #require(try await pool.query("SELECT \(missing)::text IS NULL AS a, \(present)::int AS b").first)
            #expect(try row.decode("a", as: Bool.self) == true)
            #expect(try row.decode("b", as: Int?.self) == 7)
        }
    }
}

@Suite struct PostgresQueryTests {
    @Test func interpolationBecomesNumberedParameters() {
        let name = "x'; DROP TABLE t; --"
        let query: PostgresQuery = "SELECT * FROM t WHERE name = \(name) AND n > \(3)"
        #expect(query.sql == "SELECT * FROM t WHERE name = $1 AND n > $2")
        #expect(query.binds == [name, "3"])
        // Printing a query never prints its parameters.
        #expect(!"\(query)".contains("DROP"))
    }

    @Test func timestampTextParsesOffsetsAndFractions() throws {
        let cases: [(String, Double)] = [
            ("2026-01-01 00:00:00+00", 1_767_225_600),
            ("2026-01-01 00:00:00.5+00", 1_767_225_600.5),
            ("2026-01-01 05:30:00+05:30", 1_767_225_600),
            ("2025-12-31 19:00:00-05", 1_767_225_600),
            ("2026-01-01T00:00:00Z", 1_767_225_600),
        ]
        for (text, epoch) in cases {
            #expect(try Date(postgresText: text).timeIntervalSince1970 == epoch, "\(text)")
        }
        #expect(throws: PostgresError.self) { try Date(postgresText: "infinity") }
        #expect(throws: PostgresError.self) { try Date(postgresText: "2026-01-01 00:00:00 BC") }
    }

    @Test func arrayLiteralsParseQuotingAndNull() throws {
        #expect(
            try [String](postgresText: #"{a,"b c","d\"e","f\\g",NULL}"#.replacingOccurrences(of: "NULL", with: "\"NULL\"")) == [
                "a", "b c", "d\"e", "f\\g", "NULL",
            ]
        )
        #expect(try [String?](postgresText: "{a,NULL,null}") == ["a", nil, nil])
        #expect(throws: PostgresError.self) { try [String](postgresText: "{{1,2},{3,4}}") }
    }
}
