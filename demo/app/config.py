"""Configuration and secrets of every role: the ``*_FILE`` secret files read once at start, and the one JSON
log line per event on stdout."""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys


class ConfigError(Exception):
    """A required setting or secret file is missing: the process exits non-zero naming it."""


def read_secret(var: str) -> str:
    """The content of the file named by environment variable ``var`` (stripped).

    Raises ConfigError naming the variable (never the value) if it is unset, unreadable or empty.
    """
    path = os.environ.get(var, "").strip()
    if not path:
        raise ConfigError(f"{var} is not set")
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"{var}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{var}: {path} is empty")
    return value


def log(event: str, **fields) -> None:
    """One JSON line on stdout. Callers never pass secret values or request headers."""
    record = {"ts": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
              "service": os.environ.get("SERVICE_NAME", "unknown"), "event": event, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()
