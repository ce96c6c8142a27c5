public import Logging
public import Postgres

/// The one retry policy for writes that may meet a passing failure: at most `attempts`
/// tries within `budget`, each reason named. Nothing else in Handrail retries.
public enum Retry {
    /// Tries in all (the first included).
    public static let attempts = 4
    /// No new try starts once this long has passed since the first: a sender that waits on
    /// the answer hears 503 soon rather than late.
    public static let budget = Duration.seconds(1)

    /// Why `error` may pass if tried again, or nil when it will not.
    public static func reason(_ error: PostgresError) -> String? {
        if error.isUniqueViolation { return "a concurrent writer inserted the same row first" }
        switch error.sqlState {
        case "40P01": return "PostgreSQL broke a deadlock"
        case "40001": return "a serialization failure"
        default: break
        }
        // A timeout is not retried: the database is frozen, cut off or saturated, and asking
        // again would only keep the sender waiting.
        if error.kind == .timedOut || error.kind == .poolTimeout || error.sqlState == "57014" { return nil }
        return error.isTransient ? "the database is restarting or unreachable" : nil
    }

    /// Runs `body`, trying again (after 5, 50 and 200 ms) while `reason` names the failure
    /// and the budget lasts.
    public static func run<T>(logger: Logger? = nil, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        let pauses: [Duration] = [.milliseconds(5), .milliseconds(50), .milliseconds(200)]
        for pause in pauses.prefix(attempts - 1) {
            do {
                return try await body()
            } catch let error as PostgresError {
                guard let reason = reason(error), start.duration(to: .now) < budget else { throw error }
                logger?.notice("retrying a database write", metadata: ["reason": "\(reason)", "error": "\(error.oneLineMessage)"])
                try await Task.sleep(for: pause)
            }
        }
        return try await body()
    }
}
