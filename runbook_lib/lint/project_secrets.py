"""The rules that judge a project's secrets themselves, not a service: secrets declared and used by no
service, external ones, weak values, secret files committed to git; and what lint reads of the secrets
(the names the raw files declare, the values of the file secrets on the host)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from runbook_lib.errors import InputError
from runbook_lib.lint.rules import Verdict
from runbook_lib.lint.source import read_source
from runbook_lib.model.facts import ServiceFacts, read_secret_file
from runbook_lib.results.redact import entropy_bits, weakness

if TYPE_CHECKING:  # lint without --params reads the defaults (params/defaults.py), never pydantic's models
    from runbook_lib.params import Security


def declared_secrets(files: Iterable[Path]) -> dict[str, Path]:
    """Top-level secret names declared in the raw compose files (name -> first file declaring it).
    Needed only because ``compose config`` drops unused secrets from the model it prints. Files that
    cannot be read safely are skipped (Compose reports them)."""
    out: dict[str, Path] = {}
    for f in files:
        try:
            for name in read_source(Path(f)).declared_secrets:
                out.setdefault(name, Path(f))
        except InputError:
            continue
    return out


def host_secrets(model: Mapping[str, Any], names: Iterable[str] = ()) -> tuple[dict[str, str], dict[str, Path]]:
    """The model's file secrets on the host: (value -> secret name, secret name -> path). Only regular
    files up to 1 MiB are read, and only values that could identify a secret are returned (see
    :func:`~runbook_lib.results.redact.weakness`; ``names``: the project's own names, never a secret's identity)."""
    values, paths = {}, {}
    names = list(names)
    for name, spec in (model.get("secrets") or {}).items():
        if spec.get("file"):
            paths[name] = Path(spec["file"])
            v, _ = read_secret_file(paths[name])
            v = (v or "").strip()
            if v and weakness(v, names) is None:
                values.setdefault(v, name)
    return values, paths


def project_names(model: Mapping[str, Any]) -> list[str]:
    """The names a project shows everywhere (project, services, images): a secret equal to one is weak."""
    services = model.get("services") or {}
    images = [str(s.get("image") or "").rsplit("/", 1)[-1].split(":")[0] for s in services.values()]
    return [str(model.get("name") or ""), *services, *images]


# A name (a secret's, or a *_FILE variable's without _FILE) that says the value is a user or database name.
_IDENTIFIER_RE = re.compile(r"(?:^|[_.-])(?:USER(?:_?NAME)?|LOGIN|DB|DATABASE(?:_?NAME)?|DB_?NAME)$", re.IGNORECASE)


def identifier_secrets(model: Mapping[str, Any], facts: Iterable[ServiceFacts],
                       security: Security) -> dict[str, list[str]]:
    """Secrets that hold a user or database name, not a credential (zabbix's ``POSTGRES_USER`` secret read
    by ``POSTGRES_USER_FILE``): secret name -> the names that say so. A ``*_FILE`` variable must point at
    it, and every name (the secret's, and each such variable's, _FILE removed) must look like an identifier
    and none like a credential."""
    readers: dict[str, list[str]] = {}
    for f in facts:
        for var, value in f.environment.items():
            secret = f.secret_targets.get((value or "").strip())
            if secret and var.upper().endswith("_FILE"):
                readers.setdefault(secret, []).append(var[:-5])
    out = {}
    for name in model.get("secrets") or {}:
        if not readers.get(name):  # the variable the image reads it by is what says what it holds
            continue
        said = list(dict.fromkeys([name.lstrip("."), *sorted(readers[name])]))
        if all(_IDENTIFIER_RE.search(n) and not security.looks_like_credential(n) for n in said):
            out[name] = said
    return out


def judge_weak_value(name: str, path: Path, names: Iterable[str], identifier: list[str] | None = None) -> Verdict | None:
    """secrets.weak_value: a file secret's value is long and random enough to identify it (and so to be
    matched in outputs and redacted). None when the file cannot be read (secrets.mounted says why). A
    secret that holds a user or database name (``identifier``: the names that say so, see
    :func:`identifier_secrets`) is INFO: a name is not a credential, its strength is not judged."""
    value, why = read_secret_file(path)
    if value is None or not value.strip():
        return None
    v = value.strip()
    reason = weakness(v, names)
    ev = {"secret": name, "file": str(path), "length": len(v), "entropy_bits": round(entropy_bits(v), 1)}
    expected = "at least 8 characters, 30 bits of entropy, not a common password nor the project's own name"
    if identifier:
        ev["identifier"] = identifier
        return Verdict("INFO", expected, f"holds a user or database name ({', '.join(identifier)}), not a "
                       "credential: its strength is not judged", ev, severity="info")
    if reason:
        ev["weakness"] = reason
        return Verdict("FAIL", expected, f"weak value: {reason}; not matched in outputs", ev)
    return Verdict("PASS", expected, f"{len(v)} characters, {ev['entropy_bits']} bits", ev)


# File names git would read as a pathspec pattern or magic, not as the name itself.
_PATHSPEC_MAGIC = ("*", "?", "[", "\\", ":")


def git_tracked(paths: Iterable[Path], outside: set[Path] | None = None) -> dict[Path, str | None]:
    """path -> the work tree that tracks it (``git ls-files``), None when untracked or not in a work tree;
    ``outside``, when given, receives the paths that are in no work tree (nothing can say whether they are
    committed). Raises FileNotFoundError when git is not installed.

    Two git runs per directory (its work tree, then which of its files the index has), not two per file;
    a name git would read as a pattern, a directory, or a name the index has only in another case (a
    case-insensitive file system) is asked alone with ``--error-unmatch``."""
    git = shutil.which("git")
    if not git:
        raise FileNotFoundError("git")
    order = [Path(p).resolve() for p in paths]
    out: dict[Path, str | None] = {}
    by_dir: dict[Path, list[Path]] = {}
    for p in order:
        if not p.parent.is_dir():
            out[p] = None
        else:
            by_dir.setdefault(p.parent, []).append(p)
    for parent, files in by_dir.items():
        top = subprocess.run([git, "-C", str(parent), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=20)
        if top.returncode != 0:
            out.update((p, None) for p in files)
            if outside is not None:
                outside.update(files)
            continue
        tree = top.stdout.strip()
        plain = [p for p in dict.fromkeys(files) if not any(c in p.name for c in _PATHSPEC_MAGIC) and not p.is_dir()]
        listed: set[str] = set()
        if plain:
            ls = subprocess.run([git, "-C", str(parent), "ls-files", "-z", "--", *(p.name for p in plain)],
                                capture_output=True, text=True, timeout=20)
            if ls.returncode == 0:
                listed = set(ls.stdout.split("\0")) - {""}
            else:  # ask each file alone
                plain = []
        folded = {n.casefold() for n in listed}
        for p in dict.fromkeys(files):
            if p in plain and (p.name in listed or p.name.casefold() not in folded):
                out[p] = tree if p.name in listed else None
                continue
            ls = subprocess.run([git, "-C", str(parent), "ls-files", "--error-unmatch", "--", p.name],
                                capture_output=True, text=True, timeout=20)
            out[p] = tree if ls.returncode == 0 else None
    return {p: out[p] for p in order}


def judge_committed(name: str, path: Path, tracked: Mapping[Path, str | None],
                    outside: Iterable[Path] = ()) -> Verdict:
    """secrets.committed_file: a file secret tracked by git is a committed credential. A file in no git
    work tree (``outside``) is SKIP: no repository here says whether it is committed elsewhere."""
    repo = tracked.get(Path(path).resolve())
    ev = {"secret": name, "file": str(path), "git_work_tree": repo, "read": "git ls-files"}
    if Path(path).resolve() in set(outside):
        return Verdict("SKIP", "the secret file is not tracked by git", f"{Path(path).parent} is in no git work "
                       "tree: whether the file is committed cannot be checked here (lint it in the project's "
                       "checkout)", ev)
    if repo:
        return Verdict("FAIL", "the secret file is not tracked by git", f"{path} is tracked by git in {repo}", ev)
    return Verdict("PASS", "the secret file is not tracked by git", "not tracked by git", ev)


def secret_verdicts(model: Mapping[str, Any], paths: Mapping[str, Path], declared: Iterable[str],
                    used: set[str], swarm: bool = False,
                    identifiers: Mapping[str, list[str]] | None = None) -> Iterable[tuple[str, str, Verdict]]:
    """(rule id, secret name, verdict) of the rules judging the project's secrets themselves. ``swarm``:
    external secrets and configs are what a stack is expected to use: each is an INFO record saying it
    can only be checked against the swarm (phase 0 in swarm mode does), never a FAIL, never a PASS."""
    top = model.get("secrets") or {}
    for name in sorted(set(declared) - used):
        yield "secrets.declared_unused", name, Verdict("WARN", "used by a service", "declared but used by no service",
                                                       {"declared": True, "used_by": []})
    if swarm:
        for kind, objects in (("secret", top), ("config", model.get("configs") or {})):
            for name, spec in sorted(objects.items()):
                if spec.get("external"):
                    yield "secrets.external", name if kind == "secret" else f"config {name}", Verdict(
                        "INFO", f"an external {kind} that exists in the swarm",
                        f"external {kind} {spec.get('name') or name}: served by the swarm, not verifiable from the "
                        "file; phase 0 in swarm mode (preflight.swarm_objects) checks it exists, by name",
                        {kind: name, "name": spec.get("name") or name, "external": True, "swarm": True,
                         "checked": "declared external in the file; its existence is not checked by lint"},
                        severity="info")
    else:
        for name, spec in sorted(top.items()):
            if spec.get("external"):
                yield "secrets.external", name, Verdict(
                    "FAIL", "a file or environment secret", "external: true needs Swarm; `docker compose up` cannot "
                    "provide it", {"secret": name, "external": True})
    names = project_names(model)
    for name, path in sorted(paths.items()):
        v = judge_weak_value(name, path, names, (identifiers or {}).get(name))
        if v:
            yield "secrets.weak_value", name, v
    outside: set[Path] = set()
    try:
        tracked = git_tracked(paths.values(), outside)
    except (FileNotFoundError, OSError, subprocess.SubprocessError):
        tracked = None
    for name, path in sorted(paths.items()):
        if tracked is None:
            yield "secrets.committed_file", name, Verdict("SKIP", "the secret file is not tracked by git",
                                                          "git is not available", {"secret": name, "file": str(path)})
        elif Path(path).exists():
            yield "secrets.committed_file", name, judge_committed(name, path, tracked, outside)
