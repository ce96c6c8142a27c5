-- A signed integration may also require the signature's timestamp (Grafana's
-- X-Grafana-Alerting-Signature-Timestamp): without one, a captured signed delivery can be
-- replayed at any time; with one, only within five minutes.
ALTER TABLE integration_keys ADD COLUMN require_timestamp boolean NOT NULL DEFAULT false;
ALTER TABLE integration_keys ADD CONSTRAINT integration_keys_timestamp_needs_signature
    CHECK (NOT require_timestamp OR require_signature);
