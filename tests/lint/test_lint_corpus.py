"""`runbook lint` over a corpus of real-world compose projects, each diffed against a golden
file of expected findings, so that a change in precision (a finding gained or lost) shows up in review.

tests/fixtures/compose/realworld/<project>/ holds the project's compose file (with a provenance header:
source, project and commit or version, licence, what was changed), whatever files it reads (env files,
extended files, secret files, stand-ins) and `expected-findings.txt`: one line per finding that is not PASS,
"STATUS SEVERITY CHECK TARGET", sorted. The file linted is the first of docker-compose.yml,
docker-compose.yaml, compose.yaml and compose.yml, unless `compose-files.txt` names the files (`-f`, in
order, one a line) because the project's file has another name or is several. Every YAML file of a project
starts with its provenance header. The Debian docker-compose fixtures one level up are linted too.
tests/fixtures/compose/README.md tells what each project covers and which findings are known to be wrong.
To accept a change on purpose:

    RUNBOOK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/lint/test_lint_corpus.py
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from runbook_lib.lint import lint_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compose"
REALWORLD = FIXTURES / "realworld"
DEFAULT_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")


def compose_files(d: Path) -> list[Path]:
    listed = d / "compose-files.txt"
    if listed.exists():
        names = [ln.strip() for ln in listed.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        return [d / n for n in names]
    return [next(d / n for n in DEFAULT_NAMES if (d / n).exists())]


def _projects() -> list[tuple[str, list[Path], Path]]:
    out = []
    for d in sorted(p for p in REALWORLD.iterdir() if p.is_dir()):
        out.append((d.name, compose_files(d), d / "expected-findings.txt"))
    for f in sorted(FIXTURES.glob("*.yaml")):
        out.append((f.stem, [f], REALWORLD / f"{f.stem}.expected-findings.txt"))
    return out


def _secret_files(files: list[Path]) -> list[Path]:
    """The files the projects' top-level `secrets:` read (`file:`), relative to the first compose file."""
    out = []
    for f in files:
        doc = yaml.safe_load(f.read_text()) or {}
        for spec in (doc.get("secrets") or {}).values():
            if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                out.append(files[0].parent / spec["file"])
    return out


def findings(files: list[Path]) -> list[str]:
    # Git keeps no mode but the executable bit, and a checkout's umask decides the rest: make the secret
    # files' mode the same on every checkout (secrets.file_mode reads it).
    for s in {*files[0].parent.glob("fixture-not-a-secret*"), *_secret_files(files)}:
        if s.is_file():
            os.chmod(s, 0o644)
    result = lint_files(files)
    return sorted(f"{r.status} {r.severity} {r.id} {r.target}" for r in result.records if r.status != "PASS")


# Every FAIL at high or critical severity on the corpus, with why it is a true finding. A new one fails
# test_every_high_or_critical_failure_is_listed_with_its_reason: read it, then list it here (or fix lint).
_RESTART = ("on-failure on a long-running server: a clean exit leaves it down, unlimited retries; phase 3's "
            "production.restart_policy fails it")
HIGH_OR_CRITICAL = {
    "airflow secrets.no_plaintext_env airflow-apiserver":
        "the JWT secret is the default of ${AIRFLOW__API_AUTH__JWT_SECRET}, the same in every install; reported once for 8 services",
    "awesome-compose-nginx-golang-mysql secrets.weak_value db-password":
        "the upstream's committed db/password.txt holds 8 characters, 24 bits: guessable",
    "awesome-compose-nginx-golang-mysql secrets.committed_file db-password":
        "db/password.txt is committed (upstream and in this repository): in every clone's history",
    "dockerspawner-internal-ssl hardening.docker_socket hub": "the hub mounts /var/run/docker.sock: root on the host",
    "dockerspawner-internal-ssl secrets.no_plaintext_env generate-certs":
        "CONFIGPROXY_AUTH_TOKEN from .env in plaintext in 3 services' environment; reported once",
    "dockerspawner-swarm hardening.docker_socket hub": "the hub mounts /var/run/docker.sock: root on the host",
    "dockerspawner-swarm secrets.no_plaintext_env hub":
        "CONFIGPROXY_AUTH_TOKEN from env_file .env in plaintext in 2 services' environment; reported once",
    "posthog-hobby secrets.no_plaintext_env asyncmigrationscheck":
        "ClickHouse passwords written in the compose file, shared by 4 services; reported once",
    "posthog-hobby secrets.no_plaintext_env objectstorage":
        "MinIO's root password written in the compose file, copied into 5 more variables; reported once",
    "posthog-hobby secrets.no_plaintext_env plugins":
        "ENCRYPTION_SALT_KEYS from .env in plaintext (and the MinIO key pair; its _ACCESS_KEY_ID half is a user name, see the README)",
    **{f"posthog-hobby service.restart_policy {t}": _RESTART for t in (
        "capture clickhouse cyclotron-janitor db feature-flags kafka livestream objectstorage plugins "
        "property-defs-rs redis redis7 replay-capture temporal temporal-django-worker web worker zookeeper").split()},
    "synthetic-gateway hardening.privileged agent": "planted: privileged: true",
    "synthetic-gateway hardening.host_pid agent": "planted: pid: host",
    "synthetic-gateway service.restart_policy agent": _RESTART,
    "synthetic-gateway service.restart_policy db": _RESTART,
    "synthetic-gateway hardening.admin_ports debug": "planted: the Node inspector (9229) on 0.0.0.0",
    "synthetic-gateway hardening.admin_ports gateway": "planted: Kong's admin API (8001) on 0.0.0.0",
    "synthetic-gateway secrets.no_plaintext_env gateway": "planted: SESSION_SALT from gateway.env in plaintext",
    "synthetic-gateway secrets.weak_value pg_password": "planted: a 7-character secret",
    "synthetic-gateway secrets.committed_file agent_token": "the fixture's secret files are committed here: true",
    "synthetic-gateway secrets.committed_file pg_password": "the fixture's secret files are committed here: true",
    "compose-pid-mode hardening.host_pid host": "the fixture's service `host` sets pid: host",
    "example-voting-app secrets.no_plaintext_env db": "POSTGRES_PASSWORD: \"postgres\" written in the compose file",
    "netbox-docker secrets.no_plaintext_env netbox":
        "database and Redis passwords and SECRET_KEY in plaintext env files (the upstream's published defaults), "
        "shared by 6 services; reported once",
}


@pytest.mark.parametrize("name,files,golden", _projects(), ids=[p[0] for p in _projects()])
def test_findings_match_the_golden_file(name, files, golden):
    for f in {*files, *files[0].parent.glob("*.y*ml")}:
        assert f.read_text().startswith("# Source: "), f"{f}: no provenance header"
    got = findings(files)
    if os.environ.get("RUNBOOK_UPDATE_GOLDEN"):
        golden.write_text("\n".join(got) + "\n")
    want = golden.read_text().splitlines()
    assert got == want, "\n".join(["findings changed (- golden, + now):"] + [f"- {w}" for w in want if w not in got]
                                  + [f"+ {g}" for g in got if g not in want])


def _upstream(header: str) -> str | None:
    """owner/name of the public project a provenance header names; None for a synthetic file."""
    if header.startswith("# Source: synthetic"):
        return None
    m = re.search(r"^# Project: ([\w.-]+/[\w.-]+)", header, re.M) or re.match(r"# Source: ([\w.-]+/[\w.-]+) ", header)
    assert m, f"a public file names its project: {header.splitlines()[0]}"
    return m.group(1)


def test_the_corpus_holds_licensed_public_projects_that_exercise_compose_features():
    public: dict[str, list[Path]] = {}  # upstream project -> its directories (or Debian fixture files)
    for name, files, golden in _projects():
        header = files[0].read_text().split("\n# Copied", 1)[0]
        project = _upstream(header)
        if project:
            assert "Licence:" in header or "(Apache-2.0)" in header.splitlines()[0], f"{name}: no licence"
            public.setdefault(project, []).append(files[0].parent if files[0].parent != FIXTURES else files[0])
    assert len(public) >= 8, f"{len(public)} public projects: {sorted(public)}"

    def texts(paths):
        return "\n".join(f.read_text(errors="replace") for p in paths
                         for f in ([p] if p.is_file() else [x for x in p.rglob("*") if x.is_file()]))

    real = texts([p for paths in public.values() for p in paths if p.is_dir()])
    # Compose features the public projects exercise (the synthetic project adds what none has).
    for needle in ("profiles:", "extends:", "env_file", "<<: *", "secrets:", "${", "build:"):
        assert needle in real, needle
    # locally built images with their Dockerfiles (images.pinned judges their FROM lines)
    assert any(re.search(r"(?m)^FROM [a-z]", f.read_text()) and "stand-in" not in f.read_text()
               for p in public.values() for d in p if d.is_dir() for f in d.rglob("Dockerfile"))
    goldens = "\n".join((p / "expected-findings.txt").read_text() for paths in public.values() for p in paths
                        if p.is_dir())
    for finding in ("secrets.committed_file", "secrets.weak_value", "secrets.no_plaintext_env"):
        assert finding in goldens, finding
    everything = texts([p for p in REALWORLD.iterdir() if p.is_dir()])
    assert "fixture-not-a-secret" in everything


def test_every_high_or_critical_failure_is_listed_with_its_reason():
    got = set()
    for name, files, golden in _projects():
        for line in golden.read_text().splitlines():
            status, severity, rule, target = line.split(" ", 3)
            if status == "FAIL" and severity in ("high", "critical"):
                got.add(f"{name} {rule} {target}")
    assert not got - set(HIGH_OR_CRITICAL), "new high/critical FAIL, say why it is true (or fix lint): " \
        + ", ".join(sorted(got - set(HIGH_OR_CRITICAL)))
    assert not set(HIGH_OR_CRITICAL) - got, "listed but no longer found: " + ", ".join(sorted(set(HIGH_OR_CRITICAL) - got))
