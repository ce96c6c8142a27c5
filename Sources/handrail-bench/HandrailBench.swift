import ArgumentParser
import Foundation
import Logging

/// `handrail-bench`: the helpers of `script/bench`, outside the product. Not installed.
@main
struct HandrailBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handrail-bench",
        abstract: "The measuring helpers of script/bench (not part of Handrail).",
        subcommands: [BenchCeiling.self, BenchParse.self]
    )
}

/// Writes one line to standard error and fails the command.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("handrail-bench: \(message)\n".utf8))
    return ExitCode.failure
}
