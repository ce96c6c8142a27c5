import Foundation
import HandrailCore
import Testing

func person(_ role: Role) -> Principal {
    .user(User(id: 1, username: "p", displayName: "P", email: nil, role: role, disabled: false, mustChangePassword: false, createdAt: Date()))
}
let alertmanagerKey = Principal.integration(Integration(id: 1, name: "am", kind: .alertmanager, requireSignature: false))

@Suite struct AccessRulesTests {
    @Test func rolesAreOrderedAndEachIncludesTheOnesBefore() {
        #expect(Role.allCases == [.viewer, .responder, .lead, .manager, .admin])
        #expect(Role.viewer < .responder && .responder < .lead && .lead < .manager && .manager < .admin)
        for (i, least) in Role.allCases.enumerated() {
            for (j, role) in Role.allCases.enumerated() {
                #expect(Access.role(least).allows(person(role), fromLoopback: false) == (j >= i ? .allow : .forbidden), "\(role) on \(least)")
            }
        }
    }

    @Test(arguments: [
        (Access.everyone, nil as Principal?, false, Access.Decision.allow),
        (.role(.viewer), nil, false, .unauthenticated),
        (.role(.viewer), alertmanagerKey, false, .forbidden),
        (.ingest([.alertmanager]), alertmanagerKey, false, .allow),
        (.ingest([.grafana]), alertmanagerKey, false, .forbidden),
        (.ingest([.alertmanager]), person(.admin), false, .forbidden),
        (.ingest([.alertmanager]), nil, false, .unauthenticated),
        (.loopbackOr(.viewer), nil, true, .allow),
        (.loopbackOr(.viewer), nil, false, .unauthenticated),
        (.loopbackOr(.viewer), person(.viewer), false, .allow),
        (.loopbackOr(.viewer), alertmanagerKey, false, .forbidden),
    ])
    func decisions(access: Access, principal: Principal?, loopback: Bool, expected: Access.Decision) {
        #expect(access.allows(principal, fromLoopback: loopback) == expected)
    }

    @Test func parsingNamesTheFieldAndTheChoices() throws {
        #expect(throws: ValidationError(field: "role", message: "must be one of viewer, responder, lead, manager, admin, not \"root\"")) {
            try Role.parse("root")
        }
        let admin = try Role.parse("Admin")
        #expect(admin == .admin)
        #expect(throws: ValidationError.self) { try IntegrationKind.parse("nagios") }
    }

    @Test(arguments: ["ada", "a.b-c_d", "x1", String(repeating: "a", count: 64)])
    func validUsernames(_ name: String) throws { try User.validateUsername(name) }

    @Test(arguments: ["", "Ada", "-ada", "a b", "ädä", "a/b", String(repeating: "a", count: 65), "'; DROP TABLE users;--"])
    func invalidUsernames(_ name: String) {
        #expect(throws: ValidationError.self) { try User.validateUsername(name) }
    }

    @Test func passwordsNeedTwelveCharactersAndAtMostSeventyTwoBytes() throws {
        #expect(throws: ValidationError.self) { try PasswordHasher.validate("") }
        #expect(throws: ValidationError.self) { try PasswordHasher.validate("elevenchars") }
        try PasswordHasher.validate("twelve chars")
        #expect(throws: ValidationError.self) { try PasswordHasher.validate(String(repeating: "ü", count: 37)) }
    }

    @Test func passwordHashesVerifyOnlyTheirPasswordAndEmptyNeverVerifies() {
        let hasher = PasswordHasher(cost: 4)
        let hash = hasher.hash("correct horse battery")
        #expect(hash.hasPrefix("$2"))
        #expect(!hash.contains("correct horse battery"))
        #expect(hasher.verify("correct horse battery", hash: hash))
        #expect(!hasher.verify("correct horse batterY", hash: hash))
        #expect(!hasher.verify("", hash: hash))
        #expect(!hasher.verify("anything", hash: nil))
    }
}

@Suite struct SecretsTests {
    @Test func tokensKeysAndSessionsHaveTheirShapesAndDoNotRepeat() {
        let tokens = (0..<200).map { _ in Secrets.newAPIToken() }
        #expect(Set(tokens).count == 200)
        #expect(tokens.allSatisfy { $0.hasPrefix("hr_") && $0.count == 43 && Secrets.isAPIToken($0) })
        let key = Secrets.newIntegrationKey()
        #expect(key.count == 32)
        #expect(key.allSatisfy { $0.isLowercase || $0.isNumber })
        #expect(!Secrets.isAPIToken(key))
        #expect(Secrets.newSessionToken().count == 43)
        #expect(Secrets.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Secrets.displayPrefix(tokens[0]) == String(tokens[0].prefix(7)) + "…")
    }

    @Test func csrfTokensBelongToTheirSession() {
        let a = Secrets.newSessionToken()
        let b = Secrets.newSessionToken()
        #expect(Secrets.csrfToken(session: a) == Secrets.csrfToken(session: a))
        #expect(Secrets.csrfToken(session: a) != Secrets.csrfToken(session: b))
        #expect(!Secrets.csrfToken(session: a).contains(a))
    }
}

@Suite struct WebhookSignatureTests {
    let body = Array(#"{"status":"firing","alerts":[]}"#.utf8)
    let key = "k3ykeykeykeykeykeykeykeykeykeyke"
    let now = Date(timeIntervalSince1970: 1_767_225_600)

    @Test func bodyOnlySignatureAsGrafanaSendsIt() {
        // openssl dgst -sha256 -hmac KEY over the body, lower-case hex.
        let signature = WebhookSignature.sign(Data(body), secret: key)
        #expect(signature.count == 64)
        #expect(WebhookSignature.verify(body: body, signature: signature, timestamp: nil, secret: key, now: now) == .valid)
        #expect(WebhookSignature.verify(body: body, signature: signature.uppercased(), timestamp: nil, secret: key, now: now) == .valid)
        #expect(WebhookSignature.verify(body: body + [32], signature: signature, timestamp: nil, secret: key, now: now) == .mismatch)
        #expect(WebhookSignature.verify(body: body, signature: signature, timestamp: nil, secret: "other", now: now) == .mismatch)
        #expect(WebhookSignature.verify(body: body, signature: nil, timestamp: nil, secret: key, now: now) == .missing)
    }

    @Test func timestampedSignatureRejectsReplaysOlderThanFiveMinutes() {
        let ts = "1767225500"  // 100 s before now
        let signature = WebhookSignature.sign(Data((ts + ":").utf8) + Data(body), secret: key)
        #expect(WebhookSignature.verify(body: body, signature: signature, timestamp: ts, secret: key, now: now) == .valid)
        #expect(WebhookSignature.verify(body: body, signature: signature, timestamp: ts, secret: key, now: now.addingTimeInterval(301)) == .stale)
        #expect(WebhookSignature.verify(body: body, signature: signature, timestamp: "yesterday", secret: key, now: now) == .stale)
        // A body-only signature does not pass as a timestamped one.
        #expect(
            WebhookSignature.verify(body: body, signature: WebhookSignature.sign(Data(body), secret: key), timestamp: ts, secret: key, now: now)
                == .mismatch
        )
    }

    @Test func knownVector() {
        // HMAC-SHA256(key: "key", "The quick brown fox jumps over the lazy dog") — RFC-style known answer.
        #expect(
            WebhookSignature.sign(Data("The quick brown fox jumps over the lazy dog".utf8), secret: "key")
                == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        )
    }
}
