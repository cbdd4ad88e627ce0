#!/bin/bash
# The MariaDB image's entrypoint (written for this suite, not copied): the official images' documented
# interface: MYSQL_ROOT_PASSWORD / MYSQL_DATABASE / MYSQL_USER / MYSQL_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD
# (MARIADB_* likewise, each also as *_FILE). Starts as root, prepares the data directory, drops to `mysql`.
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
  exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p /var/lib/mysql /run/mysqld
  chown -R mysql:mysql /var/lib/mysql /run/mysqld
  exec gosu mysql "$0" "$@"
fi

for name in ROOT_PASSWORD DATABASE USER PASSWORD RANDOM_ROOT_PASSWORD ALLOW_EMPTY_ROOT_PASSWORD; do
  for prefix in MARIADB MYSQL; do
    file_var="${prefix}_${name}_FILE"
    if [ -n "${!file_var:-}" ]; then
      export "${prefix}_${name}=$(< "${!file_var}")"
    fi
  done
  both="MARIADB_${name}"; mysql_var="MYSQL_${name}"
  export "$both=${!both:-${!mysql_var:-}}"
done

sql_string() {  # a value as a quoted SQL string literal
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\'\'}"
}

if [ ! -d /var/lib/mysql/mysql ]; then
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
    echo "error: database is uninitialized and no root password option is given (MYSQL_ROOT_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD)" >&2
    exit 1
  fi
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD="$(tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32)"
    echo "entrypoint: a random root password was set (not printed)"
  fi
  echo "entrypoint: initializing the database in /var/lib/mysql"
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=normal >/dev/null
  mariadbd --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  for _ in $(seq 60); do
    mariadb-admin --socket=/run/mysqld/init.sock ping >/dev/null 2>&1 && break
    sleep 1
  done
  root_pw=$(sql_string "$MARIADB_ROOT_PASSWORD")
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DELETE FROM mysql.user WHERE user='';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY ${root_pw};"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY ${root_pw};"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$MARIADB_DATABASE" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE}\`;"
    fi
    if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
      echo "CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"
      if [ -n "$MARIADB_DATABASE" ]; then
        echo "GRANT ALL ON \`${MARIADB_DATABASE}\`.* TO $(sql_string "$MARIADB_USER")@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket=/run/mysqld/init.sock -uroot
  mariadb-admin --socket=/run/mysqld/init.sock -uroot --password="$MARIADB_ROOT_PASSWORD" shutdown
  wait "$pid"
  echo "entrypoint: initialization done"
fi
exec "$@"
