"""Lint's fast paths answer exactly as the straightforward ones.

- Redaction (scrub_records) searches each distinct string once, not every record's JSON. It must redact
  exactly what scrubbing every record whole redacts, and it must also find secrets that JSON escaping would
  hide from a search of the records' JSON (non-ASCII characters, quotes, backslashes).
- git_tracked asks git per directory, not per file, with the answers asking per file gives.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

from conftest import ROOT

from runbook_lib.lint.run import NAME_FIELDS, scrub_records, string_values
from runbook_lib.results.records import CheckRecord
from runbook_lib.results.redact import Redactor

SECRETS = ["Zk9-secret-Value-7781xq", "pässwörd-Zk9-7781xq-ü", 'quote"Zk9-7781xq-back\\slash', "tab\tand\nnewline-Zk9x"]
SHAPES = ["Bearer abcdefghijklmnop", "basic QWxhZGRpbjpvcGVu", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnop"]


def _whole(records, red):
    """The reference: every record scrubbed whole."""
    return [CheckRecord.from_dict(red.scrub(dict(vars(r)), names=False, keep=NAME_FIELDS)) for r in records]


def _plain(records):
    return [{k: v for k, v in vars(r).items()} for r in records]


def _record(rng: random.Random, i: int) -> CheckRecord:
    words = ["svc", "no secret here", "127.0.0.1:8080", "/run/secrets/x", "", "Zk9", "Bear", "ey", "b",
             *SECRETS, *SHAPES]

    def text() -> str:
        return "".join(rng.choice(words) + rng.choice(["", " ", ":", "\x00", "é"]) for _ in range(rng.randint(0, 4)))

    evidence = {"source": "compose", "n": i, "flag": True, "nested": {"list": [text(), {"k": text()}], text(): 1},
                "tuple": (text(), 3), "none": None}
    return CheckRecord(id="x.check", phase="lint", title="T", target=f"svc-{i}", status="FAIL", severity="high",
                       expected=text() or "e", actual=text() or "a", evidence=evidence, command=text(),
                       remediation=text())


def test_scrub_records_redacts_exactly_what_scrubbing_every_record_does():
    rng = random.Random(17)
    red = Redactor(SECRETS)
    records = [_record(rng, i) for i in range(400)]
    got = scrub_records(records, red)
    assert _plain(got) == _plain(_whole(records, red))
    assert any(g is not r for g, r in zip(got, records)) and any(g is r for g, r in zip(got, records))
    values: list[str] = []
    for r in got:
        for name, v in vars(r).items():
            if name not in NAME_FIELDS:
                string_values(v, values)
    for secret in SECRETS:
        assert not any(secret in v for v in values)
    assert any(secret in k for r in got for k in r.evidence["nested"] for secret in SECRETS), "keys are names: kept"


def test_records_with_nothing_to_redact_are_kept_as_they_are():
    records = [CheckRecord(id="x", phase="lint", title="T", target="t", status="PASS", severity="low",
                           expected="e", actual="fine", evidence={"k": "v"})]
    assert scrub_records(records, Redactor(["Zk9-secret-Value-7781xq"]))[0] is records[0]


def test_a_secret_with_non_ascii_or_quote_characters_never_reaches_the_output(tmp_path):
    values = {"pw": "pässwörd-Zk9-7781xq-ü", "pw2": 'quote"Zk9-7781xq-back\\slash'}
    for name, value in values.items():
        (tmp_path / f"{name}.txt").write_text(value)
        os.chmod(tmp_path / f"{name}.txt", 0o400)
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          app:
            image: example/app:1.0
            secrets: [pw, pw2]
            healthcheck:
              test: ["CMD", "curl", "-u", "user:pässwörd-Zk9-7781xq-ü", "http://127.0.0.1/", "quote\\"Zk9-7781xq-back\\\\slash"]
        secrets:
          pw: {file: ./pw.txt}
          pw2: {file: ./pw2.txt}
        """))
    for fmt in ("json", "table", "sarif"):
        proc = subprocess.run([sys.executable, "-m", "runbook_lib.cli", "lint", str(tmp_path / "compose.yaml"),
                               "--format", fmt], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode in (0, 1), proc.stderr
        out = proc.stdout if fmt == "table" else json.dumps(json.loads(proc.stdout), ensure_ascii=False)
        assert "REDACTED" in out or fmt != "json"
        for value in values.values():
            assert value not in out and json.dumps(value, ensure_ascii=False)[1:-1] not in out, (fmt, value)


def _git_tracked_one_by_one(paths):
    """The reference: two git runs per file."""
    import shutil
    from pathlib import Path

    git = shutil.which("git")
    out = {}
    for p in paths:
        p = Path(p).resolve()
        if not p.parent.is_dir():
            out[p] = None
            continue
        top = subprocess.run([git, "-C", str(p.parent), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
        if top.returncode != 0:
            out[p] = None
            continue
        ls = subprocess.run([git, "-C", str(p.parent), "ls-files", "--error-unmatch", "--", p.name],
                            capture_output=True, text=True)
        out[p] = top.stdout.strip() if ls.returncode == 0 else None
    return out


def test_git_tracked_asks_git_per_directory_and_answers_as_per_file(tmp_path):
    import shutil

    import pytest

    from runbook_lib.lint.project_secrets import git_tracked

    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "secrets" / "sub").mkdir(parents=True)
    names = ["tracked.txt", "untracked.txt", "ignored.txt", "ab", "a*", "with space é.txt", "q?", "-dash"]
    for n in names:
        (repo / "secrets" / n).write_text("x")
    (repo / "secrets" / "sub" / "inside.txt").write_text("x")
    (repo / ".gitignore").write_text("secrets/ignored.txt\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "add", "secrets/tracked.txt", "secrets/ab", "secrets/with space é.txt",
                    "secrets/sub/inside.txt", "secrets/-dash"], check=True, env=env)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plain.txt").write_text("x")
    paths = [repo / "secrets" / n for n in names] + [repo / "secrets" / "sub", repo / "secrets" / "missing",
                                                     outside / "plain.txt", tmp_path / "no-dir" / "x",
                                                     repo / "secrets" / "tracked.txt"]
    got = git_tracked(paths)
    assert got == _git_tracked_one_by_one(paths)
    assert list(got) == list(dict.fromkeys(p.resolve() for p in paths))
    assert got[(repo / "secrets" / "tracked.txt").resolve()] and got[(repo / "secrets" / "a*").resolve()]
    assert got[(repo / "secrets" / "untracked.txt").resolve()] is None


def test_json_output_is_what_to_dict_gave():
    """format_json does not deep-copy every record (dataclasses.asdict), and its text is what asdict gives,
    nested dataclasses, paths and tuples included."""
    from pathlib import Path

    from runbook_lib.model.facts import FileState
    from runbook_lib.lint.output import decision, format_json
    from runbook_lib.lint.result import LintResult
    from runbook_lib.results.records import counts

    evidence = {"state": FileState("/run/secrets/x", True), "path": Path("/etc/x"), "pair": ("a", 1),
                "nested": {"list": [FileState("/y", False), {"deep": Path("z")}]}, "n": 1.5, "none": None}
    records = [CheckRecord(id="x.check", phase="lint", title="T", target="t", status="FAIL", severity="high",
                           expected="e", actual="a", evidence=evidence)]
    result = LintResult([Path("/tmp/compose.yaml")], records, services=["t"], profiles=["*"])
    old = json.dumps({"schema": 1, "files": ["/tmp/compose.yaml"], "counts": counts(records), "services": ["t"],
                      "profiles": ["*"], "not_linted": [], "summary": result.scope(), "exit_code": 1,
                      "fail_on": "high", "decision": decision(result),
                      "records": [r.to_dict() for r in records]}, indent=2, default=str)
    assert format_json(result) == old


def test_compose_gets_gogc_only_where_no_file_it_reads_can_name_it(tmp_path, monkeypatch):
    """GOGC=400 makes Compose's garbage collector run less often; it is also in the environment Compose
    interpolates from, so lint sets it only where no file Compose reads can refer to it."""
    from pathlib import Path

    from runbook_lib.engine.compose import Compose
    from runbook_lib.lint.run import COMPOSE_GOGC, compose_env

    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("COMPOSE_ENV_FILES", raising=False)
    monkeypatch.chdir(tmp_path)
    plain = tmp_path / "plain" / "compose.yaml"
    plain.parent.mkdir()
    plain.write_text("services:\n  web:\n    image: nginx:1.25\n")
    assert compose_env([plain], []) == {"GOGC": COMPOSE_GOGC}
    monkeypatch.setenv("GOGC", "50")
    assert compose_env([plain], []) == {}, "the user's own GOGC is left alone"
    monkeypatch.delenv("GOGC")
    for text in ("services:\n  web:\n    image: nginx:1.25\n    environment: [GOGC]\n",
                 "services:\n  web:\n    image: nginx:1.25\n    env_file: [app.env]\n",
                 "include: [other.yaml]\nservices: {}\n",
                 "services:\n  web:\n    extends: {file: base.yaml, service: web}\n"):
        f = tmp_path / "named" / "compose.yaml"
        f.parent.mkdir(exist_ok=True)
        f.write_text(text)
        assert compose_env([f], []) == {}, text
    env = tmp_path / "x.env"
    env.write_text("TAG=${gogc:-1}\n")
    assert compose_env([plain], [env]) == {}
    (plain.parent / ".env").write_text("A=$GOGC\n")
    assert compose_env([plain], []) == {}
    # and where a file names it, the model is what it was: ${GOGC} is unset, not COMPOSE_GOGC
    f = tmp_path / "ref" / "compose.yaml"
    f.parent.mkdir()
    f.write_text('services:\n  web:\n    image: nginx:1.25\n    environment:\n      GO_GC: "${GOGC:-unset}"\n')
    assert compose_env([f], []) == {}
    model = Compose([f], env=compose_env([Path(f)], [])).config()
    assert model["services"]["web"]["environment"]["GO_GC"] == "unset"
