public import Foundation

/// The stage of a canary release a controller asks about (Flagger's hook types).
public enum GateStage: String, CaseIterable, Sendable, Codable {
    case confirmRollout = "confirm-rollout"
    case confirmTrafficIncrease = "confirm-traffic-increase"
    case confirmPromotion = "confirm-promotion"

    public static func parse(_ text: String, field: String = "stage") throws(ValidationError) -> GateStage {
        guard let stage = GateStage(rawValue: text) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return stage
    }

    /// How a person reads it.
    public var title: String {
        switch self {
        case .confirmRollout: "start the rollout"
        case .confirmTrafficIncrease: "increase the canary's traffic"
        case .confirmPromotion: "promote the canary"
        }
    }
}

/// What a person decided at a gate: go (this stage may proceed), hold (not now), or roll
/// the release back.
public enum GateDecisionKind: String, CaseIterable, Sendable, Codable {
    case go, hold, rollback

    public static func parse(_ text: String, field: String = "kind") throws(ValidationError) -> GateDecisionKind {
        guard let kind = GateDecisionKind(rawValue: text.lowercased()) else {
            throw ValidationError(field: field, message: "must be one of go, hold, rollback, not \(text.debugDescription)")
        }
        return kind
    }
}

/// What Handrail answers a controller about a gate.
public enum GateAnswer: String, Sendable, Codable {
    /// A person allowed to decide recorded "go" for this stage of this release.
    case go
    /// No decision yet, or the newest one is "hold": the controller asks again later.
    case wait
    /// A person decided to roll the release back.
    case rollback
}

/// The release a controller asks about: one target at one checksum.
public struct ReleaseRef: Sendable, Equatable, Codable {
    public var namespace: String
    public var name: String
    public var checksum: String

    public init(namespace: String, name: String, checksum: String) {
        self.namespace = namespace
        self.name = name
        self.checksum = checksum
    }

    /// Checks each part (Kubernetes names are at most 253 characters; a checksum or
    /// hash, 200), naming the field at fault with `prefix` (`""` or `"metadata."`).
    public static func validated(namespace: String?, name: String?, checksum: String?) throws(ValidationError) -> ReleaseRef {
        func part(_ value: String?, _ field: String, _ limit: Int) throws(ValidationError) -> String {
            guard let v = value?.trimmingCharacters(in: .whitespaces), !v.isEmpty else {
                throw ValidationError(field: field, message: "is required")
            }
            guard v.count <= limit, !v.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ValidationError(field: field, message: "must be at most \(limit) characters, without control characters")
            }
            return v
        }
        return ReleaseRef(
            namespace: try part(namespace, "namespace", 253),
            name: try part(name, "name", 253),
            checksum: try part(checksum, "checksum", 200)
        )
    }

    public var target: String { "\(namespace)/\(name)" }
}

/// What Flagger POSTs to every webhook (`CanaryWebhookPayload` in Flagger's
/// `pkg/apis/flagger/v1beta1/canary.go`): `{"name", "namespace", "phase", "checksum",
/// "metadata": {string: string}}`; an event hook's metadata carries `eventMessage`,
/// `eventType` and `timestamp` (milliseconds since 1970, as text).
public struct FlaggerPayload: Sendable, Equatable {
    public var release: ReleaseRef
    public var phase: String?
    public var metadata: [String: String]

    /// Parses and checks a webhook body; every problem names its field.
    public static func parse(_ json: JSONValue) throws(ValidationError) -> FlaggerPayload {
        guard case .object = json else { throw ValidationError(field: "body", message: "must be a JSON object (Flagger's webhook payload)") }
        func text(_ field: String) throws(ValidationError) -> String? {
            guard let value = json[field], value != .null else { return nil }
            guard let s = value.stringValue else { throw ValidationError(field: field, message: "must be a string") }
            return s
        }
        let release = try ReleaseRef.validated(namespace: try text("namespace"), name: try text("name"), checksum: try text("checksum"))
        var metadata: [String: String] = [:]
        if let m = json["metadata"], m != .null {
            guard case .object(let pairs) = m else { throw ValidationError(field: "metadata", message: "must be an object of strings") }
            guard pairs.count <= 100 else { throw ValidationError(field: "metadata", message: "must have at most 100 entries") }
            for (key, value) in pairs {
                guard let s = value.stringValue else { throw ValidationError(field: "metadata.\(key)", message: "must be a string") }
                guard key.count <= 200, s.count <= 10_000 else {
                    throw ValidationError(field: "metadata.\(key)", message: "must be at most 10000 characters (keys 200)")
                }
                metadata[key] = s
            }
        }
        let phase = try text("phase")
        guard (phase?.count ?? 0) <= 100 else { throw ValidationError(field: "phase", message: "must be at most 100 characters") }
        return FlaggerPayload(release: release, phase: phase, metadata: metadata)
    }

    /// The metadata that describes the release (guard values and the like), without the
    /// keys that steer Handrail (`runbook`) or describe an event.
    public var guards: [String: String] {
        metadata.filter { !["runbook", "wait_limit", "eventMessage", "eventType", "timestamp"].contains($0.key) }
    }

    /// An event hook's time (`metadata.timestamp`, milliseconds), if it is one.
    public var eventTime: Date? {
        guard let text = metadata["timestamp"], let ms = Int64(text), ms > 0, ms < 32_503_680_000_000 else { return nil }
        return Date(timeIntervalSince1970: Double(ms) / 1000)
    }
}
