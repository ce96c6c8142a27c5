import AsyncHTTPClient
import Foundation
import HandrailCore
import HandrailStore
import NIOCore
import NIOHTTP1

/// Carries one message to one destination and says how it went: webhooks with
/// async-http-client (no redirects followed, a timeout, the address checked at send time),
/// e-mail through the machine's mail transfer agent (`sendmail -t -i`).
struct Courier: Sendable {
    let http: HTTPClient
    let outbound: OutboundGuard
    /// The sendmail program and its arguments (`/usr/sbin/sendmail -t -i`).
    let sendmail: [String]
    let timeout: Duration

    /// POSTs `body`; 2xx is delivered; 408, 429, 5xx, timeouts and refused connections are
    /// passing (retry, honouring `Retry-After`); other answers and refused addresses fail at once.
    func post(_ address: String, body: Data, headers: [(String, String)]) async -> (DeliveryAttempt, retryAfter: Double?) {
        let start = ContinuousClock.now
        func ms() -> Int { Int((ContinuousClock.now - start) / .milliseconds(1)) }
        let target: OutboundGuard.Target
        do {
            target = try await outbound.check(address)
        } catch {
            return (
                DeliveryAttempt(outcome: .failed, status: nil, reply: nil, error: "refused: \(error.description)", latencyMS: ms(), retryAt: nil), nil
            )
        }
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Handrail")
        if let host = target.hostHeader { request.headers.replaceOrAdd(name: "Host", value: host) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout / .nanoseconds(1))))
            var reply = ""
            // Only the start of the answer is read and kept.
            for try await chunk in response.body {
                reply += String(buffer: chunk)
                if reply.utf8.count >= 200 { break }
            }
            let code = Int(response.status.code)
            let retryAfter = DeliveryBackoff.retryAfter(response.headers.first(name: "Retry-After"), now: Date())
            let outcome: DeliveryAttempt.Outcome =
                (200..<300).contains(code) ? .delivered : (code == 408 || code == 429 || code >= 500) ? .retry : .failed
            let error = outcome == .delivered ? nil : "HTTP \(code)"
            return (
                DeliveryAttempt(outcome: outcome, status: code, reply: String(reply.prefix(200)), error: error, latencyMS: ms(), retryAt: nil),
                retryAfter
            )
        } catch {
            return (DeliveryAttempt(outcome: .retry, status: nil, reply: nil, error: Self.describe(error), latencyMS: ms(), retryAt: nil), nil)
        }
    }

    /// Hands `message` to sendmail. Exit 0 is delivered (to the MTA, which queues and
    /// retries on its own); EX_TEMPFAIL (75) and EX_UNAVAILABLE (69) are passing; other
    /// statuses fail.
    func mail(_ message: String) async -> DeliveryAttempt {
        let start = ContinuousClock.now
        func ms() -> Int { Int((ContinuousClock.now - start) / .milliseconds(1)) }
        guard let program = sendmail.first else {
            return DeliveryAttempt(outcome: .failed, status: nil, reply: nil, error: "no sendmail configured", latencyMS: 0, retryAt: nil)
        }
        do {
            let (status, output) = try await Subprocess.run(program, Array(sendmail.dropFirst()), input: Data(message.utf8), timeout: timeout)
            let reply = output.isEmpty ? nil : String(output.prefix(200))
            switch status {
            case 0: return DeliveryAttempt(outcome: .delivered, status: 0, reply: reply, error: nil, latencyMS: ms(), retryAt: nil)
            case 69, 75:
                return DeliveryAttempt(
                    outcome: .retry,
                    status: Int(status),
                    reply: reply,
                    error: "sendmail exited \(status)",
                    latencyMS: ms(),
                    retryAt: nil
                )
            default:
                return DeliveryAttempt(
                    outcome: .failed,
                    status: Int(status),
                    reply: reply,
                    error: "sendmail exited \(status)",
                    latencyMS: ms(),
                    retryAt: nil
                )
            }
        } catch {
            return DeliveryAttempt(outcome: .retry, status: nil, reply: nil, error: "\(error)", latencyMS: ms(), retryAt: nil)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            default: return "\(e)"
            }
        }
        return String(describing: error).prefix(300).description
    }
}
