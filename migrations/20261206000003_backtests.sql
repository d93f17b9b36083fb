-- Backtests: a draft rule tried on traffic already in the Kafka topic. The API queues a job;
-- a consumer's backtest worker claims it (FOR UPDATE SKIP LOCKED, with a lease so a dead
-- worker's job is taken over), replays the range with its own Kafka client that has no
-- consumer group, and writes only here. Each checkpoint stores the read positions and the
-- tally together, so a job resumed after a crash counts every event exactly once.
CREATE TABLE backtests (
    id               BIGSERIAL   PRIMARY KEY,
    created_by       TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- `flagstream_rules::backtest::Draft`: the draft rules and the active ones they retire.
    draft            JSONB       NOT NULL,
    -- Either a Kafka-timestamp range [range_from, range_to) or the last `last_events`.
    range_from       TIMESTAMPTZ,
    range_to         TIMESTAMPTZ,
    last_events      BIGINT      CHECK (last_events > 0),
    status           TEXT        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    worker           TEXT,
    lease_until      TIMESTAMPTZ,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    -- Per partition: the offsets the range covers, fixed at the first claim, and what the
    -- topic still holds of it.
    plan             JSONB,
    -- Per partition: the next offset to read.
    positions        JSONB,
    scanned          BIGINT      NOT NULL DEFAULT 0,
    estimated_total  BIGINT,
    -- `flagstream_rules::backtest::Tally`, the counts so far; `result` is the report made
    -- from it when the job ends.
    tally            JSONB,
    result           JSONB,
    -- Why it stopped early (time or event limit), or why it failed.
    note             TEXT,
    expires_at       TIMESTAMPTZ,
    CHECK ((range_from IS NOT NULL) <> (last_events IS NOT NULL))
);
CREATE INDEX backtests_pending_idx ON backtests (id) WHERE status IN ('queued', 'running');
CREATE INDEX backtests_expires_idx ON backtests (expires_at) WHERE expires_at IS NOT NULL;
