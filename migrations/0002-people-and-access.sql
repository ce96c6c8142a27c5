-- People, their sessions and API tokens, alert sources' integration keys, and the audit log.
-- Secrets are never stored: tokens, keys and session ids as SHA-256, passwords as bcrypt.

CREATE TYPE user_role AS ENUM ('viewer', 'responder', 'lead', 'manager', 'admin');

CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             text NOT NULL CONSTRAINT users_username_key UNIQUE
                         CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    display_name         text NOT NULL,
    email                text,
    password_hash        text,            -- bcrypt; NULL: cannot sign in with a password
    must_change_password boolean NOT NULL DEFAULT false,
    role                 user_role NOT NULL,
    disabled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash   text PRIMARY KEY,        -- SHA-256 of the cookie value
    user_id      bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,    -- absolute expiry; idle expiry is last_seen_at + idle
    remote_addr  text,
    user_agent   text
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE api_tokens (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash     text NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
    display_prefix text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

CREATE TYPE integration_kind AS ENUM ('alertmanager', 'grafana', 'pagerduty', 'generic');

CREATE TABLE integration_keys (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind              integration_kind NOT NULL,
    key_hash          text NOT NULL CONSTRAINT integration_keys_key_hash_key UNIQUE,
    display_prefix    text NOT NULL,
    require_signature boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        bigint REFERENCES users,
    last_used_at      timestamptz,
    revoked_at        timestamptz
);
-- One live key per name; revoked ones stay for the record.
CREATE UNIQUE INDEX integration_keys_live_name_key ON integration_keys (name) WHERE revoked_at IS NULL;

-- Who did what, when, from where. Append-only: the database refuses UPDATE, DELETE and
-- TRUNCATE, whoever asks (the triggers fire for the table's owner too).
CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_user_id bigint REFERENCES users,
    actor         text NOT NULL,          -- username, or 'cli', 'system', 'anonymous'
    action        text NOT NULL,          -- e.g. login.succeeded, user.created, token.revoked
    target        text,
    detail        jsonb NOT NULL DEFAULT '{}',
    remote_addr   text
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
-- Login rate limits count recent failures per account and per address.
CREATE INDEX audit_log_login_failures_by_user ON audit_log ((detail ->> 'username'), at) WHERE action = 'login.failed';
CREATE INDEX audit_log_login_failures_by_addr ON audit_log (remote_addr, at) WHERE action = 'login.failed';

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION handrail_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION handrail_refuse_change();
