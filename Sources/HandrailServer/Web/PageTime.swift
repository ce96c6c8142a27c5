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

    /// - Parameter name: the zone as the person or browser named it (Foundation may name
    ///   UTC "GMT").
    init(_ name: String, _ zone: TimeZone, source: Source) {
        self.zone = name
        self.source = source
        formatter = TimeFormatter(zone: zone)
    }

    static let utc = TimeZone(identifier: "UTC")!

    @TaskLocal static var current = PageTime("UTC", utc, source: .none)

    /// The cookie `handrail.js` sets to the browser's zone.
    static let cookie = "tz"

    /// The reader's zone: `setting`, else `browser` (when it names a zone), else UTC.
    static func choose(setting: String?, browser: String?) -> PageTime {
        if let setting, let zone = known(setting) { return PageTime(setting, zone, source: .setting) }
        if let browser, let zone = known(browser) { return PageTime(browser, zone, source: .browser) }
        return PageTime("UTC", utc, source: .none)
    }

    /// The zone of an IANA name this machine knows ("Europe/Berlin", "UTC"), else nil.
    static func known(_ name: String) -> TimeZone? {
        (1...64).contains(name.utf8.count) ? TimeZone(identifier: name) : nil
    }

    static func valid(_ name: String) -> Bool { known(name) != nil }
}
