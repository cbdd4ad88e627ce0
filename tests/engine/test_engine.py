"""The engine wrapper against the real engine: what it creates it removes."""
from __future__ import annotations

import contextlib
import time
import uuid

import docker

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


def test_event_windows_are_asked_on_the_engines_clock(engine):
    """The engine filters events by its own clock. Measured here, the offset is about 0 (same host); a remote
    engine's may not be. With the measured offset the window finds the volume's events; with the engine
    pretended an hour behind, the same local window is an hour of the engine's past and finds none of them."""
    from runbook_lib.engine import Engine

    offset = engine.clock_offset_s()
    assert offset is not None and abs(offset) < 2, offset
    name = f"runbook-test-{uuid.uuid4().hex[:8]}"
    t0 = time.time()
    engine.api.create_volume(name)
    try:
        engine.api.remove_volume(name)
        t1 = time.time() + 1
        assert [e["action"] for e in engine.volume_events(t0 - 1, t1) if e["volume"] == name] == ["create", "destroy"]
        behind = Engine()
        behind._clock_offset = (-3600.0,)  # as if measured on an engine an hour behind this machine
        assert [e for e in behind.volume_events(t0 - 1, t1) if e["volume"] == name] == []
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_volume(name, force=True)


def test_engine_times_read_nanoseconds_offsets_and_the_zero_time():
    from datetime import datetime, timezone

    from runbook_lib.engine.event_calls import engine_time
    from runbook_lib.phases.production.runtime import _uptime_s

    utc = timezone.utc
    assert engine_time("2026-12-07T19:06:02.123456789Z") == datetime(2026, 12, 7, 19, 6, 2, 123456, utc)
    assert engine_time("2026-12-07T20:06:02+01:00") == datetime(2026, 12, 7, 19, 6, 2, tzinfo=utc)
    assert engine_time("2026-12-07T19:06:02.5") == datetime(2026, 12, 7, 19, 6, 2, 500000, utc)  # no zone: UTC
    assert engine_time("0001-01-01T00:00:00Z") is None and engine_time("") is None and engine_time("soon") is None
    started = "2026-12-07T19:00:00.000000001Z"
    engine_now = datetime(2026, 12, 7, 19, 10, tzinfo=utc).timestamp()
    assert _uptime_s(started, engine_now) == 600.0 and _uptime_s("0001-01-01T00:00:00Z", engine_now) is None
