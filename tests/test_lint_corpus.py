"""Issue 12: `runbook lint` over a corpus of real-world compose projects, each diffed against a golden
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

    RUNBOOK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_lint_corpus.py
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from runbook_lib.lint import lint_files

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "compose"
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


def test_the_corpus_covers_what_the_issue_asks_for():
    texts = {d.name: "\n".join(f.read_text(errors="replace") for f in d.iterdir() if f.is_file())
             for d in REALWORLD.iterdir() if d.is_dir()}
    public = [n for n, t in texts.items() if "Licence:" in t and "synthetic" not in t.splitlines()[0]]
    assert len(public) + len(list(FIXTURES.glob("*.yaml"))) >= 5
    everything = "\n".join(texts.values())
    for needle in ("profiles:", "extends:", "env_file", "<<: *", "fixture-not-a-secret"):
        assert needle in everything, needle
