-- The security team's API: people, machine keys, triage history and an audit trail.

CREATE TABLE users (
    id            BIGSERIAL   PRIMARY KEY,
    username      TEXT        NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    -- argon2id, PHC string format. There is no default user and no default password.
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    disabled      BOOLEAN     NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Keys are 32 random bytes, so a SHA-256 digest is enough to store them (a slow hash guards
-- guessable passwords, not random keys). The prefix is shown in listings and logs.
CREATE TABLE api_keys (
    id         BIGSERIAL   PRIMARY KEY,
    name       TEXT        NOT NULL,
    prefix     TEXT        NOT NULL UNIQUE,
    key_hash   BYTEA       NOT NULL UNIQUE,
    role       TEXT        NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    created_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);

-- Every triage change to a flag: who, when, from which status to which, and why.
CREATE TABLE flag_history (
    id          BIGSERIAL   PRIMARY KEY,
    flag_id     BIGINT      NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       TEXT        NOT NULL,
    status_from TEXT        NOT NULL,
    status_to   TEXT        NOT NULL,
    assignee    TEXT,
    note        TEXT
);
CREATE INDEX flag_history_flag_idx ON flag_history (flag_id, id);

CREATE TABLE audit_log (
    id      BIGSERIAL   PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor   TEXT        NOT NULL,
    action  TEXT        NOT NULL,
    target  TEXT,
    success BOOLEAN     NOT NULL,
    ip      INET,
    details JSONB       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

-- Filters the API offers that the consumer's indexes do not cover.
CREATE INDEX flags_categories_idx ON flags USING gin (categories);
CREATE INDEX flags_provider_idx ON flags (provider, event_time DESC);
CREATE INDEX flags_app_idx ON flags (app, event_time DESC) WHERE app IS NOT NULL;
CREATE INDEX flags_assignee_idx ON flags (assignee, event_time DESC) WHERE assignee IS NOT NULL;
CREATE INDEX flags_score_idx ON flags (score, event_time DESC);
