import Foundation
import HandrailCore
import HandrailStore
import Synchronization

/// The current runbook versions that alerts are matched against, cached so ingestion does
/// not read every runbook per delivery. A sync through this server refreshes it at once;
/// a sync through another replica (or the CLI) is seen within `maxAge`.
final class RunbookCatalog: Sendable {
    private let store: RunbookStore
    private let maxAge: Duration
    private let state = Mutex<(candidates: [RunbookCandidate], loadedAt: ContinuousClock.Instant?)>(([], nil))

    init(store: RunbookStore, maxAge: Duration = .seconds(5)) {
        self.store = store
        self.maxAge = maxAge
    }

    func candidates() async throws -> [RunbookCandidate] {
        let (cached, loadedAt) = state.withLock { ($0.candidates, $0.loadedAt) }
        if let loadedAt, loadedAt.duration(to: .now) < maxAge { return cached }
        let fresh = try await store.list().map { RunbookCandidate(runbook: $0.runbook, version: $0.version) }
        state.withLock { $0 = (fresh, .now) }
        return fresh
    }

    func invalidate() {
        state.withLock { $0.loadedAt = nil }
    }
}
