public import Foundation
public import HandrailCore
public import Hummingbird
public import NIOCore

/// The request context every Handrail route sees: who is asking (set by the access
/// middleware), and from where.
public struct HandrailRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer of the connection.
    public var remoteAddress: SocketAddress?
    /// Who is asking: a person or an integration key; `nil` when anonymous.
    public var principal: Principal?
    /// The session cookie's value, when the person signed in through the web UI (then
    /// state-changing requests need the CSRF token).
    public var sessionToken: String?
    /// The client's address as audited and rate-limited (the proxy's `X-Forwarded-For`
    /// when configured to trust one).
    public var clientAddress: String?
    /// A PagerDuty Events API body, parsed once where its `routing_key` was looked for
    /// (`.some(nil)`: it was not JSON); `nil` when nobody parsed it yet.
    public var eventBody: JSONValue??

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.clientAddress = source.channel.remoteAddress?.ipAddress
    }

    public var user: User? { principal?.user }

    /// JSON bodies use snake_case keys and ISO-8601 dates.
    public var requestDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Whether the client is on this machine (a Unix socket, or a loopback client address:
    /// behind a trusted proxy, the client it forwards for, not the proxy).
    public var isLoopback: Bool {
        guard let remoteAddress else { return false }
        if case .unixDomainSocket = remoteAddress { return true }
        guard let address = clientAddress.flatMap({ IPAddress($0) }) else { return false }
        return AddressRange.loopback.contains { $0.contains(address) }
    }
}
