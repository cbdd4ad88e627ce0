"""Data in an anonymous volume across a redeployment (redeploy.volumes_preserved): `down` + `up` gives the
service a new, empty volume and leaves the data behind (a FAIL naming both); a recreate in place keeps it (a
PASS). On the real engine, with a compose project of the test's own; the phase's wiring is exercised by
tests/realworld/test_realworld.py (PostgreSQL's data in its image's VOLUME)."""
from __future__ import annotations

import os
import subprocess

import pytest

from runbook_lib.engine.compose import Compose
from runbook_lib.phases.anonymous_volumes import anonymous_mounts, judge_anonymous
from runbook_lib.results.records import Check

COMPOSE = """services:
  store:
    image: runbook-demo/redis:local
    command: ["redis-server", "--save", "", "--appendonly", "no"]
    volumes:
      - /data
      - keep:/kept
volumes:
  keep:
"""


@pytest.mark.docker
def test_down_and_up_leaves_anonymous_data_behind_and_a_recreate_keeps_it(engine, tmp_path):
    project = f"rbtest-anon-{os.getpid()}"
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    compose = Compose([tmp_path / "compose.yaml"], project=project)
    run = lambda *a: compose.run(*a, timeout=180)  # noqa: E731
    check = Check("redeploy.volumes_preserved")
    try:
        run("up", "-d")
        before = anonymous_mounts(engine.project_containers(project))
        assert [(m["service"], m["target"]) for m in before] == [("store", "/data")], "the named volume is not anonymous"
        run("up", "-d", "--force-recreate")  # recreated in place: Compose carries the anonymous volume over
        [kept] = judge_anonymous(check, before, anonymous_mounts(engine.project_containers(project)))
        assert kept.status == "PASS" and kept.target == "store:/data"
        run("down")
        run("up", "-d")
        [lost] = judge_anonymous(check, before, anonymous_mounts(engine.project_containers(project)))
        assert lost.status == "FAIL" and lost.target == "store:/data"
        assert before[0]["volume"][:12] in lost.actual and "new, empty volume" in lost.actual
        assert judge_anonymous(check, [], []) == []  # nothing anonymous before: nothing to say
    finally:
        compose.run("down", "-v", timeout=180, check=False)
        for m in before if "before" in locals() else []:
            subprocess.run(["docker", "volume", "rm", m["volume"]], capture_output=True, timeout=60)
