/// A line diff between two texts, in unified format: how a runbook changed between versions.
public enum LineDiff {
    /// `diff -u`-style output: a `---`/`+++` header, then hunks with `context` lines around
    /// each change. Empty when the texts are equal.
    public static func unified(_ old: String, _ new: String, oldName: String, newName: String, context: Int = 3) -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let script = edits(a, b)
        guard script.contains(where: { if case .same = $0 { false } else { true } }) else { return "" }
        var out = "--- \(oldName)\n+++ \(newName)\n"
        // Group edits into hunks separated by more than 2 × context unchanged lines.
        var i = 0
        while i < script.count {
            guard let firstChange = script[i...].firstIndex(where: { if case .same = $0 { false } else { true } }) else { break }
            let start = max(i, firstChange - context)
            var end = firstChange
            var lastChange = firstChange
            while end < script.count {
                if case .same = script[end] {
                    if end - lastChange > 2 * context { break }
                } else {
                    lastChange = end
                }
                end += 1
            }
            let stop = min(script.count, lastChange + context + 1)
            let hunk = script[start..<stop]
            let (oldStart, newStart) = position(script, start)
            let oldCount = hunk.filter { if case .insert = $0 { false } else { true } }.count
            let newCount = hunk.filter { if case .delete = $0 { false } else { true } }.count
            out += "@@ -\(oldStart + (oldCount > 0 ? 1 : 0)),\(oldCount) +\(newStart + (newCount > 0 ? 1 : 0)),\(newCount) @@\n"
            for edit in hunk {
                switch edit {
                case .same(let line): out += " \(line)\n"
                case .delete(let line): out += "-\(line)\n"
                case .insert(let line): out += "+\(line)\n"
                }
            }
            i = stop
        }
        return out
    }

    enum Edit: Equatable {
        case same(String)
        case delete(String)
        case insert(String)
    }

    /// Lines of `a` and `b` consumed before edit `index`.
    static func position(_ script: [Edit], _ index: Int) -> (Int, Int) {
        var a = 0
        var b = 0
        for edit in script[..<index] {
            switch edit {
            case .same:
                a += 1
                b += 1
            case .delete: a += 1
            case .insert: b += 1
            }
        }
        return (a, b)
    }

    /// The shortest edit script by longest common subsequence (runbooks are small).
    static func edits(_ a: [String], _ b: [String]) -> [Edit] {
        let n = a.count
        let m = b.count
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var script: [Edit] = []
        var i = 0
        var j = 0
        while i < n || j < m {
            if i < n, j < m, a[i] == b[j] {
                script.append(.same(a[i]))
                i += 1
                j += 1
            } else if i < n, j == m || lcs[i + 1][j] >= lcs[i][j + 1] {
                // Deletions before insertions, as diff -u writes them.
                script.append(.delete(a[i]))
                i += 1
            } else {
                script.append(.insert(b[j]))
                j += 1
            }
        }
        return script
    }
}
