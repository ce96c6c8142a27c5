import Foundation
import HandrailCore
import HandrailStore
import Markdown
import Synchronization

/// `rotations.html`: every rotation with who is on call now and next.
struct RotationsPage: PageModel {
    struct Row: PageModel {
        var name: String
        var timeZone: String
        var members: String
        var now: String
        var until: String?
        var next: String
        var override: Bool
    }

    var title = "Rotations"
    var navRotations = true
    var rotations: [Row]

    init(_ rotations: [Rotation], now: Date) {
        self.rotations = rotations.map { r in
            let current = r.onCall(at: now)
            let next = current.until.map { r.onCall(at: $0.addingTimeInterval(1)) }
            return Row(
                name: r.name,
                timeZone: r.timeZone,
                members: r.members.joined(separator: ", "),
                now: current.user ?? "nobody",
                until: current.until.map(WebController.time),
                next: next?.user ?? "nobody",
                override: current.override != nil
            )
        }
    }
}

/// `rotation.html`: one rotation's next shifts, overrides and handoffs.
struct RotationPage: PageModel {
    struct Shift: PageModel {
        var start: String
        var end: String
        var who: String
    }

    struct Override: PageModel {
        var user: String
        var start: String
        var end: String
        var reason: String?
    }

    struct HandoffRow: PageModel {
        var id: Int64
        var from: String
        var to: String
        var generatedBy: String
        var generatedAt: String
        var incoming: String
        var acknowledged: String
    }

    var title: String
    var navRotations = true
    var name: String
    var path: String
    var timeZone: String
    var members: String
    var shift: String
    var now: String
    var until: String?
    var shifts: [Shift]
    var overrides: [Override]
    var hasOverrides: Bool
    var handoffs: [HandoffRow]
    var hasHandoffs: Bool
    var canGenerate: Bool
    var lastShift: String?
    /// The chain in words: "after 0 min: on_call".
    var escalation: [String]
    var reminders: String
    /// The chain as the form edits it: one step a line, `MINUTES TARGET [USER]`.
    var stepsText: String
    var renotifyMinutes: String
    var channels: [ChannelRow]
    var canEdit: Bool
    var secret: ShownSecret?
    var error: String?

    struct ChannelRow: PageModel {
        var id: Int64
        var kind: String
        var label: String
        var hint: String
    }

    init(
        _ r: Rotation,
        handoffs: [StoredHandoff],
        role: Role,
        now: Date,
        policy: EscalationPolicy = EscalationPolicy(steps: [], renotifySeconds: nil),
        channels: [RotationChannel] = [],
        secret: ShownSecret? = nil,
        error: String? = nil
    ) {
        let time = WebController.time
        let current = r.onCall(at: now)
        title = "Rotation \(r.name)"
        name = r.name
        path = RotationPages.path(r.name)
        timeZone = r.timeZone
        members = r.members.joined(separator: ", ")
        shift = "\(r.shiftLength), handoff \(r.handoff)"
        self.now = current.user ?? "nobody"
        until = current.until.map(time)
        shifts = r.shifts(from: now, count: 4).map {
            Shift(start: time($0.start), end: time($0.end), who: $0.segments.map(\.user).joined(separator: ", "))
        }
        overrides = r.overrides.filter { $0.end > now }.map { Override(user: $0.user, start: time($0.start), end: time($0.end), reason: $0.reason) }
        hasOverrides = !overrides.isEmpty
        self.handoffs = handoffs.map { h in
            HandoffRow(
                id: h.id,
                from: time(h.from),
                to: time(h.to),
                generatedBy: h.generatedBy,
                generatedAt: time(h.generatedAt),
                incoming: h.incoming ?? "nobody",
                acknowledged: h.acknowledgedBy.map {
                    "acknowledged by \($0)" + (h.acknowledgedOnBehalf ? " on behalf of \(h.incoming ?? "nobody")" : "")
                }
                    ?? "not acknowledged"
            )
        }
        hasHandoffs = !handoffs.isEmpty
        canGenerate = role >= .responder
        lastShift = HandoffWindow.lastShift(of: r, now: now).map { "\(time($0.from)) – \(time($0.to))" }
        func minutes(_ seconds: Int) -> String { NumberText.plain(Double(seconds) / 60) }
        escalation = policy.effectiveSteps.map { "after \(minutes($0.delaySeconds)) min: \($0.target.rawValue)\($0.user.map { " \($0)" } ?? "")" }
        reminders = policy.renotifySeconds.map { "every \(minutes($0)) min while acknowledged and unresolved" } ?? "off"
        stepsText = policy.steps.map { "\(minutes($0.delaySeconds)) \($0.target.rawValue)\($0.user.map { " \($0)" } ?? "")" }.joined(separator: "\n")
        renotifyMinutes = policy.renotifySeconds.map(minutes) ?? ""
        self.channels = channels.map { ChannelRow(id: $0.id, kind: $0.kind.rawValue, label: $0.label, hint: $0.hint) }
        canEdit = role >= .lead
        self.secret = secret
        self.error = error
    }
}

/// `handoff.html`: one stored handoff, and whether the visitor may acknowledge it.
struct HandoffPage: PageModel {
    var title: String
    var navRotations = true
    var name: String
    var path: String
    var id: Int64
    var from: String
    var to: String
    var generatedBy: String
    var generatedAt: String
    var incoming: String
    var contentHash: String
    var acknowledged: String?
    /// The incoming on-call, while nobody has acknowledged it.
    var canAcknowledge: Bool
    /// A lead and up who is not the incoming on-call, while nobody has acknowledged it: on
    /// their behalf, a distinct act.
    var canAcknowledgeOnBehalf: Bool
    var html: String
    /// Notes for the window written after the handoff was generated (the one before is in it).
    var laterNotes: [Note]
    var canWriteNote: Bool
    var error: String?

    struct Note: PageModel {
        var text: String
        var by: String
        var at: String
    }

    init(_ h: StoredHandoff, markdown: String, user: User?, notes: [HandoffNote] = [], error: String? = nil) {
        laterNotes = notes.filter { $0.at > h.generatedAt }.map { Note(text: $0.text, by: $0.by, at: WebController.time($0.at)) }
        canWriteNote = (user?.role ?? .viewer) >= .responder
        let time = WebController.time
        title = "Handoff \(h.rotation) #\(h.id)"
        name = h.rotation
        path = RotationPages.path(h.rotation)
        id = h.id
        from = time(h.from)
        to = time(h.to)
        generatedBy = h.generatedBy
        generatedAt = time(h.generatedAt)
        incoming = h.incoming ?? "nobody"
        contentHash = h.contentHash
        acknowledged = h.acknowledgedBy.map { by in
            "Acknowledged by \(by)" + (h.acknowledgedOnBehalf ? " on behalf of the incoming on-call, \(h.incoming ?? "nobody")" : "")
                + (h.acknowledgedAt.map { " at \(time($0))" } ?? "") + "."
        }
        canAcknowledge = user.map { h.acknowledgedBy == nil && h.incoming == $0.username } ?? false
        canAcknowledgeOnBehalf = user.map { h.acknowledgedBy == nil && h.incoming != $0.username && $0.role >= .lead } ?? false
        html = Self.html(h.contentHash, markdown)
        self.error = error
    }

    /// A stored handoff's HTML, by its content hash (a stored handoff never changes): a busy
    /// week's is some 320 KB of Markdown, and a team opens Monday's handoff many times. At most
    /// `htmlKept` handoffs are kept.
    static func html(_ hash: String, _ markdown: String) -> String {
        if let known = htmlCache.withLock({ $0[hash] }) { return known }
        let html = Markdown.html(markdown)
        htmlCache.withLock { cache in
            if cache.count >= htmlKept, let any = cache.keys.first { cache[any] = nil }
            cache[hash] = html
        }
        return html
    }

    static let htmlKept = 8
    private static let htmlCache = Mutex<[String: String]>([:])
}
