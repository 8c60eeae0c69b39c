-- app-monitor's PostgreSQL role: read-only statistics, nothing else.
--
-- Run once per cluster as a superuser (or a role with CREATEROLE that may grant
-- pg_monitor), connected to the database the monitor will watch:
--
--   psql "$DATABASE_URL" -f deploy/sql/monitoring-role.sql
--   psql "$DATABASE_URL" -c "\password app_monitor"
--
-- then point the target's url at postgresql://app_monitor:<password>@host/db.
-- It is idempotent: running it again changes nothing.
--
-- pg_monitor (PostgreSQL 10+) is enough for every collector: it includes
-- pg_read_all_stats (other sessions' state and start times, standbys' LSNs and lags,
-- other users' pg_stat_statements queryids), pg_read_all_settings and
-- pg_stat_scan_tables. Without it those values read as NULL, not as errors; the
-- monitor then leaves the series out and says so in its log and in `monitor check`.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'app_monitor') THEN
    CREATE ROLE app_monitor LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
      CONNECTION LIMIT 5;
  END IF;
END
$$;

GRANT pg_monitor TO app_monitor;

-- A monitoring session must never hold back vacuum or locks for long.
ALTER ROLE app_monitor SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE app_monitor SET lock_timeout = '1s';

-- pg_stat_statements must be in shared_preload_libraries and created in the database
-- the monitor connects to (any schema: it is looked up, e.g. heroku_ext on Heroku).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- Optional, for the sequence exhaustion check: reading a sequence's position needs
-- SELECT on it (which does not allow nextval). Repeat for each schema of the
-- application; the default privileges apply to sequences created later by the role
-- running this script (add FOR ROLE <owner> for the role that runs migrations).
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO app_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON SEQUENCES TO app_monitor;

-- Optional, for the bloat estimate: pg_stats shows the column statistics it needs only
-- for tables the role may read. On PostgreSQL 14+ this grants read access to ALL data,
-- so weigh it against your policy before enabling:
-- GRANT pg_read_all_data TO app_monitor;
