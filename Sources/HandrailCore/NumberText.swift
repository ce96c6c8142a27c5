/// Numbers as people read them. A value read against a runbook threshold is shown with the
/// threshold's precision (0.3834826453614822 against 0.25 reads 0.38); other values with at
/// most four decimals; whole numbers without any.
public enum NumberText {
    /// "1 alert", "3 alerts": a count with its noun (`plural` when adding "s" is wrong).
    public static func count(_ n: Int, _ noun: String, plural: String? = nil) -> String {
        "\(n) \(n == 1 ? noun : plural ?? noun + "s")"
    }

    public static func plain(_ v: Double) -> String {
        guard v.isFinite else { return String(v) }
        if v.rounded() == v && abs(v) < 1e15 { return String(Int64(v)) }
        return fixed(v, decimals: 4)
    }

    /// `v` with as many decimals as the threshold's limits are written with, and more where
    /// rounding would move it across a limit (0.05 against 0.1 reads 0.05, not 0.1; 0.2496
    /// against 0.25 reads 0.2496) or hide it (0.004 against 0.25 reads 0.004, not 0).
    public static func value(_ v: Double, against threshold: Threshold?) -> String {
        guard let threshold, v.isFinite else { return plain(v) }
        var decimals = [threshold.warning, threshold.critical].compactMap { $0 }.map { self.decimals(of: $0) }.max() ?? 4
        while decimals < 6 {
            let shown = Double(fixed(v, decimals: decimals)) ?? v
            if threshold.severity(for: shown) == threshold.severity(for: v) && (shown != 0 || v == 0) { break }
            decimals += 1
        }
        return fixed(v, decimals: decimals)
    }

    /// How many decimals `v` is written with (0.25 → 2, 3 → 0), at most 6.
    static func decimals(of v: Double) -> Int {
        let text = plain(v)
        guard let dot = text.firstIndex(of: ".") else { return 0 }
        return min(6, text.distance(from: dot, to: text.endIndex) - 1)
    }

    /// `v` rounded to `decimals`, without trailing zeros.
    static func fixed(_ v: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (v * scale).rounded() / scale
        if rounded.rounded() == rounded && abs(rounded) < 1e15 { return String(Int64(rounded)) }
        var text = String(rounded)
        // String(Double) may write 1e-05; below 1e-4 the plain rounding is what was asked.
        if text.contains("e") { return String(v) }
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}
