#!/bin/bash
# The WordPress image's entrypoint (written for this suite, not copied): writes Debian's
# /etc/wordpress/config-default.php from WORDPRESS_DB_HOST / _USER / _PASSWORD / _NAME (each also as *_FILE),
# as the official image writes wp-config.php, then runs the command (Apache in the foreground).
set -euo pipefail

for name in HOST USER PASSWORD NAME; do
  file_var="WORDPRESS_DB_${name}_FILE"
  if [ -n "${!file_var:-}" ]; then
    export "WORDPRESS_DB_${name}=$(< "${!file_var}")"
  fi
done

php_string() {  # a value as a single-quoted PHP string literal
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\\\'}"
}

salt() { tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 64; }

config=/etc/wordpress/config-default.php
if [ ! -e "$config" ]; then
  {
    echo "<?php"
    echo "define('DB_NAME', $(php_string "${WORDPRESS_DB_NAME:-wordpress}"));"
    echo "define('DB_USER', $(php_string "${WORDPRESS_DB_USER:-example username}"));"
    echo "define('DB_PASSWORD', $(php_string "${WORDPRESS_DB_PASSWORD:-example password}"));"
    echo "define('DB_HOST', $(php_string "${WORDPRESS_DB_HOST:-mysql}"));"
    echo "define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');"
    for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
      echo "define('$key', '$(salt)');"
    done
    echo "if (!empty(\$_SERVER['HTTP_HOST'])) { define('WP_HOME', 'http://' . \$_SERVER['HTTP_HOST']); define('WP_SITEURL', WP_HOME); }"
  } > "$config"
  chown root:www-data "$config"
  chmod 640 "$config"
fi
exec "$@"
