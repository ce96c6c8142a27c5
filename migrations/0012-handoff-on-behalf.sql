-- A handoff is acknowledged by the incoming on-call as such, or by a lead on their behalf:
-- a distinct act, said as such wherever the acknowledgement is shown.
ALTER TABLE handoffs ADD COLUMN acknowledged_on_behalf boolean NOT NULL DEFAULT false;
ALTER TABLE handoffs ADD CHECK (acknowledged_at IS NOT NULL OR NOT acknowledged_on_behalf);
