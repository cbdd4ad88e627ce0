#!/bin/sh
# PostgreSQL of the demo (the stand-in for SecureConnect's CockroachDB: same wire protocol). Runs as the
# container user; the cluster lives in the data volume, created on first start with the superuser password
# read from the file POSTGRES_PASSWORD_FILE names (never from the environment or the command line).
set -eu
PGDATA="${PGDATA:-/data/pgdata}"
pw_file="${POSTGRES_PASSWORD_FILE:-}"
if [ -z "$pw_file" ] || [ ! -s "$pw_file" ]; then
  echo "postgres: POSTGRES_PASSWORD_FILE must name a non-empty secret file (got '${pw_file}')" >&2
  exit 2
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # its output only on failure: on success it is a page of progress and a warning about system locales
  # (this image has none: the cluster uses the C locale)
  # --no-sync: a fresh demo cluster is not flushed to disk file by file (seconds on a busy disk); the server
  # itself syncs as usual once it runs
  if ! initdb -D "$PGDATA" -U postgres --pwfile="$pw_file" --auth=scram-sha-256 --encoding=UTF8 --no-locale --no-sync \
       --no-instructions >/tmp/initdb.log 2>&1; then
    cat /tmp/initdb.log >&2
    exit 1
  fi
  # password (SCRAM) authentication for everyone, over the socket and the network alike
  printf 'local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\n' > "$PGDATA/pg_hba.conf"
  # The application's database and login role (as the official image's POSTGRES_DB/POSTGRES_USER do), so its
  # clients can connect from the start; the role may do nothing yet. Its tables and privileges are the
  # post-deploy init step's (db-init). The password goes in on stdin, never on a command line.
  if [ -n "${POSTGRES_DB:-}" ] && [ -n "${APP_DB_USER:-}" ] && [ -s "${APP_DB_PASSWORD_FILE:-}" ]; then
    { echo "CREATE DATABASE \"$POSTGRES_DB\""
      printf "CREATE ROLE \"%s\" LOGIN PASSWORD '%s'\n" "$APP_DB_USER" "$(sed "s/'/''/g" "$APP_DB_PASSWORD_FILE")"
    } | postgres --single -D "$PGDATA" postgres >/tmp/single.log 2>&1 || echo "ERROR: exit status $?" >>/tmp/single.log
    if grep -q "ERROR" /tmp/single.log; then  # single-user mode carries on past a failed statement
      cat /tmp/single.log >&2
      rm -rf "$PGDATA"  # the next start makes it all again
      exit 1
    fi
  fi
fi
# small: a demo database inside a 128 MB limit; the socket in /tmp (the root filesystem is read-only)
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c shared_buffers=16MB \
  -c max_connections=20 -c jit=off -c password_encryption=scram-sha-256 -c log_min_messages=warning \
  -c log_min_error_statement=panic "$@"
