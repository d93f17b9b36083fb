-- Effectively-once consumption: the next offset of every partition is committed in the same
-- transaction as the rows read before it, so a replay after any crash finds its messages
-- already accounted for and writes nothing twice.
CREATE TABLE consumer_offsets (
    group_id    TEXT        NOT NULL,
    topic       TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    next_offset BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Who and what sent the event, the rule set that judged it, and its content at rest
-- (sealed with XChaCha20-Poly1305, or redacted, or not stored; see STORE_CONTENT).
ALTER TABLE flags
    ADD COLUMN user_id          TEXT,
    ADD COLUMN app              TEXT,
    ADD COLUMN team             TEXT,
    ADD COLUMN tokens_in        BIGINT,
    ADD COLUMN tokens_out       BIGINT,
    ADD COLUMN cost_usd         DOUBLE PRECISION,
    ADD COLUMN categories       TEXT[]   NOT NULL DEFAULT '{}',
    ADD COLUMN rule_set_version BIGINT   NOT NULL DEFAULT 0,
    ADD COLUMN content_mode     TEXT     NOT NULL DEFAULT 'none'
        CHECK (content_mode IN ('encrypted', 'redacted', 'none')),
    ADD COLUMN content          BYTEA,
    ADD COLUMN assignee         TEXT,
    ADD CONSTRAINT flags_status_check
        CHECK (status IN ('new', 'triaged', 'true_positive', 'false_positive', 'resolved'));

-- The API's filters.
CREATE INDEX flags_severity_idx ON flags (severity, event_time DESC, id DESC);
CREATE INDEX flags_status_idx ON flags (status, event_time DESC, id DESC);
CREATE INDEX flags_src_ip_idx ON flags USING gist (src_ip inet_ops);
CREATE INDEX flags_model_idx ON flags (model, event_time DESC);
CREATE INDEX flags_user_idx ON flags (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX detections_rule_flag_idx ON detections (rule_id, flag_id DESC);

-- Every event, flagged or not, counted per minute × provider × model × app. Cost is kept in
-- micro-dollars so sums are exact.
CREATE TABLE traffic_rollups (
    minute      TIMESTAMPTZ NOT NULL,
    provider    TEXT        NOT NULL,
    model       TEXT        NOT NULL,
    app         TEXT        NOT NULL DEFAULT '',
    events      BIGINT      NOT NULL,
    flagged     BIGINT      NOT NULL,
    tokens_in   BIGINT      NOT NULL,
    tokens_out  BIGINT      NOT NULL,
    cost_micros BIGINT      NOT NULL,
    PRIMARY KEY (minute, provider, model, app)
);

-- Detection rules as the `rules` crate serializes them. The current definition lives in
-- `rules`; every change is appended to `rule_versions` by a trigger, so history cannot be
-- bypassed, and announced on `rules_changed` so consumers reload within seconds.
CREATE TABLE rules (
    id         TEXT        PRIMARY KEY,
    definition JSONB       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT
);

CREATE TABLE rule_versions (
    seq        BIGSERIAL   PRIMARY KEY,
    rule_id    TEXT        NOT NULL,
    -- NULL when the rule was deleted.
    definition JSONB,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by TEXT
);
CREATE INDEX rule_versions_rule_idx ON rule_versions (rule_id, seq DESC);

CREATE FUNCTION rules_record_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO rule_versions (rule_id, definition, changed_by) VALUES (OLD.id, NULL, OLD.updated_by);
    ELSE
        INSERT INTO rule_versions (rule_id, definition, changed_by) VALUES (NEW.id, NEW.definition, NEW.updated_by);
    END IF;
    PERFORM pg_notify('rules_changed', COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE ON rules
    FOR EACH ROW EXECUTE FUNCTION rules_record_change();
