import Foundation
import HandrailCore
import HandrailStore

/// One incident in a list (Now, Incidents).
struct IncidentRow: PageModel {
    var number: Int64
    var ref: String
    var title: String
    var state: String
    var severity: String
    var age: String
    var opened: String
    var openedIso: String
    var owner: String?
    var pending: Bool
    var unowned: Bool
    /// Owned by the visitor.
    var mine: Bool
    var alerts: Int
    /// "1 firing alert", "3 firing alerts".
    var alertsText: String
    var runbook: String?

    init(_ i: IncidentSummary, me: String?, now: Date) {
        number = i.number
        ref = i.ref
        title = i.title
        state = i.state.rawValue
        severity = i.severity.rawValue
        age = OutcomeProposal.duration(max(0, Int(now.timeIntervalSince(i.openedAt))))
        opened = WebController.time(i.openedAt)
        openedIso = RFC3339.format(i.openedAt)
        owner = i.owner
        pending = i.ownerPending
        unowned = i.owner == nil
        mine = me != nil && i.owner == me
        alerts = i.openAlerts
        alertsText = NumberText.count(i.openAlerts, "firing alert")
        runbook = i.runbookId
    }
}

/// `now.html`: the open incidents in triage order (the visitor's own marked), and the last
/// resolved.
struct NowPage: PageModel {
    var title = "Now"
    var navNow = true
    var live: String
    /// Where a live page fetches its changed rows (`WebController.nowRows`).
    var rows = "/now/rows"
    var open: [IncidentRow]
    var openCount: Int
    var resolved: [IncidentRow]
    /// Canary gates waiting for a person's decision, the longest waiting first.
    var gates: [GateRow]
    var hasGates: Bool

    /// "Showing the first 50 of 180 open", with a link to all of them.
    var more: String?

    /// `open`: the first of the open incidents, in triage order (`IncidentStore.triage`);
    /// `openCount`: how many are open in all.
    init(open: [IncidentSummary], openCount: Int, resolved: [IncidentSummary], me: String?, watermark: Int64, now: Date, gates: [Gate] = []) {
        self.gates = gates.map { GateRow($0, now: now) }
        hasGates = !gates.isEmpty
        live = "/live?since=\(watermark)"
        self.open = open.map { IncidentRow($0, me: me, now: now) }
        self.openCount = openCount
        self.resolved = resolved.map { IncidentRow($0, me: me, now: now) }
        more = Self.more(shown: open.count, of: openCount)
    }

    static func more(shown: Int, of count: Int) -> String? {
        count > shown ? "Showing the first \(shown) of \(count) open, in this order." : nil
    }
}

/// `now-update.html`, what a live Now page fetches when incidents changed: each list's
/// order as incident numbers, and rows only for the incidents the page lacks or that changed
/// (handrail.js keeps its own rows for the rest).
struct NowUpdatePage: PageModel {
    var openCount: Int
    /// "12,7,30": the open list's numbers in triage order; the resolved list's, newest first.
    var openOrder: String
    var resolvedOrder: String
    var openRows: [IncidentRow]
    var resolvedRows: [IncidentRow]
    var noneOpen: Bool
    var noneResolved: Bool
    var more: String?

    init(_ update: NowUpdate, me: String?, now: Date) {
        openCount = update.openCount
        openOrder = update.open.map { String($0.number) }.joined(separator: ",")
        resolvedOrder = update.resolved.map { String($0.number) }.joined(separator: ",")
        openRows = update.open.compactMap { $0.summary.map { IncidentRow($0, me: me, now: now) } }
        resolvedRows = update.resolved.compactMap { $0.summary.map { IncidentRow($0, me: me, now: now) } }
        noneOpen = update.open.isEmpty
        noneResolved = update.resolved.isEmpty
        more = NowPage.more(shown: update.open.count, of: update.openCount)
    }
}

/// `incidents.html`: one page of incidents, newest first, filtered like the API and the CLI
/// (state, severity, runbook, service, model, owner, words in the title).
struct IncidentListPage: PageModel {
    struct Choice: PageModel {
        var value: String
        var selected: Bool
    }

    /// The filters as asked, to fill the form and carry to the next page.
    struct Query: PageModel {
        var state = ""
        var severity = ""
        var runbook = ""
        var service = ""
        var model = ""
        var owner = ""
        var text = ""

        init() {}

        init(_ q: some Sequence<(key: Substring, value: Substring)>) {
            for (key, value) in q {
                let v = String(value)
                switch key {
                case "state": state = v
                case "severity": severity = v
                case "runbook": runbook = v
                case "service": service = v
                case "model": model = v
                case "owner": owner = v
                case "text": text = v
                default: continue
                }
            }
        }

        /// `&state=…&text=…` of the filters given, percent-encoded.
        var parameters: String {
            [
                ("state", state), ("severity", severity), ("runbook", runbook), ("service", service), ("model", model), ("owner", owner),
                ("text", text),
            ]
            .filter { !$0.1.isEmpty }
            .map { "&\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            .joined()
        }
    }

    var title = "Incidents"
    var navIncidents = true
    var incidents: [IncidentRow]
    var query: Query
    var states: [Choice]
    var severities: [Choice]
    /// Some filter is set (the page says "No incidents match" rather than "No incidents").
    var filtered: Bool
    /// The next page's address, when this page is full.
    var next: String?
    var error: String?

    init(_ page: [IncidentSummary], query: Query, limit: Int, me: String?, now: Date, error: String? = nil) {
        incidents = page.map { IncidentRow($0, me: me, now: now) }
        self.query = query
        states = IncidentState.allCases.map { Choice(value: $0.rawValue, selected: $0.rawValue == query.state) }
        severities = Severity.allCases.map { Choice(value: $0.rawValue, selected: $0.rawValue == query.severity) }
        filtered = !query.parameters.isEmpty
        next = page.count == limit ? page.last.map { "/incidents?before=\($0.number)" + query.parameters } : nil
        self.error = error
    }
}
