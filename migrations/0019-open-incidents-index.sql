-- The open incidents, newest first, without reading the resolved history around them: the
-- Now page's list and every list of open states (IncidentStore.listQuery, IncidentPlanTests).
CREATE INDEX incidents_open_newest ON incidents (number DESC) WHERE state <> 'resolved';
