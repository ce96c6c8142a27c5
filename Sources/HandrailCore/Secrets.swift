import Crypto
import Foundation
import HummingbirdBcrypt

/// The secrets Handrail hands out and how they are kept: shown once, stored only as a hash.
public enum Secrets {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    static let lowerAlphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")

    /// `count` characters drawn uniformly from `alphabet` with the system's secure generator.
    static func random(_ count: Int, from alphabet: [Character]) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// A personal API token: `hr_` and 40 letters or digits (about 238 bits).
    public static func newAPIToken() -> String { "hr_" + random(40, from: alphabet) }

    /// An integration key: 32 lower-case letters or digits (about 165 bits), the shape of a
    /// PagerDuty routing key, so PagerDuty clients accept it as `routing_key`.
    public static func newIntegrationKey() -> String { random(32, from: lowerAlphabet) }

    /// A session id for the cookie: 43 characters (256 bits).
    public static func newSessionToken() -> String { random(43, from: alphabet) }

    /// A generated password (first admin, resets): 20 letters or digits (about 119 bits).
    public static func newPassword() -> String { random(20, from: alphabet) }

    /// Whether a bearer credential is a personal API token (else it is an integration key).
    public static func isAPIToken(_ value: String) -> Bool { value.hasPrefix("hr_") }

    /// SHA-256, hex: how tokens, keys and session ids are stored and looked up.
    public static func hash(_ secret: String) -> String {
        Digest.sha256Hex(secret)
    }

    /// What a listing shows of a secret: enough to tell them apart, too little to use.
    public static func displayPrefix(_ secret: String) -> String {
        String(secret.prefix(secret.hasPrefix("hr_") ? 7 : 4)) + "…"
    }

    /// The CSRF token of a session: derived from the session id, so nothing more is stored.
    public static func csrfToken(session: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("handrail-csrf".utf8), using: SymmetricKey(data: Data(session.utf8)))
        return Data(mac).hex
    }

    /// Compares two strings in time that depends only on their lengths.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<x.count { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

/// Content digests: migration checksums, runbook versions, fingerprints, stored secrets.
public enum Digest {
    /// SHA-256 of the text's UTF-8 bytes, as 64 lower-case hex digits.
    public static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).hex
    }

    /// SHA-256 of the text's UTF-8 bytes in base64, as HTTP digests (`Repr-Digest`) write it.
    public static func sha256Base64(_ text: String) -> String {
        Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString()
    }
}

/// Password rules and bcrypt hashing.
public struct PasswordHasher: Sendable {
    /// bcrypt's work factor; 12 in production. Tests may lower it (same algorithm, less work).
    public let cost: UInt8
    /// A hash of nothing anyone knows, checked when there is no real hash to check, so an
    /// unknown user costs the same time as a wrong password.
    private let dummyHash: String

    public init(cost: UInt8 = 12) {
        self.cost = cost
        self.dummyHash = Bcrypt.hash(Secrets.newPassword(), cost: cost)
    }

    /// A bcrypt hash of a valid password (the empty password never gets here).
    public func hash(_ password: String) -> String {
        Bcrypt.hash(password, cost: cost)
    }

    /// Checks a password against a stored hash; with no stored hash (unknown user, no
    /// password set) it checks against a dummy, so every failure costs the same time.
    public func verify(_ password: String, hash: String?) -> Bool {
        guard let hash, !password.isEmpty else {
            _ = Bcrypt.verify(password.isEmpty ? "-" : password, hash: dummyHash)
            return false
        }
        return Bcrypt.verify(password, hash: hash)
    }

    /// At least 12 characters, at most 72 bytes (bcrypt ignores the rest).
    public static func validate(_ password: String, field: String = "password") throws(ValidationError) {
        if password.count < 12 { throw ValidationError(field: field, message: "must be at least 12 characters long") }
        if password.utf8.count > 72 { throw ValidationError(field: field, message: "must be at most 72 bytes long (bcrypt ignores the rest)") }
    }
}

extension Sequence<UInt8> {
    /// Lower-case hex. By table, not `String(format:)`: every request's key is hashed, and
    /// formatting each byte cost more than the SHA-256 itself.
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
