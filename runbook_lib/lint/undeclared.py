"""One cause said once: a secret the services use but no compose file declares.

A base file can be incomplete by design: its secrets are declared in an override the project ships as an
example (``docker-compose.override.yml.example``). Compose refuses the model, and every rule that looks at
a secret would report the same absence again: the secret's file is missing (secrets.mounted), its
``*_FILE`` variable points at nothing (secrets.file_env), its mode cannot be read (secrets.file_mode), for
every service that uses it. Here the cause is said once, by ``secrets.undeclared`` on the first service
using the secret, naming the others and the example file that declares it; the other rules say "not judged:
undeclared" (INFO) for those secrets, and judge the rest as usual. Compose's own complaint
(compose.consistency) is kept beside it: it says the project does not start as it is.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from runbook_lib.errors import RunbookError
from runbook_lib.model.facts import FileState, ServiceFacts
from runbook_lib.lint.rules import Verdict
from runbook_lib.lint.source import YamlLoader, compose_file

_EXAMPLE_RE = re.compile(r"(?i)\.(example|sample|dist|template|tmpl)(\.ya?ml)?$|[._-](example|sample)\.ya?ml$")
MAX_EXAMPLE_BYTES = 1 << 20


def without(facts: ServiceFacts, undeclared: Iterable[str]) -> tuple[ServiceFacts, set[str]]:
    """``facts`` without the secrets in ``undeclared``, and the targets they had."""
    names = set(undeclared)
    gone = {t for t, n in facts.secret_targets.items() if n in names}
    if not gone:
        return facts, gone
    kept = {t: n for t, n in facts.secret_targets.items() if t not in gone}
    return dataclasses.replace(facts, secret_targets=kept), gone


def not_judged(v: Verdict, undeclared: list[str]) -> Verdict:
    """A secret rule's verdict once the undeclared secrets are left out: a PASS (or a SKIP) that judged
    nothing else becomes INFO saying why; a finding about the other secrets stands, naming them."""
    v.evidence["undeclared"] = undeclared
    if v.status in ("PASS", "SKIP"):
        return Verdict("INFO", v.expected, f"not judged: {', '.join(undeclared)} "
                       f"{'is' if len(undeclared) == 1 else 'are'} declared in no compose file linted (secrets.undeclared says so)"
                       + (f"; the rest: {v.actual}" if v.status == "PASS" and "no secret" not in v.actual else ""),
                       v.evidence, severity="info")
    return v


def missing_lookup(states: Mapping[str, FileState], gone: set[str]):
    """The file lookup of secrets.file_env: an undeclared secret's target is a file that does not exist."""
    return lambda path: FileState(path, exists=False) if path in gone else states.get(path)


def example_declarations(project_dir: Path | None) -> dict[str, str]:
    """secret name -> the example compose file beside the project that declares it (an override the
    project ships to be copied: ``*.example``, ``*.sample``, ``*.dist``...)."""
    out: dict[str, str] = {}
    if not project_dir or not Path(project_dir).is_dir():
        return out
    for f in sorted(Path(project_dir).iterdir()):
        try:
            if not _EXAMPLE_RE.search(f.name) or not f.is_file() or f.stat().st_size > MAX_EXAMPLE_BYTES:
                continue
            compose_file(f)  # refused as a compose file would be (an alias bomb) before it is loaded
            doc = yaml.load(f.read_text(encoding="utf-8", errors="replace"), Loader=YamlLoader)
        except (OSError, yaml.YAMLError, RunbookError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("secrets"), dict):
            for name in doc["secrets"]:
                out.setdefault(str(name), f.name)
    return out


def fold_undeclared(judged: list[tuple[str, str, Verdict]], project_dir: Path | None) -> None:
    """secrets.undeclared, one finding per secret: on the first service using it, naming the others and
    the example file that declares it (if one is beside the project); a service whose undeclared secrets
    are all reported on another is INFO. ``judged``: (rule, service, verdict), changed in place."""
    first: dict[str, tuple[str, Verdict]] = {}
    users: dict[str, list[str]] = {}
    for rule, service, v in judged:
        if rule != "secrets.undeclared" or v.status != "FAIL":
            continue
        mine = []
        for s in v.evidence.get("undeclared") or []:
            users.setdefault(s, []).append(service)
            if s not in first:
                first[s] = (service, v)
                mine.append(s)
        v.evidence["reported_here"] = mine
        if not mine:
            v.status, v.severity = "INFO", "info"
            v.actual = "; ".join(f"{s}: undeclared, reported for service {first[s][0]}"
                                 for s in v.evidence["undeclared"])
    if not first:
        return
    examples = example_declarations(project_dir)
    for service, v in {id(v): (s, v) for s, v in first.values()}.values():
        parts = []
        for s in v.evidence["reported_here"]:
            others = [u for u in users[s] if u != service]
            text = s + (f" (also used by {', '.join(others)})" if others else "")
            if s in examples:
                text += f": declared only in {examples[s]}, an example the project ships (copy it to use it)"
                v.evidence.setdefault("declared_in_example", {})[s] = examples[s]
            parts.append(text)
        v.actual = "undeclared: " + "; ".join(parts)

