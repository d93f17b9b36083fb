-- A stored flag as alerting sees it, as one JSON document per flag (the shape of
-- `flagstream_rules::alert::AlertFlag`): the consumer's dispatcher and the API's dry-run
-- both read this view, so the two cannot load a flag differently.
CREATE VIEW alert_flags AS
SELECT f.id,
       f.event_time,
       jsonb_build_object(
           'id', f.id,
           'event_time', f.event_time,
           'score', f.score,
           'severity', f.severity,
           'categories', f.categories,
           'model', f.model,
           'provider', f.provider,
           'src_ip', host(f.src_ip),
           'user', f.user_id,
           'app', f.app,
           'detections', COALESCE(
               (SELECT jsonb_agg(jsonb_build_object(
                           'rule_id', d.rule_id, 'rule_version', d.rule_version,
                           'field', d.field, 'excerpt', d.excerpt, 'shadow', d.shadow)
                       ORDER BY d.id)
                FROM detections d WHERE d.flag_id = f.id),
               '[]'::jsonb)) AS flag
FROM flags f;
