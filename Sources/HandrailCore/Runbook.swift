import Foundation
import Synchronization

/// How bad an alert is.
public enum Severity: String, CaseIterable, Comparable, Sendable, Codable {
    case info, warning, critical

    public static func < (a: Severity, b: Severity) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One label condition of a runbook's `match`: an exact value, or a `/regex/` that must
/// match the whole value (as Prometheus matchers do).
public struct LabelMatcher: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Value: Sendable, Equatable, Codable {
        case exact(String)
        case regex(String)
    }

    public let label: String
    public let value: Value

    public init(label: String, value: Value) {
        self.label = label
        self.value = value
    }

    /// Whether the labels satisfy this matcher (a missing label never does).
    public func matches(_ labels: [String: String]) -> Bool {
        guard let actual = labels[label] else { return false }
        switch value {
        case .exact(let expected): return actual == expected
        case .regex(let pattern): return LabelMatcher.fullMatch(pattern, actual)
        }
    }

    static func fullMatch(_ pattern: String, _ text: String) -> Bool {
        // The lock covers the cache's lookup only; matching runs outside it, on every core at
        // once (an NSRegularExpression is immutable and documented as safe to share).
        var regex = cache.withLock { $0[pattern] }
        if regex == nil {
            guard let compiled = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$") else { return false }
            cache.withLock { $0[pattern] = compiled }
            regex = compiled
        }
        return regex?.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Compiled patterns, kept: compiling costs more than matching, and ingestion matches
    /// every alert against every runbook.
    private static let cache = Mutex<[String: NSRegularExpression]>([:])

    public var description: String {
        switch value {
        case .exact(let v): "\(label)=\(v.debugDescription)"
        case .regex(let p): "\(label)=~/\(p)/"
        }
    }
}

/// A threshold on the alert's value: the severity the value reaches.
public struct Threshold: Sendable, Equatable, Codable {
    public enum Direction: String, Sendable, Codable {
        /// Bigger values are worse (drift scores, latency, error rates) — the default.
        case higher
        /// Smaller values are worse (accuracy, throughput, freshness margin).
        case lower
    }

    public let metric: String
    public let warning: Double?
    public let critical: Double?
    public let direction: Direction

    public init(metric: String, warning: Double?, critical: Double?, direction: Direction = .higher) {
        self.metric = metric
        self.warning = warning
        self.critical = critical
        self.direction = direction
    }

    /// The threshold an alert is read against: the one for its `metric` label, or the only one.
    public static func applicable(_ thresholds: [Threshold], labels: [String: String]) -> Threshold? {
        thresholds.first { $0.metric == labels["metric"] } ?? (thresholds.count == 1 ? thresholds[0] : nil)
    }

    /// The severity `value` reaches, `nil` when below every threshold.
    public func severity(for value: Double) -> Severity? {
        func reached(_ limit: Double?) -> Bool {
            guard let limit else { return false }
            return direction == .higher ? value >= limit : value <= limit
        }
        if reached(critical) { return .critical }
        if reached(warning) { return .warning }
        return nil
    }
}

/// Who may record a rollback decision for incidents of a runbook, and how long after its
/// execution the alerts must clear for Handrail to propose "effective".
public struct RollbackPolicy: Sendable, Equatable, Codable {
    /// Whether rolling back (kind `rollback`) is an option at all; other kinds stay open.
    public let allowed: Bool
    /// The roles that may decide. A role listed admits every role above it too.
    public let decidedBy: [Role]
    /// Seconds (default 30 minutes).
    public let verificationWindow: Int

    public init(allowed: Bool = true, decidedBy: [Role] = [.lead, .manager, .admin], verificationWindow: Int = 1800) {
        self.allowed = allowed
        self.decidedBy = decidedBy
        self.verificationWindow = verificationWindow
    }

    /// Versions synced before `verification_window` existed decode with the default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        allowed = try c.decode(Bool.self, forKey: .allowed)
        decidedBy = try c.decode([Role].self, forKey: .decidedBy)
        verificationWindow = try c.decodeIfPresent(Int.self, forKey: .verificationWindow) ?? 1800
    }

    /// The least role that may decide (`decided_by: [lead, manager]` admits lead and up).
    public var minimumRole: Role { decidedBy.min() ?? .lead }

    /// Whether `role` may record a decision of `kind`; if not, why, in one sentence.
    public func refusal(role: Role, kind: DecisionKind, runbook: String?) -> String? {
        let whose = runbook.map { "runbook \($0)" } ?? "the default policy (no runbook)"
        if kind == .rollback && !allowed {
            return "\(whose) does not allow rollback; record hold, roll_forward, traffic_shift or flag_off instead"
        }
        if role < minimumRole {
            return "\(whose) lets \(minimumRole.rawValue) and up record decisions; you are \(role.rawValue)"
        }
        return nil
    }
}

/// One item of the runbook's checklist (the ordered list under `## Steps`).
public struct RunbookStep: Sendable, Equatable, Codable {
    /// 1-based, stable: the item's position in the list.
    public let index: Int
    /// The item's Markdown, as written (code blocks and links included).
    public let markdown: String
    /// The item's first sentence as plain text, for lists, timelines and documents
    /// (`RunbookStep.title(of:)`).
    public let title: String

    public init(index: Int, markdown: String, title: String) {
        self.index = index
        self.markdown = markdown
        self.title = Self.title(of: title)
    }

    /// Versions stored with the whole first paragraph as the title read as today's.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            index: try c.decode(Int.self, forKey: .index),
            markdown: try c.decode(String.self, forKey: .markdown),
            title: try c.decode(String.self, forKey: .title)
        )
    }

    /// A step's title from its first paragraph's plain text: the first sentence, without the
    /// colon that introduces a code block or list ("…check the feature with the highest
    /// score:" reads "…highest score"), at most 120 characters (cut at a word, with "…").
    /// Idempotent, so titles stored in older versions and in the log read the same.
    public static func title(of text: String) -> String {
        var t = text.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        // The first sentence: up to ". ", "? " or "! " (not "e.g. " inside a word run).
        if let end = sentenceEnd(t) { t = String(t[..<end]) }
        while let last = t.last, [":", ".", ";", ","].contains(last) { t.removeLast() }
        t = t.trimmingCharacters(in: .whitespaces)
        if t.count > 120 {
            let cut = t.prefix(119)
            t = (cut.lastIndex(of: " ").map { String(cut[..<$0]) } ?? String(cut)) + "…"
        }
        return t
    }

    /// Where `[.?!]` is followed by white space and a capital letter, as the regular expression
    /// `/[.?!](?=\s+\p{Lu})/` reads it. By hand: a regex literal is parsed again on every call,
    /// and this ran for every step of every runbook version read (27 % of an incident page's CPU).
    static func sentenceEnd(_ t: String) -> String.Index? {
        var i = t.startIndex
        while i < t.endIndex {
            let c = t[i]
            i = t.index(after: i)
            guard c == "." || c == "?" || c == "!" else { continue }
            var j = i
            while j < t.endIndex, t[j].isWhitespace { j = t.index(after: j) }
            if j > i, j < t.endIndex, t[j].unicodeScalars.first?.properties.generalCategory == .uppercaseLetter {
                return t.index(before: i)
            }
        }
        return nil
    }
}

/// A runbook as written in `runbooks/*.md`: YAML front matter and a Markdown body.
public struct Runbook: Sendable, Equatable, Codable {
    public let id: String
    public let title: String
    public let match: [LabelMatcher]
    public let groupBy: [String]
    public let severity: Severity
    /// The rotation that owns incidents of this kind.
    public let owners: String?
    public let thresholds: [Threshold]
    public let autoResolve: Bool
    /// Seconds within which a resolved incident of the same key reopens.
    public let reopenWindow: Int
    public let rollback: RollbackPolicy
    /// `required` or `optional`; nil: by severity (a critical incident needs a postmortem).
    public let postmortem: String?
    /// The Markdown after the front matter.
    public let body: String
    public let steps: [RunbookStep]

    public init(
        id: String,
        title: String,
        match: [LabelMatcher],
        groupBy: [String] = ["alertname", "service"],
        severity: Severity = .warning,
        owners: String? = nil,
        thresholds: [Threshold] = [],
        autoResolve: Bool = true,
        reopenWindow: Int = 3600,
        rollback: RollbackPolicy = RollbackPolicy(),
        postmortem: String? = nil,
        body: String,
        steps: [RunbookStep]
    ) {
        self.postmortem = postmortem
        self.id = id
        self.title = title
        self.match = match
        self.groupBy = groupBy
        self.severity = severity
        self.owners = owners
        self.thresholds = thresholds
        self.autoResolve = autoResolve
        self.reopenWindow = reopenWindow
        self.rollback = rollback
        self.body = body
        self.steps = steps
    }

    /// The matchers the labels satisfy, or `nil` unless all of them do.
    public func matchers(satisfiedBy labels: [String: String]) -> [LabelMatcher]? {
        match.allSatisfy { $0.matches(labels) } ? match : nil
    }

    /// The severity of an alert of this runbook: from the thresholds when the alert has a
    /// value (the threshold for its `metric` label, or the only threshold), else the alert's
    /// own `severity` label when it is one Handrail knows, else the runbook's default.
    public func severity(value: Double?, labels: [String: String]) -> Severity {
        severityRule(value: value, labels: labels).severity
    }

    /// The severity and the rule that decided it, in words, for wherever severity is shown:
    /// "critical: the value 0.31 reaches the runbook's critical threshold 0.25 for psi
    /// (higher is worse); the alert's label said warning".
    public func severityRule(value: Double?, labels: [String: String]) -> (severity: Severity, rule: String) {
        let label = labels["severity"]
        let said = label.map { "; the alert's label said \($0)" } ?? ""
        if let value {
            if let t = Threshold.applicable(thresholds, labels: labels) {
                let worse = t.direction == .higher ? "higher is worse" : "lower is worse"
                let v = NumberText.value(value, against: t)
                let reached = t.severity(for: value)
                let limit = reached == .critical ? t.critical : reached == .warning ? t.warning : nil
                guard let reached, let limit else {
                    return (.info, "info: the value \(v) is short of the runbook's thresholds for \(t.metric) (\(worse))\(said)")
                }
                return (
                    reached,
                    "\(reached.rawValue): the value \(v) reaches the runbook's \(reached.rawValue) threshold \(NumberText.plain(limit)) for \(t.metric) (\(worse))\(said)"
                )
            }
        }
        if let known = label.flatMap({ Severity(rawValue: $0.lowercased()) }) {
            return (known, "\(known.rawValue): the alert's severity label (no value read against a threshold of the runbook)")
        }
        return (severity, "\(severity.rawValue): the runbook's default severity (no value against a threshold, no severity label it knows)")
    }

}

/// Which runbook an alert gets, and why.
public struct RunbookMatch: Sendable, Equatable {
    public let runbook: Runbook
    /// The matchers that held — what an incident shows as the reason.
    public let matched: [LabelMatcher]
    /// Other runbooks that matched with as many matchers (lint forbids this; the first id wins).
    public let tiedWith: [String]

    public var reason: String {
        "matched \(runbook.id) on " + matched.map(\.description).joined(separator: ", ")
            + (tiedWith.isEmpty ? "" : " (tied with \(tiedWith.joined(separator: ", ")); chose the first id)")
    }
}

extension Collection where Element == Runbook {
    /// The runbook for an alert: every matcher holds, and the most matchers win.
    public func bestMatch(for labels: [String: String]) -> RunbookMatch? {
        let runbooks = Array(self)
        return Runbook.bestMatch(count: runbooks.count, for: labels, match: { runbooks[$0].match }, id: { runbooks[$0].id })
            .map { RunbookMatch(runbook: runbooks[$0.best], matched: runbooks[$0.best].match, tiedWith: $0.tied.map { runbooks[$0].id }) }
    }
}

extension Runbook {
    /// `bestMatch` over `count` runbooks read by index, so that a caller holding them inside
    /// other values reads only their matchers and ids (copying each runbook for each alert
    /// was 5 % of a storm delivery's server CPU): the index of the runbook with the most
    /// matchers, all holding, and of those that tied with it (the first id wins).
    public static func bestMatch(
        count: Int,
        for labels: [String: String],
        match: (Int) -> [LabelMatcher],
        id: (Int) -> String
    ) -> (best: Int, tied: [Int])? {
        var most = -1
        var winners: [Int] = []
        for i in 0..<count {
            let matchers = match(i)
            guard matchers.allSatisfy({ $0.matches(labels) }) else { continue }
            if matchers.count > most {
                most = matchers.count
                winners = [i]
            } else if matchers.count == most {
                winners.append(i)
            }
        }
        guard !winners.isEmpty else { return nil }
        let ordered = winners.count == 1 ? winners : winners.sorted { id($0) < id($1) }
        return (ordered[0], Array(ordered.dropFirst()))
    }
}
