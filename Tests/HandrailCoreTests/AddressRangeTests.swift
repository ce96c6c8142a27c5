import HandrailCore
import Testing

@Suite struct AddressRangeTests {
    @Test("CIDR ranges of both families contain exactly their addresses")
    func rangesContainTheirAddresses() throws {
        let table: [(range: String, inside: [String], outside: [String])] = [
            ("10.0.0.0/8", ["10.0.0.1", "10.255.255.255", "::ffff:10.1.2.3"], ["11.0.0.0", "9.255.255.255", "::1"]),
            ("172.16.0.0/12", ["172.16.0.1", "172.31.255.254"], ["172.32.0.1", "172.15.255.255"]),
            ("192.168.0.0/16", ["192.168.1.1"], ["192.169.0.1"]),
            ("169.254.0.0/16", ["169.254.169.254"], ["169.253.1.1"]),
            ("127.0.0.0/8", ["127.0.0.1", "127.9.9.9"], ["128.0.0.1"]),
            ("::1/128", ["::1", "[::1]", "0:0:0:0:0:0:0:1"], ["::2", "127.0.0.1"]),
            ("fe80::/10", ["fe80::1", "fe80::1%eth0", "febf::1"], ["fec0::1"]),
            ("fc00::/7", ["fc00::1", "fd12:3456::1"], ["fe00::1", "2001:db8::1"]),
            ("203.0.113.7", ["203.0.113.7"], ["203.0.113.8"]),
            ("0.0.0.0/0", ["1.2.3.4", "255.255.255.255"], ["2001:db8::1"]),
        ]
        for row in table {
            let range = try #require(AddressRange(row.range), "\(row.range)")
            for address in row.inside { #expect(range.contains(try #require(IPAddress(address))), "\(address) in \(row.range)") }
            for address in row.outside { #expect(!range.contains(try #require(IPAddress(address))), "\(address) not in \(row.range)") }
        }
    }

    @Test("malformed ranges and addresses are refused, naming the entry")
    func malformedRangesAreRefused() throws {
        for bad in [
            "10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "10.0.0.256", "evil.example", "10.0.0.0/8/8", "10.0.0.0/-1", "1.2.3.4/99999999999999999999",
        ] {
            #expect(AddressRange(bad) == nil, "\(bad)")
        }
        #expect(
            throws: ValidationError(
                field: "HANDRAIL_TRUSTED_PROXIES",
                message: "must be addresses or CIDR ranges such as 10.0.0.0/8 or fd00::/8, not \"nope\""
            )
        ) {
            try AddressRange.list("10.0.0.0/8, nope", field: "HANDRAIL_TRUSTED_PROXIES")
        }
        #expect(try AddressRange.list("10.0.0.0/8, ::1  192.0.2.1", field: "x").count == 3)
    }

    @Test("X-Forwarded-For is read from the right, and only behind trusted proxies")
    func forwardedForTrustsOnlyConfiguredProxies() throws {
        let proxies = try AddressRange.list("10.0.0.0/8", field: "x")
        // The client wrote the leftmost entry itself: it is never believed past our proxy.
        #expect(ForwardedFor.client(peer: "10.0.0.2", header: ["6.6.6.6, 198.51.100.9"], trusted: proxies) == "198.51.100.9")
        // Two trusted hops: the first untrusted address from the right.
        #expect(ForwardedFor.client(peer: "10.0.0.2", header: ["6.6.6.6, 198.51.100.9, 10.0.0.5"], trusted: proxies) == "198.51.100.9")
        // Several header lines read as one list.
        #expect(ForwardedFor.client(peer: "10.0.0.2", header: ["6.6.6.6", "198.51.100.9"], trusted: proxies) == "198.51.100.9")
        // A peer that is not a trusted proxy: its header is ignored.
        #expect(ForwardedFor.client(peer: "198.51.100.1", header: ["127.0.0.1"], trusted: proxies) == "198.51.100.1")
        // Garbage from the right stops the walk at the last trusted hop.
        #expect(ForwardedFor.client(peer: "10.0.0.2", header: ["6.6.6.6, not-an-address"], trusted: proxies) == "10.0.0.2")
        #expect(ForwardedFor.client(peer: "10.0.0.2", header: [], trusted: proxies) == "10.0.0.2")
        #expect(ForwardedFor.client(peer: "10.0.0.2", header: ["::1"], trusted: AddressRange.loopback) == "10.0.0.2")
    }
}
