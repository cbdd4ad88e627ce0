#!/bin/sh
# The post-deploy init step (parameters' redeploy.init_steps): the database auth-service keeps its users in,
# its table, and the role auth-service logs in as, which may only read and add users. Idempotent. Passwords
# are read from the secret files by the shell of this container; none is ever on a command line.
set -eu
PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
export PGPASSWORD PGHOST=/tmp PGUSER=postgres
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SELECT 'CREATE DATABASE secureconnect' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'secureconnect')\gexec
SQL
psql -X -q -v ON_ERROR_STOP=1 -d secureconnect -f /usr/local/share/demo-db/schema.sql
echo "schema applied: database secureconnect, table public.app_users, role auth_app"
