#!/usr/bin/env bash
# Runs once, when the postgres image initialises an empty data directory
# (/docker-entrypoint-initdb.d). Creates the roles Flagstream's deployment needs so that
# nothing runs as the superuser:
#   flagstream           LOGIN, owner of the flagstream database: runs the migrations and
#                        the services (no CREATEROLE, no superuser).
#   flagstream_readonly  NOLOGIN group; the migration grants it SELECT on the
#                        dashboard-safe tables and columns. Created here because the
#                        owner role may not create roles; the migration skips it if present.
#   grafana_reader       LOGIN, member of flagstream_readonly: Grafana's PostgreSQL
#                        datasource. Read-only sessions with a statement timeout, so a
#                        heavy dashboard cannot hold locks or run away.
# Every statement is idempotent ("if absent"), so re-running it against a live cluster
# is safe. Passwords arrive as psql variables and are quoted by format(%L), never
# interpolated by the shell into SQL.
set -euo pipefail

: "${FLAGSTREAM_DB_PASSWORD:?FLAGSTREAM_DB_PASSWORD must be set}"
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD must be set}"
db=${POSTGRES_DB:-flagstream}

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "$db" \
  -v app_password="$FLAGSTREAM_DB_PASSWORD" \
  -v reader_password="$GRAFANA_DB_PASSWORD" \
  -v db="$db" <<'SQL'
SELECT format('CREATE ROLE flagstream LOGIN PASSWORD %L', :'app_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flagstream') \gexec

SELECT 'CREATE ROLE flagstream_readonly NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flagstream_readonly') \gexec

SELECT format('CREATE ROLE grafana_reader LOGIN PASSWORD %L IN ROLE flagstream_readonly',
              :'reader_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') \gexec

-- An existing grafana_reader (created by hand, say) still ends up in the group.
GRANT flagstream_readonly TO grafana_reader;
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';
ALTER ROLE grafana_reader CONNECTION LIMIT 10;

-- The owner creates the schema (PostgreSQL 15+: the database owner owns public) and can
-- grant on its own tables to flagstream_readonly.
SELECT format('ALTER DATABASE %I OWNER TO flagstream', :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO flagstream, flagstream_readonly;
SQL
