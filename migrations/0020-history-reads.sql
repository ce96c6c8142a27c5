-- Reads whose cost must follow what a page shows, not the history behind it (issue 21;
-- IncidentPlanTests keeps their plans).

-- A pinned version's postmortem policy, without reading (and decompressing) the whole
-- definition for every incident the Postmortems queue and the handoff look at.
ALTER TABLE runbook_versions ADD COLUMN postmortem text GENERATED ALWAYS AS (definition->>'postmortem') STORED;

-- The Postmortems queue: the newest resolved incidents first, stopping at the page's fifty.
CREATE INDEX incidents_resolved_newest ON incidents (resolved_at DESC) WHERE state = 'resolved';

-- A runbook's incidents: newest first for its list (`?runbook=`), and by time for "earlier
-- incidents of this runbook in the 30 days before" on an incident's postmortem.
CREATE INDEX incidents_by_runbook ON incidents (runbook_id, number DESC) WHERE runbook_id IS NOT NULL;
CREATE INDEX incidents_by_runbook_opened ON incidents (runbook_id, opened_at) WHERE runbook_id IS NOT NULL;

-- A postmortem's action items (all of them, not only the open ones), and overdue items by date.
DROP INDEX action_items_open;
CREATE INDEX action_items_by_postmortem ON action_items (postmortem_id);
CREATE INDEX action_items_open_due ON action_items (due_date) WHERE status = 'open';
