import HandrailCore
import Synchronization

/// The integration behind each key hash, as last read from the database, so a monitor's
/// delivery does not spend a round trip of its own on the key.
///
/// A key's name, kind and signature rule never change; only revocation does, and the cache
/// is not trusted with that: every statement that stores a delivery checks, in the same
/// statement, that the key is still live (`IngestStore`), and answers 401 when it is not. So
/// a key revoked on another replica, or from the CLI, stores nothing from its next delivery
/// on, here as there. Only routes that store through `IngestStore` may use the cache
/// (`Routes.on(…, cachedKey: true)`).
///
/// An entry is read again after `maxAge`; that read also keeps the key's `last_used_at`
/// current (to within a couple of minutes).
final class IntegrationKeyCache: Sendable {
    private let maxAge: Duration
    private let maxEntries: Int
    private let entries = Mutex<[String: (integration: Integration, readAt: ContinuousClock.Instant)]>([:])

    init(maxAge: Duration = .seconds(60), maxEntries: Int = 10_000) {
        self.maxAge = maxAge
        self.maxEntries = maxEntries
    }

    /// The integration for a key hash, when it was read less than `maxAge` ago.
    func integration(keyHash: String) -> Integration? {
        entries.withLock { entries in
            guard let entry = entries[keyHash] else { return nil }
            guard entry.readAt.duration(to: .now) < maxAge else {
                entries[keyHash] = nil
                return nil
            }
            return entry.integration
        }
    }

    func remember(_ integration: Integration, keyHash: String) {
        entries.withLock { entries in
            // Keys are few; a flood of distinct live keys only costs a re-read.
            if entries.count >= maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[keyHash] = (integration, .now)
        }
    }

    /// Forgets a key (revoked here, or found revoked by a statement).
    func forget(integrationID: Int) {
        entries.withLock { entries in entries = entries.filter { $0.value.integration.id != integrationID } }
    }
}
