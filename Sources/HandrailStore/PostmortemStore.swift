public import Foundation
public import HandrailCore
public import Postgres

/// The review states of a postmortem, in order.
public enum PostmortemState: String, CaseIterable, Sendable, Codable, Comparable {
    case draft
    case inReview = "in_review"
    case approved, published

    public static func < (a: PostmortemState, b: PostmortemState) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The sections only people can write.
public enum PostmortemSection: String, CaseIterable, Sendable, Codable {
    case impact
    case rootCause = "root_cause"
    case contributingFactors = "contributing_factors"
    case wentWell = "went_well"
    case wentBadly = "went_badly"

    public static func parse(_ text: String, field: String = "section") throws(ValidationError) -> PostmortemSection {
        guard let s = PostmortemSection(rawValue: text) else {
            throw ValidationError(
                field: field,
                message: "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(text.debugDescription)"
            )
        }
        return s
    }
}

/// What a postmortem must hold before review: a section people write, or action items.
public enum PostmortemRequirement: Sendable, Equatable {
    case section(PostmortemSection)
    case actionItems

    /// Summary of impact, root cause, action items.
    public static let defaults: [PostmortemRequirement] = [.section(.impact), .section(.rootCause), .actionItems]

    /// `impact,root_cause,action_items` (an empty text: nothing required).
    public static func parse(_ text: String) throws(ValidationError) -> [PostmortemRequirement] {
        try text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map {
            (name: String) throws(ValidationError) -> PostmortemRequirement in
            if name == "action_items" { return .actionItems }
            guard let section = PostmortemSection(rawValue: name) else {
                throw ValidationError(
                    field: "HANDRAIL_POSTMORTEM_REQUIRED",
                    message:
                        "names \(name.debugDescription); choose from \((PostmortemSection.allCases.map(\.rawValue) + ["action_items"]).joined(separator: ", "))"
                )
            }
            return .section(section)
        }
    }
}

/// A postmortem as stored: its generated facts (JSON), what people wrote (with history),
/// its action items and its review.
public struct StoredPostmortem: Sendable, Equatable, Encodable {
    public struct Edit: Sendable, Equatable, Codable {
        public var by: String
        public var at: Date
        public var characters: Int
    }

    public struct Section: Sendable, Equatable, Codable {
        public var section: PostmortemSection
        public var markdown: String
        public var editedBy: String
        public var editedAt: Date
        /// Every edit, oldest first (the last is the text above).
        public var history: [Edit]
    }

    public struct ActionItem: Sendable, Equatable, Codable {
        public var id: Int64
        public var title: String
        public var owner: String
        public var dueDate: String
        public var status: String
        public var createdBy: String
        public var closedAt: Date?
    }

    public var id: Int64
    public var incident: String
    public var state: PostmortemState
    public var factsJSON: String
    public var factsGeneratedAt: Date
    public var createdBy: String
    public var submittedBy: String?
    public var submittedAt: Date?
    public var approvedBy: String?
    public var approvedAt: Date?
    public var publishedBy: String?
    public var publishedAt: Date?
    /// Who is asked to approve it, when someone was assigned.
    public var reviewer: String?
    /// Why an administrator approved the postmortem they submitted themselves.
    public var approvalOverrideReason: String?
    /// Who took a published postmortem back to draft after its incident reopened, and when.
    public var revisionOpenedBy: String?
    public var revisionOpenedAt: Date?
    /// The incident reopened after these facts were generated (or is open now): the facts
    /// must be regenerated (a published postmortem taken back to draft first) before review.
    public var needsRevision: Bool
    public var sections: [Section]
    public var actionItems: [ActionItem]

    /// The text people wrote in `section`, nil when nobody did (or only whitespace).
    public func written(_ section: PostmortemSection) -> String? {
        sections.first { $0.section == section && !$0.markdown.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }?.markdown
    }

    /// Everything but the raw facts text (readers get the document built from it).
    enum CodingKeys: String, CodingKey {
        case id, incident, state, factsGeneratedAt, createdBy, submittedBy, submittedAt, approvedBy, approvedAt, publishedBy, publishedAt
        case reviewer, approvalOverrideReason, revisionOpenedBy, revisionOpenedAt, needsRevision
        case sections, actionItems
    }
}

/// All SQL of postmortems.
public struct PostmortemStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    public enum CreateResult: Sendable, Equatable {
        case created
        case notFound
        /// Only a resolved incident gets a postmortem.
        case notResolved(IncidentState)
        case exists
    }

    /// postmortem.create — a draft for a resolved incident, with its generated facts.
    public func create(number: Int64, factsJSON: String, by userID: Int) async throws -> CreateResult {
        do {
            let rows = try await pool.query(
                """
                WITH i AS (SELECT id, state::text AS state FROM incidents WHERE number = \(number)),
                created AS (
                    INSERT INTO postmortems (incident_id, facts, created_by)
                    SELECT id, \(factsJSON)::jsonb, \(userID) FROM i WHERE state = 'resolved'
                    RETURNING id
                )
                SELECT i.state, (SELECT count(*) FROM created) AS created FROM i
                """
            )
            guard let row = rows.first else { return .notFound }
            if try row.decode("created", as: Int.self) == 1 { return .created }
            return .notResolved(try row.decode("state"))
        } catch let error as PostgresError where error.isUniqueViolation {
            return .exists
        }
    }

    public enum ChangeResult: Sendable, Equatable {
        case changed
        case notFound
        /// Not allowed from this state (a published postmortem is read-only).
        case refused(PostmortemState)
        /// The approver submitted it and gave no override reason.
        case ownApproval
    }

    /// postmortem.regenerate — new facts from the log; what people wrote is untouched.
    public func regenerate(number: Int64, factsJSON: String) async throws -> ChangeResult {
        try Self.result(
            try await pool.query(
                """
                WITH target AS (
                    SELECT p.id, p.state::text AS state FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.number = \(number) FOR UPDATE OF p
                ), changed AS (
                    UPDATE postmortems p SET facts = \(factsJSON)::jsonb, facts_generated_at = now()
                    FROM target t WHERE p.id = t.id AND t.state <> 'published' RETURNING p.id
                )
                SELECT t.state, (SELECT count(*) FROM changed) AS changed FROM target t
                """
            )
        )
    }

    /// postmortem.edit — a new version of one section people write (the old ones stay).
    public func editSection(number: Int64, section: PostmortemSection, markdown: String, by userID: Int) async throws -> ChangeResult {
        try await editSections(number: number, [(section, markdown)], by: userID)
    }

    /// postmortem.edit — new versions of several sections at once, in one transaction (the
    /// page saves every section whose text changed, so none is lost to another's save).
    public func editSections(number: Int64, _ edits: [(PostmortemSection, String)], by userID: Int) async throws -> ChangeResult {
        try Self.result(
            try await pool.query(
                """
                WITH target AS (
                    SELECT p.id, p.state::text AS state FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.number = \(number) FOR UPDATE OF p
                ), changed AS (
                    INSERT INTO postmortem_section_edits (postmortem_id, section, markdown, edited_by)
                    SELECT t.id, x.section, x.markdown, \(userID)
                    FROM target t, unnest(\(edits.map(\.0.rawValue))::text[], \(edits.map(\.1))::text[]) WITH ORDINALITY AS x(section, markdown, n)
                    WHERE t.state <> 'published' ORDER BY x.n
                    RETURNING postmortem_id
                )
                SELECT t.state, least((SELECT count(*) FROM changed), 1) AS changed FROM target t
                """
            )
        )
    }

    /// postmortem.review — submit (draft → in_review), approve (in_review → approved),
    /// publish (approved → published), each recording who and when. Approving a postmortem
    /// one submitted oneself needs `overrideReason` (and, the database checks, an administrator).
    public func advance(number: Int64, to state: PostmortemState, by userID: Int, overrideReason: String? = nil) async throws -> ChangeResult {
        guard let index = PostmortemState.allCases.firstIndex(of: state), index > 0 else { return .refused(.draft) }
        let from = PostmortemState.allCases[index - 1]
        let to = state.rawValue
        do {
            return try Self.result(
                try await pool.query(
                    """
                    WITH target AS (
                        SELECT p.id, p.state::text AS state FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.number = \(number) FOR UPDATE OF p
                    ), changed AS (
                        UPDATE postmortems p SET state = \(to)::postmortem_state,
                            submitted_by = CASE WHEN \(to) = 'in_review' THEN \(userID) ELSE p.submitted_by END,
                            submitted_at = CASE WHEN \(to) = 'in_review' THEN now() ELSE p.submitted_at END,
                            approved_by = CASE WHEN \(to) = 'approved' THEN \(userID) ELSE p.approved_by END,
                            approved_at = CASE WHEN \(to) = 'approved' THEN now() ELSE p.approved_at END,
                            approval_override_reason = CASE WHEN \(to) = 'approved' THEN \(overrideReason) ELSE p.approval_override_reason END,
                            published_by = CASE WHEN \(to) = 'published' THEN \(userID) ELSE p.published_by END,
                            published_at = CASE WHEN \(to) = 'published' THEN now() ELSE p.published_at END
                        FROM target t WHERE p.id = t.id AND t.state = \(from.rawValue) RETURNING p.id
                    )
                    SELECT t.state, (SELECT count(*) FROM changed) AS changed FROM target t
                    """
                )
            )
        } catch let error as PostgresError where error.isCheckViolation {
            return .ownApproval
        }
    }

    /// postmortem.revise — a published postmortem goes back to draft for revision, allowed
    /// (the database checks) only when its incident reopened after it was published. The last
    /// publication stays on the record; the review starts again.
    public func reopenForRevision(number: Int64, by userID: Int) async throws -> ChangeResult {
        do {
            return try Self.result(
                try await pool.query(
                    """
                    WITH target AS (
                        SELECT p.id, p.state::text AS state FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.number = \(number) FOR UPDATE OF p
                    ), changed AS (
                        UPDATE postmortems p SET state = 'draft', revision_opened_by = \(userID), revision_opened_at = now(),
                            submitted_by = NULL, submitted_at = NULL, approved_by = NULL, approved_at = NULL, approval_override_reason = NULL
                        FROM target t WHERE p.id = t.id AND t.state = 'published' RETURNING p.id
                    )
                    SELECT t.state, (SELECT count(*) FROM changed) AS changed FROM target t
                    """
                )
            )
        } catch let error as PostgresError where error.isRestrictViolation {
            return .refused(.published)
        }
    }

    public enum ReviewerResult: Sendable, Equatable {
        case assigned
        case notFound
        case unknownReviewer
        case published
    }

    /// postmortem.reviewer — who is asked to approve (nil: nobody in particular).
    public func assignReviewer(number: Int64, reviewer: String?) async throws -> ReviewerResult {
        let rows = try await pool.query(
            """
            WITH target AS (
                SELECT p.id, p.state::text AS state FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.number = \(number) FOR UPDATE OF p
            ), r AS (SELECT id FROM users WHERE username = \(reviewer) AND disabled_at IS NULL),
            changed AS (
                UPDATE postmortems p SET reviewer_user_id = (SELECT id FROM r)
                FROM target t WHERE p.id = t.id AND t.state <> 'published' AND (\(reviewer)::text IS NULL OR EXISTS (SELECT 1 FROM r))
                RETURNING p.id
            )
            SELECT t.state, (SELECT id FROM r) AS reviewer_id, (SELECT count(*) FROM changed) AS changed FROM target t
            """
        )
        guard let row = rows.first else { return .notFound }
        if try row.decode("changed", as: Int.self) == 1 { return .assigned }
        if reviewer != nil, try row.decode("reviewer_id", as: Int64?.self) == nil { return .unknownReviewer }
        return .published
    }

    static func result(_ rows: PostgresRows) throws -> ChangeResult {
        guard let row = rows.first else { return .notFound }
        if try row.decode("changed", as: Int.self) == 1 { return .changed }
        return .refused(try row.decode("state"))
    }

    public enum ActionItemResult: Sendable, Equatable {
        case done
        case notFound
        case unknownOwner
        case published
    }

    /// action-item.add — on a postmortem that is not published.
    public func addActionItem(number: Int64, title: String, owner: String, due: LocalDate, by userID: Int) async throws -> ActionItemResult {
        let rows = try await pool.query(
            """
            WITH p AS (SELECT p.id, p.state::text AS state FROM postmortems p JOIN incidents i ON i.id = p.incident_id WHERE i.number = \(number)),
            o AS (SELECT id FROM users WHERE username = \(owner) AND disabled_at IS NULL),
            added AS (
                INSERT INTO action_items (postmortem_id, title, owner_user_id, due_date, created_by)
                SELECT p.id, \(title), o.id, \(due.description)::date, \(userID) FROM p, o WHERE p.state <> 'published'
                RETURNING id
            )
            SELECT p.state, (SELECT id FROM o) AS owner_id, (SELECT id FROM added) AS id FROM p
            """
        )
        guard let row = rows.first else { return .notFound }
        guard try row.decode("owner_id", as: Int64?.self) != nil else { return .unknownOwner }
        guard try row.decode("id", as: Int64?.self) != nil else { return .published }
        return .done
    }

    /// action-item.status — open, done or dropped; tracked to the end, published or not.
    public func setActionItem(number: Int64, id: Int64, status: String) async throws -> ActionItemResult {
        let rows = try await pool.query(
            """
            UPDATE action_items a SET status = \(status), closed_at = CASE WHEN \(status) = 'open' THEN NULL ELSE coalesce(a.closed_at, now()) END
            FROM postmortems p JOIN incidents i ON i.id = p.incident_id
            WHERE a.id = \(id) AND a.postmortem_id = p.id AND i.number = \(number)
            RETURNING a.id
            """
        )
        return rows.isEmpty ? .notFound : .done
    }

    /// postmortem.show — the postmortem of an incident; nil when it has none.
    public func find(number: Int64) async throws -> StoredPostmortem? {
        try await pool.withConnection { db in
            guard
                let row = try await db.query(
                    """
                    SELECT p.id, p.state::text AS state, p.facts::text AS facts, p.facts_generated_at, c.username AS created_by,
                           s.username AS submitted_by, p.submitted_at, a.username AS approved_by, p.approved_at, pu.username AS published_by, p.published_at,
                           r.username AS reviewer, p.approval_override_reason, rv.username AS revision_opened_by, p.revision_opened_at,
                           (i.state <> 'resolved' OR EXISTS (
                               SELECT 1 FROM incident_events e WHERE e.incident_id = i.id AND e.type = 'reopened' AND e.at > p.facts_generated_at
                           )) AS needs_revision
                    FROM postmortems p JOIN incidents i ON i.id = p.incident_id JOIN users c ON c.id = p.created_by
                    LEFT JOIN users s ON s.id = p.submitted_by LEFT JOIN users a ON a.id = p.approved_by LEFT JOIN users pu ON pu.id = p.published_by
                    LEFT JOIN users r ON r.id = p.reviewer_user_id LEFT JOIN users rv ON rv.id = p.revision_opened_by
                    WHERE i.number = \(number)
                    """
                ).first
            else { return nil }
            let id: Int64 = try row.decode("id")
            var sections: [PostmortemSection: StoredPostmortem.Section] = [:]
            for edit in try await db.query(
                """
                SELECT e.section, e.markdown, u.username, e.edited_at FROM postmortem_section_edits e JOIN users u ON u.id = e.edited_by
                WHERE e.postmortem_id = \(id) ORDER BY e.id
                """
            ) {
                let section: PostmortemSection = try edit.decode("section")
                let markdown: String = try edit.decode("markdown")
                let entry = StoredPostmortem.Edit(by: try edit.decode("username"), at: try edit.decode("edited_at"), characters: markdown.count)
                let history = (sections[section]?.history ?? []) + [entry]
                sections[section] = StoredPostmortem.Section(
                    section: section,
                    markdown: markdown,
                    editedBy: entry.by,
                    editedAt: entry.at,
                    history: history
                )
            }
            let items = try await db.query(
                """
                SELECT a.id, a.title, o.username AS owner, a.due_date::text AS due, a.status, c.username AS created_by, a.closed_at
                FROM action_items a JOIN users o ON o.id = a.owner_user_id JOIN users c ON c.id = a.created_by
                WHERE a.postmortem_id = \(id) ORDER BY a.id
                """
            ).map { r in
                StoredPostmortem.ActionItem(
                    id: try r.decode("id"),
                    title: try r.decode("title"),
                    owner: try r.decode("owner"),
                    dueDate: try r.decode("due"),
                    status: try r.decode("status"),
                    createdBy: try r.decode("created_by"),
                    closedAt: try r.decode("closed_at")
                )
            }
            return StoredPostmortem(
                id: id,
                incident: IncidentRef.display(number),
                state: try row.decode("state"),
                factsJSON: try row.decode("facts"),
                factsGeneratedAt: try row.decode("facts_generated_at"),
                createdBy: try row.decode("created_by"),
                submittedBy: try row.decode("submitted_by"),
                submittedAt: try row.decode("submitted_at"),
                approvedBy: try row.decode("approved_by"),
                approvedAt: try row.decode("approved_at"),
                publishedBy: try row.decode("published_by"),
                publishedAt: try row.decode("published_at"),
                reviewer: try row.decode("reviewer"),
                approvalOverrideReason: try row.decode("approval_override_reason"),
                revisionOpenedBy: try row.decode("revision_opened_by"),
                revisionOpenedAt: try row.decode("revision_opened_at"),
                needsRevision: try row.decode("needs_revision"),
                sections: PostmortemSection.allCases.compactMap { sections[$0] },
                actionItems: items
            )
        }
    }

    /// An incident that still needs a postmortem, or an overdue action item.
    public struct QueueItem: Sendable, Equatable {
        public var number: Int64
        public var title: String
        /// Why it is in the queue: "critical", "its runbook requires one", or the item's owner and due date.
        public var why: String
        public var at: Date?
    }

    /// Which resolved incidents need a postmortem and have none, as SQL over `neededFrom`
    /// (incidents `i`, their pinned runbook version `v`): the runbook says `postmortem:
    /// required`, or the incident was critical and the runbook does not say `optional`. One
    /// rule for the Postmortems page's queue and the handoff.
    static let neededFrom: StaticString =
        "incidents i LEFT JOIN runbook_versions v ON v.runbook_id = i.runbook_id AND v.version = i.runbook_version"
    static let needed: StaticString = """
        i.state = 'resolved' AND NOT EXISTS (SELECT 1 FROM postmortems p WHERE p.incident_id = i.id)
        AND (v.postmortem = 'required' OR (i.severity = 'critical' AND coalesce(v.postmortem, '') <> 'optional'))
        """
    /// Why it needs one, in words.
    static let neededWhy: StaticString =
        "CASE WHEN v.postmortem = 'required' THEN 'its runbook requires one' ELSE 'critical' END"

    /// The queue's incidents: read from the newest resolved down (`incidents_resolved_newest`).
    package static func neededQuery(days: Int, limit: Int) -> PostgresQuery {
        """
        SELECT i.number, i.title, i.resolved_at, \(sql: Self.neededWhy) AS why
        FROM \(sql: Self.neededFrom)
        WHERE \(sql: Self.needed) AND i.resolved_at >= now() - make_interval(days => \(days))
        ORDER BY i.resolved_at DESC LIMIT \(limit)
        """
    }

    /// postmortem.queue — resolved incidents of the last `days` that need a postmortem and
    /// have none (their runbook says `postmortem: required`, or they were critical and the
    /// runbook does not say `optional`), newest first; and open action items past their due
    /// date across every postmortem, most overdue first.
    public func queue(days: Int = 90, limit: Int = 50) async throws -> (needed: [QueueItem], overdue: [QueueItem]) {
        try await pool.withConnection { db in
            let needed = try await db.query(Self.neededQuery(days: days, limit: limit)).map {
                QueueItem(number: try $0.decode("number"), title: try $0.decode("title"), why: try $0.decode("why"), at: try $0.decode("resolved_at"))
            }
            let overdue = try await db.query(
                """
                SELECT i.number, a.title, u.username, a.due_date::text AS due
                FROM action_items a JOIN postmortems p ON p.id = a.postmortem_id JOIN incidents i ON i.id = p.incident_id
                JOIN users u ON u.id = a.owner_user_id
                WHERE a.status = 'open' AND a.due_date < current_date
                ORDER BY a.due_date, i.number, a.id LIMIT \(limit)
                """
            ).map {
                QueueItem(
                    number: try $0.decode("number"),
                    title: try $0.decode("title"),
                    why: "owner \(try $0.decode("username", as: String.self)), due \(try $0.decode("due", as: String.self))",
                    at: nil
                )
            }
            return (needed, overdue)
        }
    }

    /// Postmortems by state, newest first.
    public func list(state: PostmortemState?) async throws -> [(number: Int64, state: PostmortemState, title: String)] {
        try await pool.query(
            """
            SELECT i.number, p.state::text AS state, i.title FROM postmortems p JOIN incidents i ON i.id = p.incident_id
            WHERE (\(state?.rawValue)::text IS NULL OR p.state::text = \(state?.rawValue)) ORDER BY p.id DESC LIMIT 200
            """
        ).map { (try $0.decode("number"), try $0.decode("state"), try $0.decode("title")) }
    }
}
