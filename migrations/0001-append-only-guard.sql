-- The guard that makes a table append-only in the database itself, not only in the
-- application: a BEFORE UPDATE OR DELETE trigger calling this function refuses the change.
-- Incident timelines, rollback decisions and runbook step records attach it (later
-- migrations); TRUNCATE is refused by a statement-level trigger using the same function.
CREATE FUNCTION handrail_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege', HINT = 'record a new entry instead';
END;
$$;
