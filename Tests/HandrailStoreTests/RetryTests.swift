import HandrailStore
import Postgres
import Synchronization
import Testing

@Suite struct RetryTests {
    @Test func onlyPassingFailuresAreTriedAgain() {
        let again: [PostgresError] = [
            PostgresError(kind: .server, message: "dup", sqlState: "23505"),
            PostgresError(kind: .server, message: "deadlock", sqlState: "40P01"),
            PostgresError(kind: .server, message: "serialization", sqlState: "40001"),
            PostgresError(kind: .server, message: "shutting down", sqlState: "57P01"),
            PostgresError(kind: .connectionLost, message: "gone"),
            PostgresError(kind: .connectionFailed, message: "refused"),
        ]
        let never: [PostgresError] = [
            PostgresError(kind: .timedOut, message: "frozen"),
            PostgresError(kind: .poolTimeout, message: "busy"),
            PostgresError(kind: .server, message: "statement timeout", sqlState: "57014"),
            PostgresError(kind: .server, message: "foreign key", sqlState: "23503"),
            PostgresError(kind: .invalidParameter, message: "NUL"),
        ]
        for error in again { #expect(Retry.reason(error) != nil, "\(String(reflecting: error))") }
        for error in never { #expect(Retry.reason(error) == nil, "\(String(reflecting: error))") }
    }

    @Test func triesAreBoundedWhateverTheFailure() async {
        let tries = Mutex(0)
        await #expect(throws: PostgresError.self) {
            try await Retry.run {
                tries.withLock { $0 += 1 }
                throw PostgresError(kind: .server, message: "deadlock", sqlState: "40P01")
            }
        }
        // Tried again, but never more than the policy allows (fewer when the one-second budget runs out first).
        #expect((2...Retry.attempts).contains(tries.withLock { $0 }))
        tries.withLock { $0 = 0 }
        await #expect(throws: PostgresError.self) {
            try await Retry.run {
                tries.withLock { $0 += 1 }
                throw PostgresError(kind: .timedOut, message: "frozen")
            }
        }
        #expect(tries.withLock { $0 } == 1)
    }
}
