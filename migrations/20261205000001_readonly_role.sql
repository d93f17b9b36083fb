-- A read-only group role for dashboards (Grafana's PostgreSQL datasource) and ad-hoc
-- analysis. It can read what the security team's dashboards show and nothing that would
-- let a reader act as someone or see what was sent to an LLM: no users, API keys or audit
-- log, no sealed content (flags.content) and no raw dead-letter payloads. Grants are by
-- column where a table holds such a column, so a column added later stays unreadable until
-- a migration grants it.
--
-- The role cannot log in; a deployment creates a login role that is a member of it
-- (`CREATE ROLE grafana_reader LOGIN PASSWORD '…' IN ROLE flagstream_readonly`). Roles are
-- cluster-wide, so it may exist already (another database, or created by a DBA when the
-- migrating user may not create roles).
-- Two databases of one cluster migrating at once can both find it missing: the loser's
-- error is caught.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flagstream_readonly') THEN
        CREATE ROLE flagstream_readonly NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO flagstream_readonly;

GRANT SELECT ON detections, traffic_rollups, rules, rule_versions, flag_history, consumer_offsets
    TO flagstream_readonly;

GRANT SELECT (id, event_id, event_time, ingested_at, src_ip, provider, model, endpoint, method,
              status_code, duration_ms, score, severity, status, kafka_topic, kafka_partition,
              kafka_offset, user_id, app, team, tokens_in, tokens_out, cost_usd, categories,
              rule_set_version, content_mode, assignee)
    ON flags TO flagstream_readonly;

GRANT SELECT (id, received_at, kafka_topic, kafka_partition, kafka_offset, error_code, error,
              payload_size)
    ON dead_letters TO flagstream_readonly;
