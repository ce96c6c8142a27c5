import Foundation
public import HandrailCore

#if canImport(Glibc)
import Glibc
#endif

/// Checks where an outgoing request would go, at creation and again at send time: the URL's
/// host is resolved and every address it resolves to must be allowed (`OutboundAddress`).
/// For plain http the request then goes to the address that was checked (the URL's host
/// travels in the Host header), so a name cannot resolve to another address in between.
struct OutboundGuard: Sendable {
    let allow: [AddressRange]

    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    /// Where to send: the URL to connect to and the Host header to send with it (nil: the URL's own).
    struct Target: Sendable {
        let url: String
        let hostHeader: String?
    }

    func check(_ address: String) async throws(Refused) -> Target {
        guard let url = URLComponents(string: address), let host = url.host, !host.isEmpty else {
            throw Refused(description: "\(address.prefix(200).debugDescription) is not a URL")
        }
        let addresses: [IPAddress]
        if let literal = IPAddress(host) {
            addresses = [literal]
        } else {
            addresses = await Self.resolve(host)
            guard !addresses.isEmpty else { throw Refused(description: "\(host) does not resolve to any address") }
        }
        for a in addresses {
            if let why = OutboundAddress.refusal(a, allow: allow) {
                throw Refused(description: "\(host) resolves to \(a), a \(why) address; an administrator can allow it with HANDRAIL_WEBHOOK_ALLOW")
            }
        }
        guard url.scheme?.lowercased() == "http", IPAddress(host) == nil, let pinned = addresses.first else {
            return Target(url: address, hostHeader: nil)
        }
        let port = url.port.map { ":\($0)" } ?? ""
        let rest = url.percentEncodedPath + (url.percentEncodedQuery.map { "?" + $0 } ?? "")
        let literal = pinned.isIPv4 ? pinned.description : "[\(pinned.description)]"
        return Target(url: "http://\(literal)\(port)\(rest)", hostHeader: host + port)
    }

    /// Every address `host` resolves to (getaddrinfo, on a background thread).
    static func resolve(_ host: String) async -> [IPAddress] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(host, nil, &hints, &result) == 0 else {
                    continuation.resume(returning: [])
                    return
                }
                defer { freeaddrinfo(result) }
                var out: [IPAddress] = []
                var node = result
                while let info = node {
                    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                    if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0,
                        let address = IPAddress(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                    {
                        out.append(address)
                    }
                    node = info.pointee.ai_next
                }
                continuation.resume(returning: out)
            }
        }
    }
}

/// The same check for the command line (`handrail rotations channels --add-…`).
public enum OutboundCheck {
    /// Why `address` may not be reached from here; nil when it may.
    public static func refusal(_ address: String, allow: [AddressRange]) async -> String? {
        do {
            _ = try await OutboundGuard(allow: allow).check(address)
            return nil
        } catch {
            return error.description
        }
    }
}
