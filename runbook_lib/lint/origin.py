"""Where a value of the resolved compose model comes from, and one finding per plaintext value.

``docker compose config`` prints every variable resolved: a password written in the compose file, one
read from ``.env`` through ``${DB_PASSWORD}``, one from a service's ``env_file`` and the default of
``${API_TOKEN:-...}`` all look alike. :class:`Origins` reads the files as written (the compose files, the
files they ``extends``, their ``env_file`` entries, ``.env`` or the ``--env-file`` files) and says which it
is. :func:`fold_plaintext` then makes one value one finding: a value shared by many services (an anchor,
one ``.env`` line) is reported once, on the first service, naming the others; the others' records say
where it was reported.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from runbook_lib.errors import RunbookError
from runbook_lib.model.facts import ServiceFacts
from runbook_lib.lint.plaintext import URL_PASSWORD_RE
from runbook_lib.lint.rules import Verdict
from runbook_lib.lint.source import YamlLoader, compose_file

_DEFAULT_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-([^}]*)\}")
_REF_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_LITERAL = "credential name with a literal value"
# a value found inside a longer one (a password inside a URL) only when it is at least this long
_MIN_PART = 8


def _dotenv(path: Path) -> list[tuple[str, str, int]]:
    """(name, value, line) of a dotenv file, as Compose reads it (``export``, quotes); [] when unreadable."""
    out = []
    try:
        if not path.is_file() or path.stat().st_size > (1 << 20):
            return []
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out.append((name.strip(), value, n))
    return out


def _subst(text: str) -> str:
    """``${X:-default}`` as Compose would read it when X is unset (an env_file path such as airflow's)."""
    return _DEFAULT_RE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2), text)


class Origins:
    """What the files as written say about where each value comes from."""

    def __init__(self, files: Iterable[Path], env_files: Iterable[Path] = (), project_dir: Path | None = None):
        self.files = [Path(f) for f in files]
        self.texts: dict[Path, str] = {}
        env_file_paths: list[Path] = []
        todo = list(self.files)
        while todo:  # the compose files and the files they extend
            f = todo.pop(0)
            if f in self.texts or not f.is_file():
                continue
            try:
                if f not in self.files:  # an extended file: refused as a compose file would be (alias bombs)
                    compose_file(f)
                self.texts[f] = f.read_text(encoding="utf-8", errors="replace")
                doc = yaml.load(self.texts[f], Loader=YamlLoader) or {}
            except (OSError, yaml.YAMLError, RunbookError):
                continue
            for spec in (doc.get("services") or {}).values() if isinstance(doc, dict) else []:
                if not isinstance(spec, dict):
                    continue
                ext = spec.get("extends")
                if isinstance(ext, dict) and isinstance(ext.get("file"), str):
                    todo.append(f.parent / _subst(ext["file"]))
                entries = spec.get("env_file") or []
                for e in [entries] if isinstance(entries, (str, dict)) else entries:
                    p = e.get("path") if isinstance(e, dict) else e
                    if isinstance(p, str):
                        env_file_paths.append(f.parent / _subst(p))
        dotenv = list(env_files) or ([Path(project_dir or self.files[0].parent) / ".env"] if self.files else [])
        # value -> (where it is written, kind), the first file naming it; the same value under the variable's
        # own name wins
        self.dotenv: dict[str, tuple[str, str]] = {}
        self.env_file: dict[str, tuple[str, str]] = {}
        self.named: dict[tuple[str, str], tuple[str, str]] = {}
        for p in dotenv:
            for k, v, n in _dotenv(Path(p)):
                if v:
                    self.dotenv.setdefault(v, (f"{Path(p).name} line {n} ({k})", "dotenv"))
        for p in dict.fromkeys(env_file_paths):
            for k, v, n in _dotenv(p):
                if v:
                    self.env_file.setdefault(v, (f"env_file {p.name} line {n} ({k})", "env_file"))
                    self.named.setdefault((k, v), (f"env_file {p.name} line {n} ({k})", "env_file"))
        self.defaults: dict[str, tuple[str, str]] = {}
        self.referenced: set[str] = set()
        for f, text in self.texts.items():
            for m in _DEFAULT_RE.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                self.defaults.setdefault(m.group(2), (f"the default of ${{{m.group(1)}}} in {f.name} line {line}",
                                                      "interpolation_default"))
            self.referenced.update(m.group(1) for m in _REF_RE.finditer(text))

    def of(self, value: str, part: str = "", variable: str = "") -> dict[str, str]:
        """{"origin": literal | dotenv | env_file | interpolation_default | environment, "where": text} of
        a resolved ``value`` (``part``: the credential inside it, a URL's password) of ``variable``."""
        if (variable, value) in self.named:
            where, kind = self.named[(variable, value)]
            return {"where": where, "origin": kind}
        for table in (self.env_file, self.dotenv, self.defaults):
            for v in (value, part):
                if v and v in table:
                    return {"where": table[v][0], "origin": table[v][1]}
            for known, (where, kind) in table.items():
                if len(known) >= _MIN_PART and known in value:
                    return {"where": where, "origin": kind}
        shell = next((n for n in sorted(self.referenced) if os.environ.get(n) and os.environ[n] in (value, part)), None)
        if shell:
            return {"where": f"the environment lint ran in (${shell})", "origin": "environment"}
        return {"where": "written in the compose file", "origin": "literal"}


def _text(f: dict[str, Any]) -> str:
    return f"{f['variable']}: {f['reason']}"


def fold_plaintext(judged: list[tuple[str, str, Verdict]], facts: Mapping[str, ServiceFacts],
                   origins: Callable[[], Origins | None] = lambda: None) -> None:
    """secrets.no_plaintext_env, one finding per value: each finding says where its value comes from
    (:meth:`Origins.of`); a value already reported for an earlier service is left out of a later one's
    record and named on the first ("same value in ..."). A record left with no finding of its own is INFO,
    naming where its values were reported. ``judged``: (rule, service, verdict), changed in place;
    ``origins`` builds the :class:`Origins` when a finding first needs it (the files are read only then)."""
    first: dict[str, dict[str, Any]] = {}  # value marker -> the finding that reports it
    known: list[Origins | None] = []
    for rule, service, v in judged:
        if rule != "secrets.no_plaintext_env" or v.status != "FAIL" or not v.evidence.get("findings"):
            continue
        kept, elsewhere = [], []
        for f in v.evidence["findings"]:
            value = facts[service].environment.get(f["variable"]) or ""
            url = URL_PASSWORD_RE.search(value)
            if not known:
                known.append(origins())
            if known[0] is not None:
                f.update(known[0].of(value.strip(), url.group(1) if url else "", f["variable"]))
                if f["reason"] == _LITERAL and f["origin"] != "literal":
                    f["reason"] = f"credential name with a value from {f['where']}"
                elif f["reason"] == _LITERAL:
                    f["reason"] = f"{_LITERAL} ({f['where']})"
            seen = first.get(f["value"])
            if seen is None:
                first[f["value"]] = f
                kept.append(f)
            else:
                seen.setdefault("same_value_in", []).append(f"{service} {f['variable']}")
                elsewhere.append({"variable": f["variable"], "reported_for": seen["service"], "value": f["value"]})
            f.setdefault("service", service)
        v.evidence["findings"] = kept
        if elsewhere:
            v.evidence["reported_elsewhere"] = elsewhere
        if not kept:
            v.status, v.severity = "INFO", "info"
            v.actual = "; ".join(f"{e['variable']}: the same value as reported for service {e['reported_for']} "
                                 "(one finding per value)" for e in elsewhere)
    for rule, service, v in judged:
        if rule == "secrets.no_plaintext_env" and v.status == "FAIL" and v.evidence.get("findings"):
            v.actual = "; ".join([_text(f) + (f" (same value in {len(f['same_value_in'])} more: "
                                              f"{', '.join(f['same_value_in'])})" if f.get("same_value_in") else "")
                                  for f in v.evidence["findings"]]
                                 + [f"{e['variable']}: reported for service {e['reported_for']}"
                                    for e in v.evidence.get("reported_elsewhere") or []])
