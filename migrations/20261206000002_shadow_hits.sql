-- An event that only shadow-mode rules matched is stored as a flag marked `shadow_only`, so
-- those hits can be searched, revealed and triaged (the verdicts are what measure a shadow
-- rule's precision before it is promoted). It is not a finding: its score is 0, it never
-- enters the alert outbox, and search, export, stats and the dashboards leave it out unless
-- asked for. A constant default, so adding the column rewrites nothing.
ALTER TABLE flags ADD COLUMN shadow_only BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX flags_shadow_only_idx ON flags (event_time DESC, id DESC) WHERE shadow_only;
-- Dashboards filter on it.
GRANT SELECT (shadow_only) ON flags TO flagstream_readonly;
