import Foundation
import HandrailCore
import Testing

@Suite struct NotificationTests {
    @Test("Webhook signatures are the Standard Webhooks specification's (its published test vector)")
    func signaturesMatchTheSpecification() throws {
        // From standard-webhooks' own test suite.
        let key = try #require(StandardWebhook.key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let signature = StandardWebhook.signature(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1_614_265_330,
            body: Data(#"{"test": 2432232314}"#.utf8),
            key: key
        )
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let other = StandardWebhook.signature(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1_614_265_331,
            body: Data(#"{"test": 2432232314}"#.utf8),
            key: key
        )
        #expect(other != signature, "the timestamp is signed")
        let secret = StandardWebhook.newSecret()
        #expect(secret.hasPrefix("whsec_") && StandardWebhook.key(secret)?.count == 24)
        #expect(StandardWebhook.key("hunter2") == nil && StandardWebhook.key("whsec_!!") == nil)
    }

    @Test("Webhooks may not reach loopback, link-local, private or unique-local addresses unless allowed")
    func outboundAddressesAreChecked() throws {
        let refused: [(String, String)] = [
            ("127.0.0.1", "loopback"), ("127.8.8.8", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local (cloud metadata)"), ("fe80::1", "link-local"),
            ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.10", "private"),
            ("fc00::1", "unique-local"), ("fd12:3456::1", "unique-local"), ("0.0.0.0", "this network"), ("::", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"), ("224.0.0.1", "multicast"),
        ]
        for (text, why) in refused {
            let address = try #require(IPAddress(text))
            #expect(OutboundAddress.refusal(address, allow: []) == why, "\(text)")
        }
        for text in ["93.184.215.14", "172.32.0.1", "2606:4700::1111", "8.8.8.8"] {
            #expect(OutboundAddress.refusal(try #require(IPAddress(text)), allow: []) == nil, "\(text)")
        }
        let allow = try AddressRange.list("127.0.0.0/8, ::1", field: "HANDRAIL_WEBHOOK_ALLOW")
        #expect(OutboundAddress.refusal(try #require(IPAddress("127.0.0.1")), allow: allow) == nil)
        #expect(OutboundAddress.refusal(try #require(IPAddress("::1")), allow: allow) == nil)
        #expect(OutboundAddress.refusal(try #require(IPAddress("10.0.0.1")), allow: allow) == "private", "the allow-list allows only what it names")
    }

    @Test("Destinations are checked, and a webhook URL is shown afterwards only as its host and a hint")
    func destinationsAreCheckedAndHinted() throws {
        let hook = try Destination(kind: .slack, address: " https://hooks.slack.com/services/T000/B000/XXXXabcd ")
        #expect(hook.address == "https://hooks.slack.com/services/T000/B000/XXXXabcd")
        #expect(hook.hint == "https://hooks.slack.com/…abcd")
        #expect(try Destination(kind: .email, address: "ana@example.com").hint == "ana@example.com")
        let bad: [(DestinationKind, String, String)] = [
            (.email, "ana", "e-mail"), (.email, "ana@localhost", "e-mail"), (.email, "ana@example.com\nBcc: x@y.z", "e-mail"),
            (.email, "-oQ/tmp@x.org", "e-mail"), (.webhook, "ftp://example.com/x", "http"), (.webhook, "https://user:pw@example.com/", "password"),
            (.slack, "not a url", "http"), (.webhook, "https://example.com/a b", "spaces"),
        ]
        for (kind, address, words) in bad {
            #expect(throws: ValidationError.self, "\(address)") { try Destination(kind: kind, address: address) }
            do { _ = try Destination(kind: kind, address: address, field: "url") } catch {
                #expect(error.field == "url")
                #expect(error.message.contains(words), "\(address): \(error.message)")
            }
        }
    }

    private func incident() -> NotificationIncident {
        NotificationIncident(
            number: 12,
            title: "Drift on <ranker> & co\r\nBcc: evil@example.com",
            severity: .critical,
            state: .triggered,
            owner: "ana",
            value: 0.31,
            threshold: "psi: warning at 0.1, critical at 0.25 (higher is worse)",
            nextStep: "1. Open the drift dashboard",
            url: "https://handrail.example/incidents/12"
        )
    }

    @Test("An e-mail's headers cannot be injected from a title, and non-ASCII subjects are encoded")
    func emailHeadersAreSafe() throws {
        let message = NotificationMessage.incident("opened", incident(), detail: [:])
        let mail = NotificationMessage.email(
            subject: message.subject,
            text: message.text,
            from: "Handrail <handrail@example.com>",
            to: "ana@example.com",
            messageID: "msg_handrail_7@handrail",
            at: Date(timeIntervalSince1970: 0)
        )
        let headers = mail.components(separatedBy: "\n\n")[0].split(separator: "\n")
        #expect(!headers.contains { $0.hasPrefix("Bcc:") }, "\(headers)")
        #expect(headers.contains("Subject: [Handrail] INC-12 opened: Drift on <ranker> & co  Bcc: evil@example.com"))
        #expect(headers.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000"))
        #expect(mail.contains("Severity: critical (value 0.31; psi: warning at 0.1, critical at 0.25 (higher is worse))"))
        #expect(mail.contains("Next step: 1. Open the drift dashboard"))
        let unicode = NotificationMessage.email(subject: "Dérive ✓", text: "x", from: "a@b.c", to: "d@e.f", messageID: "m", at: Date())
        #expect(unicode.contains("Subject: =?UTF-8?B?\(Data("Dérive ✓".utf8).base64EncodedString())?="))
    }

    @Test("Slack messages escape Slack's markup and link the incident")
    func slackMessagesAreEscaped() throws {
        let json = try NotificationMessage.incident("opened", incident(), detail: [:]).slackJSON()
        let body = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect((body["text"] as? String)?.hasPrefix("INC-12 opened: Drift on <ranker>") == true, "plain fallback text")
        let blocks = try #require(body["blocks"] as? [[String: Any]])
        let section = try #require((blocks.first?["text"] as? [String: Any])?["text"] as? String)
        #expect(section.hasPrefix("*<https://handrail.example/incidents/12|INC-12 opened: Drift on &lt;ranker&gt; &amp; co"))
    }

    @Test("Retries back off exponentially, honour Retry-After, and stop at the maximum age")
    func retriesBackOff() {
        let created = Date(timeIntervalSince1970: 1_000_000)
        let first = DeliveryBackoff.next(attempts: 1, createdAt: created, now: created, retryAfter: nil, maxAge: 86400, jitter: 1)
        #expect(first == created.addingTimeInterval(5))
        let fourth = DeliveryBackoff.next(attempts: 4, createdAt: created, now: created, retryAfter: nil, maxAge: 86400, jitter: 1)
        #expect(fourth == created.addingTimeInterval(40))
        let asked = DeliveryBackoff.next(attempts: 1, createdAt: created, now: created, retryAfter: 120, maxAge: 86400, jitter: 1)
        #expect(asked == created.addingTimeInterval(120))
        let late = created.addingTimeInterval(86400 - 10)
        #expect(DeliveryBackoff.next(attempts: 30, createdAt: created, now: late, retryAfter: nil, maxAge: 86400, jitter: 1) == nil)
        #expect(DeliveryBackoff.retryAfter("30", now: created) == 30)
        #expect(DeliveryBackoff.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: Date(timeIntervalSince1970: 1_445_412_470)) == 10)
        #expect(DeliveryBackoff.retryAfter("soon", now: created) == nil)
    }
}

@Suite struct ActionLinkTests {
    @Test("A message's action link is for one action on one incident by one person, until it expires")
    func linksAreSingleUseAndExpire() {
        let key = Data(repeating: 7, count: 32)
        let link = ActionLink(action: .acknowledge, incident: 12, user: "lena", expires: 2_000_000_000)
        let sig = link.signature(key: key)
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        #expect(link.isValid(signature: sig, key: key, now: now))
        #expect(link.path(key: key) == "/incidents/12/confirm?action=acknowledge&user=lena&expires=2000000000&sig=\(sig)")
        #expect(!sig.contains("+") && !sig.contains("/") && !sig.contains("="), "base64url, safe in a query")
        for other in [
            ActionLink(action: .resolve, incident: 12, user: "lena", expires: 2_000_000_000),
            ActionLink(action: .acknowledge, incident: 13, user: "lena", expires: 2_000_000_000),
            ActionLink(action: .acknowledge, incident: 12, user: "rhea", expires: 2_000_000_000),
            ActionLink(action: .acknowledge, incident: 12, user: "lena", expires: 2_000_000_001),
        ] {
            #expect(!other.isValid(signature: sig, key: key, now: now), "\(other)")
        }
        #expect(!link.isValid(signature: sig, key: Data(repeating: 8, count: 32), now: now), "another server's key")
        #expect(!link.isValid(signature: sig, key: key, now: Date(timeIntervalSince1970: 2_000_000_000)), "expired")
    }
}
