import Foundation
import HandrailCore
import HandrailStore
import Markdown

/// `runbooks.html`: the runbooks in force, narrowed by a search of every word.
struct RunbooksPage: PageModel {
    struct Row: PageModel {
        var id: String
        var title: String
        var version: Int
        var owners: String
        var severity: String
    }

    var title = "Runbooks"
    var navRunbooks = true
    var runbooks: [Row]
    var q: String
    var searched: Bool

    /// - Parameter query: words that must all appear in a runbook's id, title, owners or text.
    init(_ versions: [RunbookVersion], query: String) {
        let words = query.lowercased().split(separator: " ").map(String.init)
        runbooks = versions.filter { v in
            let text = "\(v.id) \(v.runbook.title) \(v.runbook.owners ?? "") \(v.runbook.body)".lowercased()
            return words.allSatisfy { text.contains($0) }
        }.map {
            Row(id: $0.id, title: $0.runbook.title, version: $0.version, owners: $0.runbook.owners ?? "-", severity: $0.runbook.severity.rawValue)
        }
        q = query
        searched = !query.isEmpty
    }
}

/// `runbook.html`: one version of a runbook, with its history to compare.
struct RunbookPage: PageModel {
    struct VersionRow: PageModel {
        var version: Int
        var synced: String
        var by: String
        var shown: Bool
        var fromSelected: Bool
        var toSelected: Bool
    }

    var title: String
    var navRunbooks = true
    var id: String
    var version: Int
    var currentVersion: Int
    var retired: Bool
    var owners: String
    var severity: String
    var html: String
    var versions: [VersionRow]
    var hasHistory: Bool

    init(_ v: RunbookVersion, versions: [RunbookVersion]) {
        title = v.runbook.title
        id = v.id
        version = v.version
        currentVersion = v.currentVersion
        retired = v.retiredAt != nil
        owners = v.runbook.owners ?? "-"
        severity = v.runbook.severity.rawValue
        html = Markdown.html(v.runbook.body)
        self.versions = versions.reversed().map { x in
            VersionRow(
                version: x.version,
                synced: WebController.time(x.syncedAt),
                by: x.syncedBy,
                shown: x.version == v.version,
                fromSelected: x.version == max(1, v.currentVersion - 1),
                toSelected: x.version == v.currentVersion
            )
        }
        hasHistory = versions.count > 1
    }
}

/// `runbook-diff.html`: a unified diff between two versions, line by line.
struct RunbookDiffPage: PageModel {
    struct Line: PageModel {
        var text: String
        /// `add`, `del` or empty.
        var kind: String
    }

    var title: String
    var navRunbooks = true
    var id: String
    var from: Int
    var to: Int
    var lines: [Line]
    var same: Bool

    init(id: String, from: Int, to: Int, diff: String) {
        title = "\(id): v\(from) → v\(to)"
        self.id = id
        self.from = from
        self.to = to
        lines = diff.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let kind = line.hasPrefix("+") && !line.hasPrefix("+++") ? "add" : line.hasPrefix("-") && !line.hasPrefix("---") ? "del" : ""
            return Line(text: String(line), kind: kind)
        }
        same = diff.isEmpty
    }
}
