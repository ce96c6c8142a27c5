#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as its 16 bytes (IPv4 as `::ffff:a.b.c.d`, so one comparison
/// serves both families).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let isIPv4: Bool

    /// Parses `192.0.2.7`, `2001:db8::1` or `[2001:db8::1]`; a zone (`fe80::1%eth0`) is dropped.
    public init?(_ text: some StringProtocol) {
        var t = String(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
        if let percent = t.firstIndex(of: "%") { t = String(t[..<percent]) }
        guard !t.isEmpty, t.utf8.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, t, &v4) == 1 {
            let raw = withUnsafeBytes(of: v4) { Array($0) }
            bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + raw
            isIPv4 = true
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, t, &v6) == 1 else { return nil }
        let raw = withUnsafeBytes(of: v6) { Array($0) }
        bytes = raw
        isIPv4 = raw[0..<10].allSatisfy { $0 == 0 } && raw[10] == 0xFF && raw[11] == 0xFF
    }

    public var description: String {
        if isIPv4 { return bytes[12...].map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16)) }
        return groups.joined(separator: ":")
    }
}

/// A CIDR block (`10.0.0.0/8`, `fc00::/7`, or one address): proxies to trust, destinations to
/// allow or refuse.
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    public let network: IPAddress
    /// Prefix length over the 16-byte form (an IPv4 `/8` is stored as 96 + 8).
    public let prefix: Int

    /// Parses `a.b.c.d/n`, `v6/n`, or a bare address (a range of one).
    public init?(_ text: some StringProtocol) {
        let parts = text.trimmingSpaces.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = IPAddress(parts[0]) else { return nil }
        let width = address.isIPv4 ? 32 : 128
        var length = width
        if parts.count == 2 {
            guard (1...3).contains(parts[1].count), parts[1].allSatisfy(\.isASCIIDigit), let n = Int(parts[1]), n <= width else { return nil }
            length = n
        }
        network = address
        prefix = length + (address.isIPv4 ? 96 : 0)
    }

    public func contains(_ address: IPAddress) -> Bool {
        var remaining = prefix
        for i in 0..<16 where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if address.bytes[i] & mask != network.bytes[i] & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(network)/\(network.isIPv4 ? prefix - 96 : prefix)" }

    /// Parses a comma- or space-separated list of ranges.
    /// - Throws: `ValidationError` naming the first entry that is not one.
    public static func list(_ text: String, field: String) throws(ValidationError) -> [AddressRange] {
        var ranges: [AddressRange] = []
        for item in text.split(whereSeparator: { $0 == "," || $0 == " " }) where !item.isEmpty {
            guard let range = AddressRange(item) else {
                throw ValidationError(
                    field: field,
                    message: "must be addresses or CIDR ranges such as 10.0.0.0/8 or fd00::/8, not \(String(item).debugDescription)"
                )
            }
            ranges.append(range)
        }
        return ranges
    }

    /// Loopback: 127.0.0.0/8 and ::1.
    public static let loopback = [AddressRange("127.0.0.0/8")!, AddressRange("::1/128")!]
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        let s = self[...]
        guard let first = s.firstIndex(where: { $0 != " " && $0 != "\t" }), let last = s.lastIndex(where: { $0 != " " && $0 != "\t" }) else {
            return ""
        }
        return Substring(s[first...last])
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// The client behind a chain of proxies: `X-Forwarded-For` read from the right, each hop
/// believed only while the one who wrote it is a trusted proxy. The leftmost entries are the
/// client's own words and are never believed past an untrusted hop.
public enum ForwardedFor {
    /// - Parameters:
    ///   - peer: the connection's peer address.
    ///   - header: every `X-Forwarded-For` value, in order.
    ///   - trusted: the proxies whose `X-Forwarded-For` entries are believed.
    /// - Returns: the first address from the right that no trusted proxy stands behind; the
    ///   peer when the peer is not trusted (the header is then ignored).
    public static func client(peer: String?, header: [String], trusted: [AddressRange]) -> String? {
        guard let peer, let peerAddress = IPAddress(peer), trusted.contains(where: { $0.contains(peerAddress) }) else { return peer }
        let hops = header.flatMap { $0.split(separator: ",") }.map { String($0.trimmingSpaces) }
        var client = peer
        for hop in hops.reversed() {
            guard let address = IPAddress(hop) else { return client }
            client = address.description
            if !trusted.contains(where: { $0.contains(address) }) { return client }
        }
        return client
    }
}
