"""Issue 12: `runbook lint` over a corpus of real-world compose projects, each diffed against a golden
file of expected findings, so that a change in precision (a finding gained or lost) shows up in review.

tests/fixtures/compose/realworld/<project>/ holds the project's compose file (with a provenance header:
source, version, licence), whatever files it reads (env files, extended files, fixture secret files) and
`expected-findings.txt`: one line per finding that is not PASS, "STATUS SEVERITY CHECK TARGET", sorted.
The Debian docker-compose fixtures one level up are linted too. To accept a change on purpose:

    RUNBOOK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_lint_corpus.py
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbook_lib.lint import lint_files

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "compose"
REALWORLD = FIXTURES / "realworld"


def _projects() -> list[tuple[str, Path, Path]]:
    out = []
    for d in sorted(p for p in REALWORLD.iterdir() if p.is_dir()):
        compose = next(f for f in (d / "docker-compose.yml", d / "compose.yaml") if f.exists())
        out.append((d.name, compose, d / "expected-findings.txt"))
    for f in sorted(FIXTURES.glob("*.yaml")):
        out.append((f.stem, f, REALWORLD / f"{f.stem}.expected-findings.txt"))
    return out


def findings(compose: Path) -> list[str]:
    # Git does not keep file modes: make the fixture secret files' mode the same on every checkout.
    for s in compose.parent.glob("fixture-not-a-secret*"):
        os.chmod(s, 0o644)
    result = lint_files([compose])
    return sorted(f"{r.status} {r.severity} {r.id} {r.target}" for r in result.records if r.status != "PASS")


@pytest.mark.parametrize("name,compose,golden", _projects(), ids=[p[0] for p in _projects()])
def test_findings_match_the_golden_file(name, compose, golden):
    header = compose.read_text().splitlines()[0]
    assert header.startswith("# Source: "), f"{compose}: no provenance header"
    got = findings(compose)
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
