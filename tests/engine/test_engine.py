"""The engine wrapper against the real engine: what it creates it removes."""
from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.docker


def test_volume_events_show_a_volume_destroyed_and_recreated_under_the_same_name(engine):
    name = f"runbook-test-{uuid.uuid4().hex[:8]}"
    engine.api.create_volume(name)
    t0 = time.time()
    try:
        engine.api.remove_volume(name)
        engine.api.create_volume(name)
        events = engine.volume_events(t0 - 1, time.time() + 1)
    finally:
        engine.api.remove_volume(name, force=True)
    mine = [e["action"] for e in events if e["volume"] == name]
    assert mine[-2:] == ["destroy", "create"], mine  # the first create may fall inside the window too


def test_wait_ready_returns_when_a_healthy_container_is_ready_and_times_out_on_an_unhealthy_one(engine):
    project = f"rbtest{uuid.uuid4().hex[:6]}"
    labels = {"com.docker.compose.project": project}
    made = []
    try:
        for svc, test in (("good", ["CMD", "true"]), ("bad", ["CMD", "false"])):
            c = engine.client.containers.run(
                "runbook-demo/app:local", ["120"], entrypoint=["sleep"], detach=True, name=f"{project}-{svc}",
                labels={**labels, "com.docker.compose.service": svc},
                # timeout 5 s: on a loaded host the probe's exec alone can outlast 1 s (exit -1, not false's 1)
                healthcheck={"test": test, "interval": 500_000_000, "timeout": 5_000_000_000, "retries": 1})
            made.append(c)
        t0 = time.monotonic()
        ok, views = engine.wait_ready(project, ["good"], timeout=30)
        assert ok and time.monotonic() - t0 < 20
        assert {v.service: v.health for v in views} == {"good": "healthy"}
        t0 = time.monotonic()
        ok, views = engine.wait_ready(project, ["good", "bad"], timeout=4)
        waited = time.monotonic() - t0
        assert not ok and 3.5 < waited < 15
        bad = next(v for v in views if v.service == "bad")
        assert bad.health == "unhealthy" and bad.health_log and bad.health_log[-1]["exit_code"] == 1
    finally:
        for c in made:
            c.remove(force=True)
