import Crypto
public import Foundation

/// Outgoing generic webhooks, signed per the Standard Webhooks specification
/// (standardwebhooks.com): headers `webhook-id` (the notification's id, the same at every
/// retry, so a receiver can drop a duplicate), `webhook-timestamp` (Unix seconds of this
/// attempt) and `webhook-signature` (`v1,` and the base64 HMAC-SHA256, keyed with the
/// secret's bytes, of `id.timestamp.body`). Secrets are `whsec_` and base64 of 24 random bytes.
public enum StandardWebhook {
    public static let secretPrefix = "whsec_"

    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return secretPrefix + Data(bytes).base64EncodedString()
    }

    /// The key a secret stands for; nil when it is not `whsec_` and base64.
    public static func key(_ secret: String) -> Data? {
        guard secret.hasPrefix(secretPrefix), let data = Data(base64Encoded: String(secret.dropFirst(secretPrefix.count))), data.count >= 16
        else { return nil }
        return data
    }

    /// The `webhook-signature` value of one attempt.
    public static func signature(id: String, timestamp: Int, body: Data, key: Data) -> String {
        var signed = Data("\(id).\(timestamp).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The three headers of one attempt, by name.
    public static func headers(id: String, timestamp: Int, body: Data, key: Data) -> [(String, String)] {
        [
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", signature(id: id, timestamp: timestamp, body: body, key: key)),
        ]
    }
}

/// When a notification that failed for a passing reason is tried again: exponential backoff
/// from 5 s (doubling, at most an hour) with ±50 % jitter, or later if the receiver asked
/// (`Retry-After`, at most an hour); never after `maxAge` from its creation (then it has failed).
public enum DeliveryBackoff {
    public static func next(
        attempts: Int,
        createdAt: Date,
        now: Date,
        retryAfter: Double?,
        maxAge: Double,
        jitter: Double = Double.random(in: 0.5...1.5)
    )
        -> Date?
    {
        let base = min(3600, 5 * pow(2, Double(min(max(attempts - 1, 0), 20))))
        let wait = max(base * jitter, min(retryAfter ?? 0, 3600))
        let at = now.addingTimeInterval(wait)
        return at.timeIntervalSince(createdAt) > maxAge ? nil : at
    }

    /// `Retry-After` as seconds: a number of seconds, or an HTTP date.
    public static func retryAfter(_ header: String?, now: Date) -> Double? {
        guard let header = header?.trimmingCharacters(in: .whitespaces), !header.isEmpty else { return nil }
        if let seconds = Double(header), seconds.isFinite, seconds >= 0 { return seconds }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: header).map { max(0, $0.timeIntervalSince(now)) }
    }
}
