import Foundation
import HandrailCore
import HandrailStore
import Postgres
import TestSupport
import Testing

let cli = AuditActor.commandLine(osUser: "tester")

@Suite struct UserStoreTests {
    @Test func createdUsersAreListedAndAudited() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let users = UserStore(pool: pool)
            let ada = try await users.create(
                username: "ada",
                displayName: "Ada L.",
                email: "ada@example.com",
                role: .lead,
                passwordHash: nil,
                mustChangePassword: false,
                by: cli
            )
            #expect(ada.role == .lead)
            #expect(!ada.disabled)
            #expect(try await users.list().map(\.username) == ["ada"])
            let audit = try await AuditStore(pool: pool).list(limit: 10, before: nil)
            #expect(audit.first?.action == "user.created")
            #expect(audit.first?.actor == "cli:tester")
            #expect(audit.first?.detail["role"] == "lead")
        }
    }

    @Test func takenUsernameIsAConflictNamingTheField() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let users = UserStore(pool: pool)
            _ = try await users.create(
                username: "bob",
                displayName: "Bob",
                email: nil,
                role: .viewer,
                passwordHash: nil,
                mustChangePassword: false,
                by: cli
            )
            await #expect(throws: ConflictError(field: "username", message: "\"bob\" is taken")) {
                try await users.create(
                    username: "bob",
                    displayName: "Other",
                    email: nil,
                    role: .admin,
                    passwordHash: nil,
                    mustChangePassword: false,
                    by: cli
                )
            }
            #expect(try await users.find(username: "bob")?.role == .viewer)
        }
    }

    @Test func roleChangeRecordsFromAndTo() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let users = UserStore(pool: pool)
            _ = try await users.create(
                username: "cy",
                displayName: "Cy",
                email: nil,
                role: .responder,
                passwordHash: nil,
                mustChangePassword: false,
                by: cli
            )
            let updated = try await users.setRole(username: "cy", to: .manager, by: cli)
            #expect(updated?.role == .manager)
            #expect(try await users.setRole(username: "nobody", to: .admin, by: cli) == nil)
            let entry = try #require(try await AuditStore(pool: pool).list(limit: 1, before: nil).first)
            #expect(entry.action == "user.role_changed")
            #expect(entry.detail == ["from": "responder", "to": "manager"])
        }
    }

    @Test func disablingEndsSessionsAndTokensAtOnce() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let users = UserStore(pool: pool)
            let dee = try await users.create(
                username: "dee",
                displayName: "Dee",
                email: nil,
                role: .responder,
                passwordHash: nil,
                mustChangePassword: false,
                by: cli
            )
            let sessions = SessionStore(pool: pool)
            let tokens = APITokenStore(pool: pool)
            let session = Secrets.newSessionToken()
            let token = Secrets.newAPIToken()
            try await sessions.create(
                user: dee,
                tokenHash: Secrets.hash(session),
                expiresAt: Date().addingTimeInterval(3600),
                userAgent: nil,
                by: .user(dee, from: "127.0.0.1")
            )
            _ = try await tokens.create(
                for: dee,
                name: "ci",
                tokenHash: Secrets.hash(token),
                displayPrefix: Secrets.displayPrefix(token),
                expiresAt: nil,
                by: cli
            )
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(session), idleTimeout: .seconds(600))?.username == "dee")
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(token))?.username == "dee")

            _ = try await users.setDisabled(username: "dee", true, by: cli)
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(session), idleTimeout: .seconds(600)) == nil)
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(token)) == nil)
            #expect(try await users.credentials(username: "dee") == nil)
        }
    }

    @Test func firstAdminIsCreatedOnceEvenWhenServersRace() async throws {
        try await TestDatabase.withMigrated { pool, conninfo in
            let pools = (0..<4).map { _ in PostgresPool(conninfo: conninfo, maxConnections: 1) }
            defer { for item in pools { item.close() } }
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for p in pools { group.addTask { try await UserStore(pool: p).createFirstAdminIfNone(username: "admin", passwordHash: "x") } }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(created.filter { $0 }.count == 1)
            let admin = try #require(try await UserStore(pool: pool).find(username: "admin"))
            #expect(admin.role == .admin)
            #expect(admin.mustChangePassword)
            #expect(try await UserStore(pool: pool).createFirstAdminIfNone(username: "admin", passwordHash: "y") == false)
        }
    }
}

@Suite struct SessionAndTokenStoreTests {
    func user(_ pool: PostgresPool, _ name: String = "eve") async throws -> User {
        try await UserStore(pool: pool).create(
            username: name,
            displayName: name,
            email: nil,
            role: .responder,
            passwordHash: nil,
            mustChangePassword: false,
            by: cli
        )
    }

    @Test func expiredAndIdleSessionsDoNotResolveAndLogoutEndsOne() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let eve = try await user(pool)
            let sessions = SessionStore(pool: pool)
            let live = Secrets.newSessionToken()
            let expired = Secrets.newSessionToken()
            let idle = Secrets.newSessionToken()
            try await sessions.create(
                user: eve,
                tokenHash: Secrets.hash(live),
                expiresAt: Date().addingTimeInterval(3600),
                userAgent: "t",
                by: .user(eve, from: nil)
            )
            try await sessions.create(
                user: eve,
                tokenHash: Secrets.hash(expired),
                expiresAt: Date().addingTimeInterval(-1),
                userAgent: "t",
                by: .user(eve, from: nil)
            )
            try await sessions.create(
                user: eve,
                tokenHash: Secrets.hash(idle),
                expiresAt: Date().addingTimeInterval(3600),
                userAgent: "t",
                by: .user(eve, from: nil)
            )
            try await pool.execute("UPDATE sessions SET last_seen_at = now() - interval '2 hours' WHERE token_hash = \(Secrets.hash(idle))")
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(live), idleTimeout: .seconds(3600)) != nil)
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(expired), idleTimeout: .seconds(3600)) == nil)
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(idle), idleTimeout: .seconds(3600)) == nil)
            // Use keeps a session alive, recorded to the minute: used 50 minutes ago and used
            // now, it lives another idle timeout from now.
            try await pool.execute("UPDATE sessions SET last_seen_at = now() - interval '50 minutes' WHERE token_hash = \(Secrets.hash(live))")
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(live), idleTimeout: .seconds(3600)) != nil)
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(live), idleTimeout: .seconds(1200)) != nil)
            try await sessions.end(tokenHash: Secrets.hash(live), by: .user(eve, from: nil))
            #expect(try await sessions.resolve(tokenHash: Secrets.hash(live), idleTimeout: .seconds(3600)) == nil)
        }
    }

    @Test func revokedAndExpiredTokensDoNotAuthenticate() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let eve = try await user(pool)
            let mallory = try await user(pool, "mallory")
            let tokens = APITokenStore(pool: pool)
            let a = Secrets.newAPIToken()
            let b = Secrets.newAPIToken()
            let first = try await tokens.create(
                for: eve,
                name: "laptop",
                tokenHash: Secrets.hash(a),
                displayPrefix: Secrets.displayPrefix(a),
                expiresAt: nil,
                by: cli
            )
            _ = try await tokens.create(
                for: eve,
                name: "old",
                tokenHash: Secrets.hash(b),
                displayPrefix: Secrets.displayPrefix(b),
                expiresAt: Date().addingTimeInterval(-60),
                by: cli
            )
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(b)) == nil)
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(a))?.id == eve.id)
            let used = try #require(try await tokens.list(userID: eve.id).first { $0.id == first.id }?.lastUsedAt)
            // Use is recorded to the minute: a second use at once writes nothing; a use a
            // minute after the recorded one moves it.
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(a))?.id == eve.id)
            #expect(try await tokens.list(userID: eve.id).first { $0.id == first.id }?.lastUsedAt == used)
            try await pool.execute("UPDATE api_tokens SET last_used_at = now() - interval '61 seconds' WHERE id = \(first.id)")
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(a))?.id == eve.id)
            #expect(try #require(try await tokens.list(userID: eve.id).first { $0.id == first.id }?.lastUsedAt) > used.addingTimeInterval(-1))
            // Someone else cannot revoke it; its owner can.
            #expect(try await tokens.revoke(id: first.id, ownerID: mallory.id, by: cli) == nil)
            #expect(try await tokens.revoke(id: first.id, ownerID: eve.id, by: cli)?.revokedAt != nil)
            #expect(try await tokens.authenticate(tokenHash: Secrets.hash(a)) == nil)
            #expect(try await tokens.revoke(id: first.id, ownerID: nil, by: cli) == nil)
        }
    }

    @Test func integrationKeysAuthenticateUntilRevokedAndNamesAreUniqueWhileLive() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let keys = IntegrationKeyStore(pool: pool)
            let key = Secrets.newIntegrationKey()
            #expect(key.count == 32)
            _ = try await keys.create(
                name: "prod-am",
                kind: .alertmanager,
                keyHash: Secrets.hash(key),
                displayPrefix: Secrets.displayPrefix(key),
                requireSignature: false,
                by: cli
            )
            await #expect(throws: ConflictError.self) {
                try await keys.create(
                    name: "prod-am",
                    kind: .grafana,
                    keyHash: Secrets.hash("other"),
                    displayPrefix: "x",
                    requireSignature: false,
                    by: cli
                )
            }
            #expect(try await keys.authenticate(keyHash: Secrets.hash(key))?.kind == .alertmanager)
            #expect(try await keys.revoke(name: "prod-am", by: cli) != nil)
            #expect(try await keys.authenticate(keyHash: Secrets.hash(key)) == nil)
            // The name is free again once revoked.
            _ = try await keys.create(
                name: "prod-am",
                kind: .alertmanager,
                keyHash: Secrets.hash("new"),
                displayPrefix: "n",
                requireSignature: false,
                by: cli
            )
            #expect(try await keys.list().count == 2)
        }
    }

    @Test func auditLogRefusesUpdateDeleteAndTruncateEvenFromItsOwner() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            try await AuditStore(pool: pool).record("login.failed", target: "x", detail: ["username": "x"], by: .system)
            // The test connects as the role that owns the table (the one migrations ran as).
            let owner = try await pool.query("SELECT tableowner = current_user AS is_owner FROM pg_tables WHERE tablename = 'audit_log'")
            #expect(try owner.first?.decode("is_owner", as: Bool.self) == true)
            for statement: PostgresQuery in ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
                do {
                    try await pool.execute(statement)
                    Issue.record("\(statement) succeeded on the audit log")
                } catch let error as PostgresError {
                    #expect(error.message.contains("append-only"), "\(statement)")
                }
            }
            #expect(try await AuditStore(pool: pool).list(limit: 5, before: nil).map(\.actor) == ["system"])
        }
    }

    @Test func loginAttemptsAreCountedPerAccountAndPerAddressUntilTheySucceed() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let audit = AuditStore(pool: pool)
            func begin(_ user: String, _ address: String) async throws -> AuditStore.LoginGate {
                try await audit.beginLogin(username: user, address: address, window: .seconds(900), perAccount: 3, perAddress: 4)
            }
            var allowed: [Int64] = []
            for _ in 0..<3 {
                guard case .allowed(let id) = try await begin("ann", "10.0.0.1") else {
                    Issue.record("refused under the limit")
                    return
                }
                allowed.append(id)
            }
            guard case .limited(let until) = try await begin("ann", "10.0.0.9") else {
                Issue.record("a 4th attempt for ann passed")
                return
            }
            #expect(until > Date().addingTimeInterval(800) && until < Date().addingTimeInterval(901))
            // The address has three; one more from it for someone else passes, then it is full.
            guard case .allowed = try await begin("bo", "10.0.0.1") else {
                Issue.record("refused bo under the limits")
                return
            }
            guard case .limited = try await begin("zed", "10.0.0.1") else {
                Issue.record("a 5th attempt from the address passed")
                return
            }
            // A success stops counting: ann may try once more.
            try await audit.loginSucceeded(attempt: allowed[0])
            guard case .allowed = try await begin("ann", "10.0.0.2") else {
                Issue.record("a success still counted")
                return
            }
        }
    }

    @Test func concurrentLoginAttemptsNeverPassTheLimit() async throws {
        try await TestDatabase.withMigrated { pool, _ in
            let audit = AuditStore(pool: pool)
            let passed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<40 {
                    group.addTask {
                        let gate = try await audit.beginLogin(
                            username: "ann",
                            address: "10.0.1.\(n)",
                            window: .seconds(900),
                            perAccount: 5,
                            perAddress: 20
                        )
                        if case .allowed = gate { return true }
                        return false
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(passed == 5)
        }
    }
}
