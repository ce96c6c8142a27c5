public import Foundation

/// A runbook version that alerts can be matched to.
public struct RunbookCandidate: Sendable, Equatable {
    public let runbook: Runbook
    public let version: Int
    /// Why an alert gets this runbook (every matcher held) and which labels group it:
    /// the same for every alert it matches, so worked out once.
    public let reason: String
    public let groupRule: String

    public init(runbook: Runbook, version: Int) {
        self.runbook = runbook
        self.version = version
        self.reason = "matched \(runbook.id) v\(version) on " + runbook.match.map(\.description).joined(separator: ", ")
        self.groupRule = "group_by [" + runbook.groupBy.joined(separator: ", ") + "] of runbook \(runbook.id) v\(version)"
    }
}

/// An alert with everything ingestion decides before it touches the database: its grouping
/// key and the rule that made it, the runbook version it gets and why, its severity.
public struct RoutedAlert: Sendable, Equatable {
    public var alert: NormalizedAlert
    public var groupingKey: String
    public var groupRule: String
    public var severity: Severity
    public var title: String
    public var runbookID: String?
    public var runbookVersion: Int?
    public var runbookReason: String
    public var autoResolve: Bool
    public var reopenWindow: Int
    /// The rotation the runbook names as owner of its incidents.
    public var ownersRotation: String? = nil
    /// Who is on call in it as the incident opens (set by ingestion, which knows the time).
    public var owner: String? = nil
    /// Why the incident has that owner, or none, in words.
    public var ownerReason: String = "no runbook, so no owners rotation"

    /// `assignOwner` for every alert of a delivery; who is on call in a rotation is worked
    /// out once, not once per alert (it was 3 % of a storm delivery's server CPU).
    public static func assignOwners(_ alerts: inout [RoutedAlert], rotations: [String: Rotation], at t: Date) {
        var found: [String: (owner: String?, reason: String)] = [:]
        for n in alerts.indices {
            let name = alerts[n].runbookID == nil ? nil : alerts[n].ownersRotation
            if let name, let known = found[name] {
                alerts[n].owner = known.owner
                alerts[n].ownerReason = known.reason
                continue
            }
            alerts[n].assignOwner(rotations: rotations, at: t)
            if let name { found[name] = (alerts[n].owner, alerts[n].ownerReason) }
        }
    }

    /// Sets `owner` and `ownerReason` from the rotations the runbooks name (as loaded, by name).
    public mutating func assignOwner(rotations: [String: Rotation], at t: Date) {
        guard runbookID != nil else { return }
        guard let name = ownersRotation else {
            ownerReason = "runbook \(runbookID ?? "") names no owners rotation"
            return
        }
        guard let rotation = rotations[name] else {
            ownerReason = "there is no rotation \(name.debugDescription) (the runbook's owners)"
            return
        }
        let onCall = rotation.onCall(at: t)
        owner = onCall.user
        if let user = onCall.user {
            ownerReason =
                onCall.override != nil
                ? "\(user) covers \(name) (override) as the incident opens" : "\(user) is on call in \(name) as the incident opens"
        } else {
            ownerReason = "nobody is on call in \(name) yet (its first shift starts \(RFC3339.format(rotation.shiftStart(0))))"
        }
    }
}

/// Pure decisions about where an alert belongs.
public enum AlertRouter {
    public static let defaultGroupBy = ["alertname", "service"]

    static let defaultGroupRule = "group_by [alertname, service] of the default (no runbook)"

    public static func route(_ alert: NormalizedAlert, runbooks: [RunbookCandidate]) -> RoutedAlert {
        let candidate = Runbook.bestMatch(
            count: runbooks.count,
            for: alert.labels,
            match: { runbooks[$0].runbook.match },
            id: { runbooks[$0].runbook.id }
        ).map { runbooks[$0.best] }
        let groupBy = candidate?.runbook.groupBy ?? defaultGroupBy
        let key = groupingKey(alert.labels, groupBy: groupBy)
        let rule = candidate?.groupRule ?? defaultGroupRule
        let severity =
            candidate?.runbook.severity(value: alert.value, labels: alert.labels)
            ?? alert.labels["severity"].flatMap { Severity(rawValue: $0.lowercased()) }
            ?? (alert.labels["severity"]?.lowercased() == "error" ? .critical : .warning)
        let reason = candidate?.reason ?? "no runbook matches these labels"
        return RoutedAlert(
            alert: alert,
            groupingKey: key,
            groupRule: rule,
            severity: severity,
            title: title(alert, groupBy: groupBy),
            runbookID: candidate?.runbook.id,
            runbookVersion: candidate?.version,
            runbookReason: reason,
            autoResolve: candidate?.runbook.autoResolve ?? true,
            reopenWindow: candidate?.runbook.reopenWindow ?? 3600,
            ownersRotation: candidate?.runbook.owners
        )
    }

    /// `alertname="X", service="Y"`: the group_by labels in the runbook's order, a missing
    /// label as empty (so alerts lacking it group together, as Alertmanager does). A key
    /// longer than `maxGroupingKey` bytes keeps its start and ends in the SHA-256 of the
    /// whole: the open-incident index cannot hold a value past about 2.7 KB.
    public static func groupingKey(_ labels: [String: String], groupBy: [String]) -> String {
        var names = groupBy
        if !names.contains("alertname") { names.insert("alertname", at: 0) }
        let key = names.map { "\($0)=\(quoted(labels[$0] ?? ""))" }.joined(separator: ", ")
        guard key.utf8.count > maxGroupingKey else { return key }
        return String(key.prefix(200)) + "… sha256:" + Digest.sha256Hex(key)
    }

    public static let maxGroupingKey = 1_000

    /// `value.debugDescription`, which grouping keys are made of (so it must never change):
    /// printable ASCII without `"`, `'` or `\` is only put in quotes, anything else is left to
    /// `debugDescription` (which was 3 % of a storm delivery's server CPU).
    static func quoted(_ value: String) -> String {
        let plain = value.utf8.allSatisfy {
            $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "'") && $0 != UInt8(ascii: "\\")
        }
        return plain ? "\"" + value + "\"" : value.debugDescription
    }

    /// `text` without the white space around it (Unicode's White_Space, the same characters
    /// as Foundation's `.whitespacesAndNewlines`, whose trimming was 2 % of a storm delivery's
    /// server CPU).
    static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.first, let last = scalars.last, first.properties.isWhitespace || last.properties.isWhitespace else {
            return text
        }
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }

    /// The summary a person wrote into the alert, else its name and grouping values.
    static func title(_ alert: NormalizedAlert, groupBy: [String]) -> String {
        let name = alert.labels["alertname"] ?? "alert"
        for key in ["summary", "title", "description"] {
            if let text = alert.annotations[key].map(trimmed), !text.isEmpty {
                return String(text.prefix(300))
            }
        }
        let context = groupBy.filter { $0 != "alertname" }.compactMap { alert.labels[$0] }.filter { !$0.isEmpty }
        return context.isEmpty ? name : "\(name) (\(context.joined(separator: ", ")))"
    }
}
