-- Alerting on stored flags. The consumer writes one `alert_outbox` row per flag in the
-- transaction that stores the flag, so an alert can never be sent for a flag that was not
-- saved, nor lost for one that was. Dispatchers (in every consumer) claim outbox rows and
-- due deliveries with FOR UPDATE SKIP LOCKED, so replicas share the work without sending
-- anything twice.

-- Where alerts go. The URL (a Slack webhook URL is itself a credential) and the signing
-- secret are sealed with the content keyring; `display_url` is scheme and host only.
CREATE TABLE alert_destinations (
    id             TEXT        PRIMARY KEY CHECK (id ~ '^[a-z0-9._-]{1,64}$'),
    kind           TEXT        NOT NULL CHECK (kind IN ('webhook', 'slack', 'alertmanager')),
    display_url    TEXT        NOT NULL,
    sealed         BYTEA       NOT NULL,
    max_per_minute INTEGER     NOT NULL DEFAULT 60 CHECK (max_per_minute BETWEEN 1 AND 10000),
    version        INTEGER     NOT NULL DEFAULT 1,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by     TEXT
);

-- Routes in evaluation order (`position`), as the rules crate's RouteDefinition.
CREATE TABLE alert_routes (
    id         TEXT        PRIMARY KEY CHECK (id ~ '^[a-z0-9._-]{1,64}$'),
    position   INTEGER     NOT NULL,
    definition JSONB       NOT NULL,
    version    INTEGER     NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT
);

-- Every version of every route, appended by trigger so history cannot be bypassed.
CREATE TABLE alert_route_versions (
    seq        BIGSERIAL   PRIMARY KEY,
    route_id   TEXT        NOT NULL,
    version    INTEGER     NOT NULL,
    position   INTEGER,
    -- NULL when the route was deleted.
    definition JSONB,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by TEXT
);
CREATE INDEX alert_route_versions_route_idx ON alert_route_versions (route_id, seq DESC);

CREATE FUNCTION alert_routes_record_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO alert_route_versions (route_id, version, position, definition, changed_by)
        VALUES (OLD.id, OLD.version + 1, NULL, NULL, OLD.updated_by);
    ELSE
        INSERT INTO alert_route_versions (route_id, version, position, definition, changed_by)
        VALUES (NEW.id, NEW.version, NEW.position, NEW.definition, NEW.updated_by);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER alert_routes_changed AFTER INSERT OR UPDATE OR DELETE ON alert_routes
    FOR EACH ROW EXECUTE FUNCTION alert_routes_record_change();

-- Flags stored but not yet routed.
CREATE TABLE alert_outbox (
    flag_id    BIGINT      PRIMARY KEY REFERENCES flags (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per route × destination × group: when it was last notified, what is being gathered
-- (`open_delivery`, sent after group_wait) and how many flags repeat_interval held back.
CREATE TABLE alert_groups (
    route_id       TEXT        NOT NULL,
    destination_id TEXT        NOT NULL,
    group_key      TEXT        NOT NULL,
    last_sent_at   TIMESTAMPTZ,
    suppressed     BIGINT      NOT NULL DEFAULT 0,
    open_delivery  BIGINT,
    PRIMARY KEY (route_id, destination_id, group_key)
);

-- The delivery log: one notification to one destination, retried with backoff.
CREATE TABLE alert_deliveries (
    id               BIGSERIAL   PRIMARY KEY,
    -- The Idempotency-Key header: receivers can drop a repeat of a delivery they took.
    key              TEXT        NOT NULL UNIQUE,
    route_id         TEXT        NOT NULL,
    route_version    INTEGER     NOT NULL,
    destination_id   TEXT        NOT NULL,
    destination_kind TEXT        NOT NULL,
    group_key        TEXT        NOT NULL,
    flag_ids         BIGINT[]    NOT NULL,
    suppressed       BIGINT      NOT NULL DEFAULT 0,
    status           TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    -- A dispatcher sending it holds it until then; a dead one's lease runs out.
    lease_until      TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    -- When the first flag was committed: delivery latency runs from here to the 2xx.
    flagged_at       TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    latency_ms       BIGINT
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_sent_idx ON alert_deliveries (destination_id, sent_at) WHERE status = 'sent';
CREATE INDEX alert_deliveries_log_idx ON alert_deliveries (id DESC);

-- Dashboards may read the delivery log (no secrets in it).
GRANT SELECT ON alert_deliveries, alert_routes, alert_route_versions TO flagstream_readonly;
