#!/bin/sh
# coturn of the demo: the TURN/STUN server video calls relay through. Long-term credentials: the user named by
# TURN_USER, its password read from the file TURN_PASSWORD_FILE names, written into a configuration file on the
# tmpfs (never on a command line, where `ps` and the runbook's process checks would see it).
set -eu
pw_file="${TURN_PASSWORD_FILE:-}"
if [ -z "$pw_file" ] || [ ! -s "$pw_file" ]; then
  echo "coturn: TURN_PASSWORD_FILE must name a non-empty secret file (got '${pw_file}')" >&2
  exit 2
fi
conf=/tmp/turnserver.conf
umask 077
{
  echo "realm=${TURN_REALM:-secureconnect.example}"
  echo "lt-cred-mech"
  echo "user=${TURN_USER:-secureconnect}:$(cat "$pw_file")"
  cat /etc/coturn/turnserver.conf
} > "$conf"
exec turnserver -c "$conf" "$@"
