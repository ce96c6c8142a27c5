public import Foundation

/// What a message says about an incident, read when it is first sent: short and useful on a
/// phone (ref and title, severity with the value against the runbook's threshold, owner, the
/// runbook's first open step, the link).
public struct NotificationIncident: Sendable, Equatable, Codable {
    public var number: Int64
    public var ref: String
    public var title: String
    public var severity: Severity
    public var state: IncidentState
    public var owner: String?
    public var value: Double?
    /// The runbook's rule that decided the severity (`critical at ≥ 0.25`), if one did.
    public var threshold: String?
    public var nextStep: String?
    public var url: String?

    public init(
        number: Int64,
        title: String,
        severity: Severity,
        state: IncidentState,
        owner: String?,
        value: Double?,
        threshold: String?,
        nextStep: String?,
        url: String?
    ) {
        self.number = number
        self.ref = IncidentRef.display(number)
        self.title = title
        self.severity = severity
        self.state = state
        self.owner = owner
        self.value = value
        self.threshold = threshold
        self.nextStep = nextStep
        self.url = url
    }
}

/// One message, in each form a destination takes: plain text (e-mail), Slack's incoming
/// webhook JSON (`text` and `blocks`), and the versioned generic webhook payload
/// (`openapi.yaml`, `webhooks:`).
public struct NotificationMessage: Sendable, Equatable {
    /// `incident.opened`, `incident.escalated`, `handoff.generated`, `test`, …
    public var type: String
    /// The headline: `INC-12 opened: Feature drift on fraud-scorer`.
    public var headline: String
    /// The lines under the headline.
    public var lines: [String]
    public var incident: NotificationIncident?
    /// What else the event carries (who acknowledged, the escalation step, a code, a link).
    public var detail: [String: String]
    public var url: String?

    public init(type: String, headline: String, lines: [String], incident: NotificationIncident?, detail: [String: String], url: String?) {
        self.type = type
        self.headline = headline
        self.lines = lines
        self.incident = incident
        self.detail = detail
        self.url = url
    }

    /// The message of an incident's event. `event` is the outbox's (`opened`, `owner_changed`,
    /// `escalation`, `reminder`, …); `detail` what the event row says (`actor`, `to`, …).
    public static func incident(_ event: String, _ i: NotificationIncident, detail: [String: String]) -> NotificationMessage {
        let what: String
        switch event {
        case "opened": what = "opened"
        case "reopened": what = "reopened"
        case "acknowledged": what = "acknowledged" + (detail["actor"].map { " by \($0)" } ?? "")
        case "mitigated": what = "mitigated" + (detail["actor"].map { " by \($0)" } ?? "")
        case "resolved": what = "resolved" + (detail["actor"].map { " by \($0)" } ?? "")
        case "owner_changed": what = "owner now \(detail["to"] ?? "nobody")" + (detail["actor"].map { " (by \($0))" } ?? "")
        case "decision_recorded": what = "decision: \(detail["kind"] ?? "recorded")" + (detail["actor"].map { " by \($0)" } ?? "")
        case "escalation": what = "not acknowledged: escalated" + (detail["step"].map { " (step \($0))" } ?? "")
        case "reminder": what = "still open (reminder)"
        default: what = event
        }
        var lines = ["Severity: \(i.severity.rawValue)" + Self.rule(i), "State: \(i.state.rawValue)", "Owner: \(i.owner ?? "nobody")"]
        if let step = i.nextStep { lines.append("Next step: \(step)") }
        if let url = i.url { lines.append(url) }
        return NotificationMessage(
            type: "incident.\(event)",
            headline: "\(i.ref) \(what): \(i.title)",
            lines: lines,
            incident: i,
            detail: detail,
            url: i.url
        )
    }

    static func rule(_ i: NotificationIncident) -> String {
        switch (i.value, i.threshold) {
        case (let value?, let threshold?): return " (value \(NumberText.plain(value)); \(threshold))"
        case (let value?, nil): return " (value \(NumberText.plain(value)))"
        default: return ""
        }
    }

    /// The e-mail subject: the headline, on one line.
    public var subject: String { "[Handrail] " + Self.oneLine(headline) }

    /// The plain-text body.
    public var text: String { ([headline, ""] + lines).joined(separator: "\n") + "\n" }

    /// Slack's incoming-webhook JSON: `text` (the notification's fallback) and `blocks`.
    /// Slack reads `&`, `<` and `>` as markup: they are escaped.
    public func slackJSON() throws -> Data {
        struct Text: Encodable {
            let type: String
            let text: String
        }
        struct Block: Encodable {
            let type: String
            var text: Text?
            var elements: [Text]?
        }
        struct Body: Encodable {
            let text: String
            let blocks: [Block]
        }
        let esc = Self.slackEscaped
        var headline = "*\(esc(headline))*"
        if let url { headline = "*<\(esc(url))|\(esc(self.headline))>*" }
        let body = Body(
            text: self.headline,
            blocks: [
                Block(type: "section", text: Text(type: "mrkdwn", text: headline)),
                Block(type: "context", elements: [Text(type: "mrkdwn", text: lines.filter { $0 != url }.map(esc).joined(separator: "\n"))]),
            ]
        )
        return try Self.encoder.encode(body)
    }

    static func slackEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The generic webhook's payload, version 1: `{"type", "version", "id", "timestamp",
    /// "data": {"headline", "lines", "incident"?, "detail", "url"?}}`.
    public func webhookJSON(id: String, at: Date) throws -> Data {
        struct Data1: Encodable {
            let headline: String
            let lines: [String]
            let incident: NotificationIncident?
            let detail: [String: String]
            let url: String?
        }
        struct Body: Encodable {
            let type: String
            let version: Int
            let id: String
            let timestamp: String
            let data: Data1
        }
        let body = Body(
            type: type,
            version: 1,
            id: id,
            timestamp: RFC3339.format(at),
            data: Data1(headline: headline, lines: lines, incident: incident, detail: detail, url: url)
        )
        return try Self.encoder.encode(body)
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// The whole e-mail as `sendmail -t -i` reads it. Header values come from titles and
    /// labels: line breaks are removed (no header can be injected) and non-ASCII text is
    /// encoded (RFC 2047); the body is UTF-8.
    public static func email(subject: String, text: String, from: String, to: String, messageID: String, at: Date) -> String {
        let headers = [
            "From: \(oneLine(from))",
            "To: \(oneLine(to))",
            "Subject: \(encodedWord(subject))",
            "Date: \(rfc5322(at))",
            "Message-ID: <\(oneLine(messageID))>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "Auto-Submitted: auto-generated",
        ]
        return headers.joined(separator: "\n") + "\n\n" + text
    }

    /// `s` with every line break and control character replaced by a space.
    static func oneLine(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    /// ASCII as it is; anything else as `=?UTF-8?B?…?=` words of at most 45 bytes each.
    static func encodedWord(_ s: String) -> String {
        let line = oneLine(s)
        if line.unicodeScalars.allSatisfy({ $0.isASCII }) { return line }
        var words: [String] = []
        var chunk = ""
        for c in line {
            if chunk.utf8.count + c.utf8.count > 45 {
                words.append(chunk)
                chunk = ""
            }
            chunk.append(c)
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0.utf8).base64EncodedString())?=" }.joined(separator: "\n ")
    }

    static func rfc5322(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return f.string(from: date)
    }
}
