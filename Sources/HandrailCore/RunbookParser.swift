import Foundation
import Markdown
import Yams

/// One problem in a runbook file, as `file:line: message`.
public struct LintProblem: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let line: Int
    public let message: String

    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String { "\(path):\(line): \(message)" }
}

/// Reads runbooks (YAML front matter + Markdown) and reports every problem with its line.
public enum RunbookParser {
    static let keys: Set<String> = [
        "id", "title", "match", "group_by", "severity", "owners", "thresholds", "auto_resolve", "reopen_window", "rollback", "postmortem",
    ]
    static let thresholdKeys: Set<String> = ["metric", "warning", "critical", "direction"]
    static let rollbackKeys: Set<String> = ["allowed", "decided_by", "verification_window"]

    /// Parses one file. A runbook comes back only when there are no problems.
    public static func parse(_ text: String, path: String) -> (runbook: Runbook?, problems: [LintProblem]) {
        var problems: [LintProblem] = []
        func problem(_ line: Int, _ message: String) { problems.append(LintProblem(path: path, line: line, message: message)) }

        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        guard lines.first == "---" else {
            problem(1, "no YAML front matter: the first line must be ---")
            return (nil, problems)
        }
        guard let close = lines.dropFirst().firstIndex(where: { $0 == "---" || $0 == "..." }) else {
            problem(1, "the front matter is not closed: no second --- line")
            return (nil, problems)
        }
        let yaml = lines[1..<close].joined(separator: "\n")
        let body = lines[(close + 1)...].joined(separator: "\n")
        let bodyFirstLine = close + 2
        // A node's line in the file (the YAML starts on line 2).
        func line(_ node: Node?) -> Int { (node?.mark?.line ?? 0) + 1 }

        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            switch error {
            case .scanner(_, let problemText, let mark, _), .parser(_, let problemText, let mark, _), .composer(_, let problemText, let mark, _):
                problem(mark.line + 1, "bad YAML: \(problemText)")
            default:
                problem(2, "bad YAML: \(error)")
            }
            return (nil, problems)
        } catch {
            problem(2, "bad YAML: \(error)")
            return (nil, problems)
        }
        guard let mapping = root?.mapping else {
            problem(2, "the front matter must be a mapping of keys (id:, title:, match:, …)")
            return (nil, problems)
        }
        for key in mapping.keys where !keys.contains(key.string ?? "") {
            problem(line(key), "unknown key \((key.string ?? "?").debugDescription); known keys: \(keys.sorted().joined(separator: ", "))")
        }
        func keyLine(_ name: String) -> Int {
            line(mapping.keys.first { $0.string == name })
        }
        func string(_ name: String, required: Bool) -> String? {
            guard let node = mapping[name] else {
                if required { problem(2, "missing \(name)") }
                return nil
            }
            guard let value = node.scalar?.string, !value.isEmpty else {
                problem(line(node), "\(name) must be a non-empty string")
                return nil
            }
            return value
        }

        let id = string("id", required: true)
        if let id, id.range(of: "^[a-z0-9][a-z0-9-]{0,99}$", options: .regularExpression) == nil {
            problem(keyLine("id"), "id \(id.debugDescription) must be a slug: lower-case letters, digits and dashes")
        }
        let title = string("title", required: true)

        var matchers: [LabelMatcher] = []
        if let node = mapping["match"] {
            if let match = node.mapping, !match.isEmpty {
                for (key, value) in match {
                    guard let label = key.string, let text = value.scalar?.string else {
                        problem(line(key), "match: each entry is label: value (a string, or /regex/)")
                        continue
                    }
                    if text.count >= 2, text.hasPrefix("/"), text.hasSuffix("/") {
                        let pattern = String(text.dropFirst().dropLast())
                        do {
                            _ = try NSRegularExpression(pattern: pattern)
                            matchers.append(LabelMatcher(label: label, value: .regex(pattern)))
                        } catch {
                            problem(line(value), "match.\(label): invalid regular expression /\(pattern)/")
                        }
                    } else {
                        matchers.append(LabelMatcher(label: label, value: .exact(text)))
                    }
                }
            } else {
                problem(line(node), "match must be a non-empty mapping of label: value")
            }
        } else {
            problem(2, "missing match (the labels an alert must carry to get this runbook)")
        }

        var groupBy = ["alertname", "service"]
        if let node = mapping["group_by"] {
            if let items = node.sequence?.compactMap({ $0.string }), items.count == node.sequence?.count, !items.isEmpty {
                groupBy = items
            } else {
                problem(line(node), "group_by must be a list of label names")
            }
        }

        var severity = Severity.warning
        if let node = mapping["severity"] {
            if let value = node.string.flatMap({ Severity(rawValue: $0) }) {
                severity = value
            } else {
                problem(line(node), "severity must be one of \(Severity.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let owners = string("owners", required: false)

        var thresholds: [Threshold] = []
        if let node = mapping["thresholds"] {
            if let items = node.sequence {
                for item in items {
                    guard let t = item.mapping else {
                        problem(line(item), "each threshold is a mapping: { metric, warning, critical, direction }")
                        continue
                    }
                    for key in t.keys where !thresholdKeys.contains(key.string ?? "") {
                        problem(
                            line(key),
                            "unknown threshold key \((key.string ?? "?").debugDescription); known: \(thresholdKeys.sorted().joined(separator: ", "))"
                        )
                    }
                    guard let metric = t["metric"]?.string, !metric.isEmpty else {
                        problem(line(item), "a threshold needs a metric")
                        continue
                    }
                    func number(_ key: String) -> Double? {
                        guard let n = t[key] else { return nil }
                        guard let value = n.float ?? n.int.map(Double.init) else {
                            problem(line(n), "threshold \(metric).\(key) must be a number")
                            return nil
                        }
                        return value
                    }
                    let warning = number("warning")
                    let critical = number("critical")
                    var direction = Threshold.Direction.higher
                    if let d = t["direction"] {
                        if let value = d.string.flatMap(Threshold.Direction.init(rawValue:)) {
                            direction = value
                        } else {
                            problem(line(d), "threshold \(metric).direction must be higher or lower (which way is worse)")
                        }
                    }
                    if warning == nil && critical == nil {
                        problem(line(item), "threshold \(metric) needs warning, critical or both")
                    }
                    if let w = warning, let c = critical, direction == .higher ? w > c : w < c {
                        problem(
                            line(item),
                            "threshold \(metric) is out of order: warning \(w) must be \(direction == .higher ? "below" : "above") critical \(c) when \(direction.rawValue) is worse"
                        )
                    }
                    thresholds.append(Threshold(metric: metric, warning: warning, critical: critical, direction: direction))
                }
            } else {
                problem(line(node), "thresholds must be a list")
            }
        }

        var autoResolve = true
        if let node = mapping["auto_resolve"] {
            if let value = node.bool { autoResolve = value } else { problem(line(node), "auto_resolve must be true or false") }
        }
        var reopenWindow = 3600
        if let node = mapping["reopen_window"] {
            if let seconds = node.int ?? node.string.flatMap(parseDuration) {
                reopenWindow = seconds
            } else {
                problem(line(node), "reopen_window must be a duration such as 30m, 2h or 1h30m")
            }
        }

        var postmortem: String?
        if let node = mapping["postmortem"] {
            if let value = node.string, ["required", "optional"].contains(value) {
                postmortem = value
            } else {
                problem(line(node), "postmortem must be required or optional (left out: a critical incident needs one)")
            }
        }
        var rollback = RollbackPolicy()
        if let node = mapping["rollback"] {
            if let r = node.mapping {
                for key in r.keys where !rollbackKeys.contains(key.string ?? "") {
                    problem(
                        line(key),
                        "unknown rollback key \((key.string ?? "?").debugDescription); known: allowed, decided_by, verification_window"
                    )
                }
                var allowed = true
                if let a = r["allowed"] {
                    if let value = a.bool { allowed = value } else { problem(line(a), "rollback.allowed must be true or false") }
                }
                var roles = rollback.decidedBy
                if let d = r["decided_by"] {
                    roles = []
                    for item in d.sequence ?? [d] {
                        if let role = item.string.flatMap({ Role(rawValue: $0) }) {
                            roles.append(role)
                        } else {
                            problem(
                                line(item),
                                "unknown role \((item.string ?? "?").debugDescription) in rollback.decided_by; roles: \(Role.allCases.map(\.rawValue).joined(separator: ", "))"
                            )
                        }
                    }
                }
                var window = rollback.verificationWindow
                if let w = r["verification_window"] {
                    if let seconds = w.int ?? w.string.flatMap(parseDuration), seconds > 0 {
                        window = seconds
                    } else {
                        problem(line(w), "rollback.verification_window must be a duration such as 15m, 30m or 1h")
                    }
                }
                if let d = r["decided_by"], d.sequence?.isEmpty == true { problem(line(d), "rollback.decided_by must name at least one role") }
                rollback = RollbackPolicy(allowed: allowed, decidedBy: roles.isEmpty ? rollback.decidedBy : roles, verificationWindow: window)
            } else {
                problem(line(node), "rollback must be a mapping { allowed, decided_by, verification_window }")
            }
        }

        let steps = Self.steps(in: body, firstLine: bodyFirstLine, path: path, problems: &problems)
        guard problems.isEmpty, let id, let title else { return (nil, problems) }
        return (
            Runbook(
                id: id,
                title: title,
                match: matchers,
                groupBy: groupBy,
                severity: severity,
                owners: owners,
                thresholds: thresholds,
                autoResolve: autoResolve,
                reopenWindow: reopenWindow,
                rollback: rollback,
                postmortem: postmortem,
                body: body,
                steps: steps
            ), []
        )
    }

    /// The ordered list under the `## Steps` heading.
    static func steps(in body: String, firstLine: Int, path: String, problems: inout [LintProblem]) -> [RunbookStep] {
        let document = MarkdownDocument(body)
        let blocks = document.root.children
        guard
            let heading = blocks.firstIndex(where: {
                $0.kind == .heading(level: 2) && $0.plainText.trimmingCharacters(in: .whitespaces).lowercased() == "steps"
            })
        else {
            problems.append(LintProblem(path: path, line: firstLine, message: "no \"## Steps\" section: the ordered list under it is the checklist"))
            return []
        }
        let after = blocks[(heading + 1)...].prefix { node in
            if case .heading(let level) = node.kind { return level > 2 }
            return true
        }
        guard let list = after.first(where: { if case .list(ordered: true, _) = $0.kind { true } else { false } }), !list.children.isEmpty else {
            problems.append(
                LintProblem(path: path, line: firstLine + blocks[heading].startLine - 1, message: "\"## Steps\" has no numbered list (1. … 2. …)")
            )
            return []
        }
        return list.children.enumerated().map { offset, item in
            let raw = document.sourceText(lines: item.startLine...item.endLine).split(separator: "\n", omittingEmptySubsequences: false)
            // Drop the list marker ("1. ") from the first line and the same indent from the rest.
            let first = raw.first.map(String.init) ?? ""
            let marker = first.prefix { $0 == " " || $0.isNumber || $0 == "." || $0 == ")" }
            let width = marker.count
            let rest = raw.dropFirst().map { line in
                let spaces = line.prefix { $0 == " " }.count
                return String(line.dropFirst(min(spaces, width)))
            }
            let markdown = ([String(first.dropFirst(width))] + rest).joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            let title = item.children.first.map(\.plainText).map { String($0.split(separator: "\n").first ?? "") } ?? ""
            return RunbookStep(index: offset + 1, markdown: markdown, title: title.trimmingCharacters(in: .whitespaces))
        }
    }

    /// `90s`, `30m`, `2h`, `1h30m`, `1d` → seconds; nil for anything else, or beyond ten
    /// years (so no arithmetic on what a client sent can overflow).
    public static func parseDuration(_ text: String) -> Int? {
        var total = 0
        var number = ""
        for c in text.trimmingCharacters(in: .whitespaces) {
            if c.isASCII && c.isNumber {
                number.append(c)
                continue
            }
            guard number.count <= 9, let n = Int(number) else { return nil }
            switch c {
            case "s": total += n
            case "m": total += n * 60
            case "h": total += n * 3600
            case "d": total += n * 86_400
            default: return nil
            }
            guard total <= 315_360_000 else { return nil }
            number = ""
        }
        return number.isEmpty && total > 0 ? total : nil
    }

    /// Lints a whole directory's files: each file's problems, duplicate ids, and pairs of
    /// runbooks that would match the same alert with equal specificity.
    public static func lint(_ files: [(path: String, text: String)]) -> (runbooks: [(path: String, runbook: Runbook)], problems: [LintProblem]) {
        var runbooks: [(path: String, runbook: Runbook)] = []
        var problems: [LintProblem] = []
        for file in files.sorted(by: { $0.path < $1.path }) {
            let (runbook, found) = parse(file.text, path: file.path)
            problems += found
            if let runbook { runbooks.append((file.path, runbook)) }
        }
        func lineOf(_ key: String, in path: String) -> Int {
            let text = files.first { $0.path == path }?.text ?? ""
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            return (lines.firstIndex { $0.hasPrefix(key + ":") } ?? 0) + 1
        }
        var seen: [String: String] = [:]
        for (path, runbook) in runbooks {
            if let other = seen[runbook.id] {
                problems.append(
                    LintProblem(path: path, line: lineOf("id", in: path), message: "duplicate id \(runbook.id.debugDescription) (also in \(other))")
                )
            } else {
                seen[runbook.id] = path
            }
        }
        for (i, a) in runbooks.enumerated() {
            for b in runbooks[(i + 1)...] where a.runbook.match.count == b.runbook.match.count && mayOverlap(a.runbook.match, b.runbook.match) {
                problems.append(
                    LintProblem(
                        path: b.path,
                        line: lineOf("match", in: b.path),
                        message:
                            "matches the same alerts as \(a.path) with equal specificity (\(a.runbook.match.count) matchers); add a matcher to the more specific one"
                    )
                )
            }
        }
        return (runbooks, problems)
    }

    /// Whether some alert could satisfy both matcher sets. Exact values must agree, an
    /// exact value must fit the other's regex; two regexes on one label are taken to
    /// overlap only when they are the same pattern.
    static func mayOverlap(_ a: [LabelMatcher], _ b: [LabelMatcher]) -> Bool {
        for x in a {
            for y in b where x.label == y.label {
                switch (x.value, y.value) {
                case (.exact(let u), .exact(let v)): if u != v { return false }
                case (.exact(let u), .regex(let p)), (.regex(let p), .exact(let u)): if !LabelMatcher.fullMatch(p, u) { return false }
                case (.regex(let p), .regex(let q)): if p != q { return false }
                }
            }
        }
        return true
    }
}
