-- Runbooks: every version ever synced from runbooks/ is kept; incidents pin a version.

CREATE TABLE runbooks (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,99}$'),
    current_version integer NOT NULL,
    source_path     text NOT NULL,
    retired_at      timestamptz,          -- the file left the directory; never deleted
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runbook_versions (
    runbook_id   text NOT NULL REFERENCES runbooks,
    version      integer NOT NULL CHECK (version > 0),
    content_hash text NOT NULL,           -- SHA-256 of the file
    source_path  text NOT NULL,
    source       text NOT NULL,           -- the whole file, front matter and Markdown
    definition   jsonb NOT NULL,          -- the parsed runbook (matchers, thresholds, steps, …)
    synced_at    timestamptz NOT NULL DEFAULT now(),
    synced_by    text NOT NULL,
    PRIMARY KEY (runbook_id, version)
);

-- A version, once synced, is what some incident may have been opened with: never rewritten.
CREATE TRIGGER runbook_versions_append_only BEFORE UPDATE OR DELETE ON runbook_versions
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER runbook_versions_no_truncate BEFORE TRUNCATE ON runbook_versions
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
