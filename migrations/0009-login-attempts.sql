-- Sign-in attempts, counted before the password is checked: an attempt is let through only
-- while the account and the address are under their limits, and the row that lets it through
-- is written in the same transaction, under a lock per account and per address, so concurrent
-- attempts cannot all pass. A row counts until it is marked as a success.
CREATE TABLE login_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    text NOT NULL,
    remote_addr text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    succeeded   boolean NOT NULL DEFAULT false
);
CREATE INDEX login_attempts_by_user ON login_attempts (username, at) WHERE NOT succeeded;
CREATE INDEX login_attempts_by_addr ON login_attempts (remote_addr, at) WHERE NOT succeeded;
CREATE INDEX login_attempts_at ON login_attempts (at);
