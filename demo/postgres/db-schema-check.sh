#!/bin/sh
# The init step's verification: reads the catalogue (not the init command's exit status) and prints one line,
# "schema ok: ..." only when the table, the role and exactly its privileges are there; otherwise what is
# missing or too broad, by name.
set -eu
PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
export PGPASSWORD PGHOST=/tmp PGUSER=postgres
if ! psql -X -At -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'secureconnect'" | grep -q 1; then
  echo "missing: database secureconnect (and so table public.app_users)"
  exit 1
fi
psql -X -At -v ON_ERROR_STOP=1 -d secureconnect <<'SQL'
SELECT CASE
  WHEN to_regclass('public.app_users') IS NULL THEN 'missing: table public.app_users'
  WHEN r.rolname IS NULL THEN 'missing: role auth_app'
  WHEN NOT r.rolcanlogin THEN 'wrong: role auth_app cannot log in'
  WHEN r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls
    THEN 'too broad: role auth_app has administrative attributes'
  WHEN NOT has_table_privilege('auth_app', 'public.app_users', 'SELECT, INSERT')
    THEN 'missing: SELECT and INSERT on public.app_users for role auth_app'
  WHEN has_table_privilege('auth_app', 'public.app_users', 'UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
    THEN 'too broad: role auth_app may change or delete rows of public.app_users'
  ELSE 'schema ok: table public.app_users; role auth_app (login, SELECT and INSERT only)'
END
FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = 'auth_app';
SQL
