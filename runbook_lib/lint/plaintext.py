"""Plaintext credentials wherever a value can hide: argv (command, entrypoint, healthcheck test), labels,
URLs with userinfo, and JSON or YAML documents inside a value. Shared by the environment rule
(``secrets.no_plaintext_env``) and the argv/labels rule (``secrets.no_plaintext_args``).

A literal is not a credential when it is empty, a boolean, a reference (``$VAR``, ``${VAR}``: the value is
taken from the environment at run time) or a path under the secrets directory. Findings carry a
``[REDACTED sha256:...]`` marker, never the value.
"""
from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any, Iterator

import yaml

from runbook_lib.results.redact import marker

if TYPE_CHECKING:
    from runbook_lib.params import Security

BOOLISH = {"true", "false", "yes", "no", "on", "off", "0", "1", "enabled", "disabled", "none", "null"}
URL_PASSWORD_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@", re.IGNORECASE)
# A flag whose name says it takes a credential: --requirepass, --password=..., --api-key, --auth-token
_FLAG_RE = re.compile(r"^--?([A-Za-z0-9][\w.-]*)(?:=(.*))?$", re.DOTALL)
_FLAG_NAME_RE = re.compile(r"(?i)(pass(word|wd|phrase)?|secret|token|api[-_]?key|credentials?|auth)$")
_FILE_FLAG_RE = re.compile(r"(?i)[-_](file|path|dir|type|method|mode)$")
# --user=name:password (TURN servers), -u name:password
_USER_FLAGS = {"--user", "-u", "--lt-cred-user"}
# NAME=value inside a shell string (sh -c "PGPASSWORD=x psql ...", export TOKEN=...)
_ASSIGN_RE = re.compile(r"(?<![\w$])([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s;&|]+)")
MAX_EMBEDDED = 64 << 10
MAX_EMBEDDED_NODES = 10_000


def is_literal(value: str, security: Security) -> bool:
    """Could ``value`` be a credential written in clear (not empty, boolean, a reference or a secret path)?"""
    v = value.strip().strip("\"'")
    if not v or v.lower() in BOOLISH:
        return False
    if v.startswith("$") or v.startswith(security.secrets_dir.rstrip("/") + "/"):
        return False
    return True


def embedded(value: str) -> Any:
    """A JSON or YAML document inside a value (a mapping or a list), or None. Bounded: at most 64 KiB and,
    for YAML, at most MAX_EMBEDDED_NODES nodes with aliases expanded."""
    v = value.strip()
    if len(v) > MAX_EMBEDDED or len(v) < 4:
        return None
    if v[0] in "{[":
        try:
            doc = json.loads(v)
            return doc if isinstance(doc, (dict, list)) else None
        except ValueError:
            pass
    if "\n" not in v or ":" not in v:
        return None
    from runbook_lib.lint.source import expanded_size
    try:
        node = yaml.compose(v, Loader=yaml.SafeLoader)
        if node is None or expanded_size(node) > MAX_EMBEDDED_NODES:
            return None
        doc = yaml.safe_load(v)
    except (yaml.YAMLError, RecursionError):
        return None
    return doc if isinstance(doc, (dict, list)) else None


def _walk(doc: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key, dotted path, value) of every mapping entry in a document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{path}.{k}" if path else str(k)
            yield str(k), p, v
            yield from _walk(v, p)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _walk(v, f"{path}[{i}]")


def in_document(doc: Any, security: Security) -> list[tuple[str, str]]:
    """(where, literal) for each credential-named key holding a literal string in a document."""
    out = []
    for key, path, v in _walk(doc):
        if isinstance(v, (str, int)) and not isinstance(v, bool) and security.looks_like_credential(key.replace("-", "_")) \
                and is_literal(str(v), security):
            out.append((path, str(v)))
    return out


def in_value(value: str, security: Security) -> list[tuple[str, str]]:
    """(reason, literal) for credentials inside one value: a URL with a password, JSON/YAML with a
    credential key, a NAME=value assignment with a credential name."""
    out = []
    for m in URL_PASSWORD_RE.finditer(value):
        if is_literal(m.group(1), security):
            out.append(("URL with an embedded password", m.group(1)))
    doc = embedded(value)
    if doc is not None:
        out += [(f"credential in an embedded document at {p}", v) for p, v in in_document(doc, security)]
    for m in _ASSIGN_RE.finditer(value):
        name, v = m.group(1), m.group(2).strip("\"'")
        if security.looks_like_credential(name) and not name.upper().endswith("_FILE") and is_literal(v, security):
            out.append((f"{name}= with a literal value", v))
    return out


def _split(tokens: list[str]) -> list[str]:
    """argv tokens, with shell strings (``sh -c "..."``, a one-string command) split into words too."""
    out = []
    for t in tokens:
        out.append(t)
        if " " in t.strip():
            try:
                out += shlex.split(t)
            except ValueError:
                out += t.split()
    return out


def in_argv(argv: list[str], security: Security) -> list[tuple[str, str]]:
    """(reason, literal) for credentials in an argv: a credential flag with a literal value (``--requirepass
    x``, ``--password=x``), ``--user=name:password``, ``redis-cli -a x``, and whatever :func:`in_value`
    finds in each token."""
    out: list[tuple[str, str]] = []
    words = _split(argv)
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        m = _FLAG_RE.match(w)
        if m:
            flag, val = m.group(1), m.group(2)
            val = nxt if val is None and not nxt.startswith("-") else (val or "")
            if w.split("=")[0] in _USER_FLAGS and ":" in val:
                user, _, pw = val.partition(":")
                if not pw.isdigit() and is_literal(pw, security):
                    out.append((f"{w.split('=')[0]} name:password", pw))
            elif _FLAG_NAME_RE.search(flag) and not _FILE_FLAG_RE.search(flag) and is_literal(val, security):
                out.append((f"--{flag} with a literal value", val))
            elif w == "-a" and any(x.endswith("redis-cli") for x in words[:i]) and is_literal(val, security):
                out.append(("redis-cli -a with a literal password", val))
    for t in argv:
        out += in_value(t, security)
    return list(dict.fromkeys(out))


def findings(where: str, hits: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"where": where, "reason": reason, "value": marker(v.strip())} for reason, v in hits]
