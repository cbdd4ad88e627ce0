"""The suite owns its stack: what the tests do to their demo never reaches a user's demo.

The "user's" demo here is a stand-in that this test deploys itself, under a name of its own on free
ports: exactly what `make demo` in another checkout (or a teammate's run) looks like to this suite. A
stand-in, not the real ``secureconnect-demo``: on a shared engine other people redeploy that one at any
moment, so comparing it would make this test fail for their reasons. (``conftest`` still compares the
real one, when it is up, over the whole session and says so at the end of the run; with
``--user-stack-must-stay`` a change there fails the run.)
"""
from __future__ import annotations

import pytest

from conftest import load_run, run_dir_from, snapshot
import runbook_demo as demo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_redeploying_and_drilling_the_test_stack_leaves_a_users_demo_untouched(demo_stack, demo_params, engine, cli,
                                                                                tmp_path):
    user = demo.Stack.isolated(tmp_path, prefix="rbuser")
    assert user.project != demo_stack.project and not set(user.ports.values()) & set(demo_stack.ports.values())
    user.up(progress=lambda s: None)
    try:
        before = snapshot(engine, user.project)
        assert len(before) == 9, before
        # the most invasive things the suite does to its own stack: a redeployment (down, leftovers
        # removed, up --remove-orphans) and the dependency drills (stop redis, stop minio)
        proc = cli("run", "--params", str(demo_params), "--output", str(tmp_path / "out"), "--phase", "00_preflight",
                   "--phase", "01_controlled_redeployment", "--phase", "04_smoke_tests")
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        summary, records = load_run(run_dir_from(proc.stdout))
        assert summary["project"] == demo_stack.project
        assert any(r["id"].startswith("smoke.drill.redis") and r["status"] == "PASS" for r in records)
        assert snapshot(engine, user.project) == before, "the user's demo was touched"
        assert all(v.ready for v in engine.project_containers(user.project))
    finally:
        user.down(volumes=True)
