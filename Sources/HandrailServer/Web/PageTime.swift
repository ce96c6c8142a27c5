import Foundation
import HandrailCore

/// The zone a page shows times in, for the person reading it: their own setting, else their
/// browser's (the `tz` cookie `handrail.js` keeps), else UTC. Set once per request
/// (`AccessMiddleware`) as a task-local value, so every page model formats with
/// `WebController.time` in the reader's zone, offset written out.
struct PageTime: Sendable {
    enum Source: String, Sendable {
        case setting = "your setting"
        case browser = "your browser's"
        case none = "the default"
    }

    let zone: String
    let source: Source
    let formatter: TimeFormatter

    init(zone: String, source: Source) {
        self.zone = zone
        self.source = source
        formatter = TimeFormatter(zone: zone)
    }

    @TaskLocal static var current = PageTime(zone: "UTC", source: .none)

    /// The cookie `handrail.js` sets to the browser's zone.
    static let cookie = "tz"

    /// The reader's zone: `setting`, else `browser` (when it names a zone), else UTC.
    static func choose(setting: String?, browser: String?) -> PageTime {
        if let setting, valid(setting) { return PageTime(zone: setting, source: .setting) }
        if let browser, valid(browser) { return PageTime(zone: browser, source: .browser) }
        return PageTime(zone: "UTC", source: .none)
    }

    /// An IANA zone name this machine knows ("Europe/Berlin", "UTC").
    static func valid(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && TimeZone(identifier: name) != nil
    }
}
