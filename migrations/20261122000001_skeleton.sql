-- Flagged events and their evidence. Content (prompt/response) is not stored here: only
-- redacted excerpts, so a read of this table never exposes a secret that was sent to an LLM.
CREATE TABLE flags (
    id              BIGSERIAL PRIMARY KEY,
    event_id        TEXT        NOT NULL,
    event_time      TIMESTAMPTZ NOT NULL,
    ingested_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    src_ip          INET        NOT NULL,
    provider        TEXT        NOT NULL,
    model           TEXT        NOT NULL,
    endpoint        TEXT,
    method          TEXT,
    status_code     INTEGER,
    duration_ms     BIGINT,
    score           SMALLINT    NOT NULL CHECK (score BETWEEN 0 AND 100),
    severity        TEXT        NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status          TEXT        NOT NULL DEFAULT 'new',
    -- Where the event was read from. Unique, so a replay after a crash writes nothing twice.
    kafka_topic     TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX flags_event_time_idx ON flags (event_time DESC, id DESC);
CREATE INDEX flags_event_id_idx ON flags (event_id);

CREATE TABLE detections (
    id         BIGSERIAL PRIMARY KEY,
    flag_id    BIGINT  NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
    rule_id    TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    span_start INTEGER NOT NULL,
    span_end   INTEGER NOT NULL,
    excerpt    TEXT    NOT NULL
);
CREATE INDEX detections_flag_id_idx ON detections (flag_id);
CREATE INDEX detections_rule_id_idx ON detections (rule_id);

-- Messages that could not be read as events, kept with the reason so nothing is lost.
CREATE TABLE dead_letters (
    id              BIGSERIAL PRIMARY KEY,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    kafka_topic     TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    error_code      TEXT        NOT NULL,
    error           TEXT        NOT NULL,
    payload         BYTEA       NOT NULL,
    payload_size    INTEGER     NOT NULL,
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
