public import Foundation

/// A seeded pseudo-random generator (SplitMix64): the same seed, the same history.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

/// One incident of the demo history, with everything that happened to it.
public struct DemoIncident: Sendable, Equatable, Codable {
    public struct Alert: Sendable, Equatable, Codable {
        public var fingerprint: String
        public var labels: [String: String]
        public var value: Double
        public var deliveries: Int
        public var firstSeen: Date
        public var cleared: Date?
    }

    public struct Mark: Sendable, Equatable, Codable {
        public var step: Int
        public var outcome: String
        public var note: String?
        public var by: String
        public var at: Date
    }

    public struct DemoDecision: Sendable, Equatable, Codable {
        public var kind: String
        public var model: String
        public var fromVersion: String
        public var toVersion: String
        public var rationale: String
        public var by: String
        public var at: Date
        public var executedAt: Date?
        public var outcome: String?
    }

    public var runbookID: String
    public var runbookVersion: Int
    public var title: String
    public var severity: String
    public var groupingKey: String
    public var labels: [String: String]
    public var rotation: String?
    public var owner: String?
    public var openedAt: Date
    public var acknowledgedAt: Date?
    public var resolvedAt: Date?
    public var resolvedBy: String?
    public var alerts: [Alert]
    public var marks: [Mark]
    public var decision: DemoDecision?
    /// Written for some resolved critical incidents: a root cause and action items.
    public var postmortem: Bool
}

/// Realistic, reproducible history for `handrail demo`: incidents over the past year from
/// the shipped runbooks, owned by whoever was on call, with steps, decisions, postmortems.
public enum DemoHistory {
    public static let models = ["ranker", "fraud-scorer", "recsys-retrieval", "eta-predictor", "search-embedder", "churn-model"]

    /// `count` incidents opened over the `years` before `now`, oldest first.
    public static func incidents(
        count: Int,
        seed: UInt64,
        now: Date,
        years: Int = 1,
        runbooks: [(id: String, version: Int, runbook: Runbook)],
        rotations: [String: Rotation],
        responders: [String]
    ) -> [DemoIncident] {
        var rng = SeededRandom(seed: seed)
        guard !runbooks.isEmpty else { return [] }
        let year = 365.0 * 86400 * Double(max(1, years))
        var times = (0..<count).map { _ in now.addingTimeInterval(-Double.random(in: 0..<year, using: &rng)) }
        times.sort()
        var openKeys = Set<String>()
        var result: [DemoIncident] = []
        result.reserveCapacity(count)
        for (n, opened) in times.enumerated() {
            let pick = runbooks[Int.random(in: 0..<runbooks.count, using: &rng)]
            let r = pick.runbook
            let model = models[Int.random(in: 0..<models.count, using: &rng)]
            var labels = ["model": model, "service": "ml-\(model)"]
            if case .exact(let name)? = r.match.first(where: { $0.label == "alertname" })?.value {
                labels["alertname"] = name
            } else {
                labels["alertname"] = r.id
            }
            let threshold = r.thresholds.first
            let value =
                threshold.map { t in (t.critical ?? t.warning ?? 1) * Double.random(in: 0.8...1.6, using: &rng) }
                ?? Double.random(in: 0...1, using: &rng)
            let severity = threshold.flatMap { $0.severity(for: value) } ?? r.severity
            let rotation = r.owners
            let owner = rotation.flatMap { rotations[$0]?.onCall(at: opened).user }
            let ack = opened.addingTimeInterval(Double.random(in: 60...(severity == .critical ? 900 : 3600), using: &rng))
            let age = now.timeIntervalSince(opened)
            let stillOpen = age < 2 * 86400 && rng.chance(0.3)
            var resolved: Date? = ack.addingTimeInterval(Double.random(in: 600...(severity == .critical ? 4 * 3600 : 12 * 3600), using: &rng))
            if stillOpen || resolved! > now { resolved = nil }
            // Grouping keys stay unique among open incidents (the database insists).
            var key = "alertname=\"\(labels["alertname"]!)\", model=\"\(model)\""
            if resolved == nil {
                if openKeys.contains(key) { key += ", demo=\"\(n)\"" }
                openKeys.insert(key)
            }
            let worker = owner ?? responders[Int.random(in: 0..<responders.count, using: &rng)]
            var alerts: [DemoIncident.Alert] = []
            for a in 0..<Int.random(in: 1...3, using: &rng) {
                var l = labels
                l["feature"] = ["age", "country", "amount", "device", "hour"][a]
                alerts.append(
                    .init(
                        fingerprint: "demo-\(seed)-\(n)-\(a)",
                        labels: l,
                        value: value,
                        deliveries: Int.random(in: 1...240, using: &rng),
                        firstSeen: opened.addingTimeInterval(Double(a) * 30),
                        cleared: resolved.map { $0.addingTimeInterval(-Double.random(in: 0...300, using: &rng)) }
                    )
                )
            }
            var marks: [DemoIncident.Mark] = []
            var t = ack
            for step in r.steps {
                t = t.addingTimeInterval(Double.random(in: 60...900, using: &rng))
                if let end = resolved, t > end { break }
                if resolved == nil, t > now { break }
                let roll = Double.random(in: 0..<1, using: &rng)
                if roll < 0.06 {
                    marks.append(
                        .init(
                            step: step.index,
                            outcome: "skipped",
                            note: ["dashboard was down", "not relevant for this model", "done by the data team already"][step.index % 3],
                            by: worker,
                            at: t
                        )
                    )
                } else if roll < 0.09 {
                    marks.append(
                        .init(
                            step: step.index,
                            outcome: "failed",
                            note: ["command timed out", "no access to the cluster", "query returned nothing"][step.index % 3],
                            by: worker,
                            at: t
                        )
                    )
                } else {
                    marks.append(.init(step: step.index, outcome: "done", note: nil, by: worker, at: t))
                }
            }
            var decision: DemoIncident.DemoDecision?
            if r.rollback.allowed, severity == .critical, rng.chance(0.25) {
                let at = ack.addingTimeInterval(Double.random(in: 120...1200, using: &rng))
                if resolved.map({ at < $0 }) ?? (at < now) {
                    let v = Int.random(in: 10...80, using: &rng)
                    // A rollback is executed before the incident is resolved, and its outcome
                    // is recorded once the incident is over, as teams do: only decisions of
                    // open or just-resolved incidents are still awaiting one.
                    var executed = at.addingTimeInterval(Double.random(in: 60...600, using: &rng))
                    if let end = resolved, executed >= end { executed = at.addingTimeInterval(end.timeIntervalSince(at) / 2) }
                    let done = executed < now
                    let effective = rng.chance(0.8)
                    let settled = resolved.map { now.timeIntervalSince($0) > 7 * 86400 || rng.chance(0.5) } ?? false
                    decision = .init(
                        kind: "rollback",
                        model: model,
                        fromVersion: "v\(v)",
                        toVersion: "v\(v - 1)",
                        rationale: "\(labels["alertname"]!) at \(String(format: "%.2f", value)) since v\(v) shipped",
                        by: "lena",
                        at: at,
                        executedAt: done ? executed : nil,
                        outcome: done && settled ? (effective ? "effective" : "not_effective") : nil
                    )
                }
            }
            result.append(
                DemoIncident(
                    runbookID: pick.id,
                    runbookVersion: pick.version,
                    title: "\(r.title) on \(model)",
                    severity: severity.rawValue,
                    groupingKey: key,
                    labels: labels,
                    rotation: rotation,
                    owner: owner,
                    openedAt: opened,
                    acknowledgedAt: ack < now ? ack : nil,
                    resolvedAt: resolved,
                    resolvedBy: resolved == nil ? nil : worker,
                    alerts: alerts,
                    marks: marks,
                    decision: decision,
                    postmortem: resolved != nil && severity == .critical && rng.chance(0.1)
                )
            )
        }
        return result
    }
}
