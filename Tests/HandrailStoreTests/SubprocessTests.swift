import Foundation
import Testing

@testable import HandrailStore

@Suite struct SubprocessTests {
    @Test func aProgramReadsItsInputAndOneThatHangsIsStoppedAtItsDeadline() async throws {
        let echoed = try await Subprocess.run("/bin/cat", [], input: Data("a message\n".utf8), timeout: .seconds(10))
        #expect(echoed.status == 0 && echoed.output == "a message\n")
        let start = ContinuousClock.now
        await #expect(throws: Subprocess.Failure.self) {
            _ = try await Subprocess.run("/bin/sleep", ["30"], timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - start < .seconds(5), "stopped at the deadline, not after 30 s")
        let early = try await Subprocess.run("/bin/sh", ["-c", "exit 75"], input: Data(repeating: 65, count: 200_000), timeout: .seconds(10))
        #expect(early.status == 75, "a child that exits without reading its input is an exit status, not a crash")
    }
}
