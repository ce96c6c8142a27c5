import Crypto
public import Foundation

/// HMAC-SHA256 signatures on alert deliveries, as Grafana sends them
/// (`X-Grafana-Alerting-Signature`): lower-case hex of HMAC-SHA256 over the raw body, or
/// over `timestamp:body` when Grafana is configured with a timestamp header (Unix seconds).
///
/// The HMAC secret is the integration key itself: Handrail stores only the key's hash, and
/// the delivery carries the key in its Authorization header, so nothing more is stored.
public enum WebhookSignature {
    /// The header names Grafana's configuration commonly uses for the timestamp.
    public static let timestampHeaders = ["X-Grafana-Alerting-Signature-Timestamp", "X-Grafana-Alerting-Timestamp"]
    public static let signatureHeader = "X-Grafana-Alerting-Signature"
    /// Signed deliveries older (or newer) than this are refused as replays.
    public static let maximumAge: TimeInterval = 300

    public enum Verdict: Sendable, Equatable {
        case valid
        case missing
        case mismatch
        /// The timestamp is not a number, or more than five minutes from now.
        case stale
    }

    public static func verify(body: some Collection<UInt8>, signature: String?, timestamp: String?, secret: String, now: Date) -> Verdict {
        guard let signature = signature?.trimmingCharacters(in: .whitespaces).lowercased(), !signature.isEmpty else { return .missing }
        var signed = Data()
        if let timestamp, !timestamp.isEmpty {
            guard let seconds = TimeInterval(timestamp), abs(now.timeIntervalSince1970 - seconds) <= maximumAge else { return .stale }
            signed.append(contentsOf: Array((timestamp + ":").utf8))
        }
        signed.append(contentsOf: Array(body))
        let expected = sign(signed, secret: secret)
        return Secrets.constantTimeEqual(expected, signature) ? .valid : .mismatch
    }

    /// The signature Grafana would send for `data`.
    public static func sign(_ data: Data, secret: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: Data(secret.utf8)))).hex
    }
}
