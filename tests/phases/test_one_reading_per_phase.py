"""One reading of the deployment per read-only phase: in a run, the checks of phases 0, 2, 3 and 5
judge one `docker inspect` of each container, taken as the phase opens; interactively each `phase.run` call
reads anew; the phases that change the deployment always read anew; prod.stability judges a reading taken
after its observation window (a container killed during it FAILs); the stats samples prod.resources judges
are taken in the background as phase 3 opens in a run, never ahead interactively; each image is inspected
once for all the containers that run it."""
from __future__ import annotations

import collections
import threading
import time

import pytest

import runbook_lib as rb
from runbook_lib.engine.client import Engine
from runbook_lib.engine.pool import OncePerKey
from runbook_lib.phases import preflight, production, security

pytestmark = [pytest.mark.docker]

READS = ("_inspect_all", "image_config", "image_id", "stats")


@pytest.fixture
def calls(monkeypatch):
    """How often each engine reading was made, whatever the thread (counted on the class)."""
    counted: collections.Counter = collections.Counter()
    lock = threading.Lock()
    for name in READS:
        original = getattr(Engine, name)

        def wrapper(self, *a, __original=original, __name=name, **k):
            with lock:
                counted[__name] += 1
            return __original(self, *a, **k)

        monkeypatch.setattr(Engine, name, wrapper)
    return counted


def test_once_per_key_calls_once_per_key_across_threads_and_keeps_no_exception():
    seen = collections.Counter()

    def slow(key):
        seen[key] += 1
        time.sleep(0.05)
        if key == "bad" and seen[key] == 1:
            raise RuntimeError("first read failed")
        return key.upper()

    once = OncePerKey(slow)
    threads = [threading.Thread(target=once, args=(k,)) for k in ["a", "b", "a", "a", "b"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": 1, "b": 1} and once("a") == "A"
    with pytest.raises(RuntimeError):
        once("bad")
    assert once("bad") == "BAD" and seen["bad"] == 2  # a failure is not kept: asked again


def test_in_a_run_a_read_only_phase_inspects_the_containers_once_and_each_image_once(healthy_demo, demo_params,
                                                                                    write_params, calls, tmp_path):
    no_window = write_params({"production.observe_s": 0})  # a window is read again after: the next test
    phase = rb.open_phase("03_production_mode", no_window, tmp_path / "run")
    for fn in (production.env, production.restart_policy, production.healthcheck, production.drift,
               production.orphans, production.stability, production.logs):
        phase.run(fn)
    n_containers = len(phase.ctx.containers())
    images = {v.image_id for v in phase.ctx.containers()}
    assert calls["_inspect_all"] == 1, dict(calls)  # the phase's reading, taken as it opened
    assert calls["image_config"] == len(images) and calls["image_id"] <= len(images) < n_containers, dict(calls)
    statuses = collections.Counter(r.status for r in phase.records)
    assert statuses["PASS"] > 3 * n_containers and not statuses.keys() - {"PASS", "INFO", "SKIP"}, statuses

    calls.clear()  # phase 2 alike
    p2 = rb.open_phase("02_secrets_security", demo_params, tmp_path / "run")
    for fn in (security.containers_present, security.secrets_mounted, security.hardening, security.shared_volumes):
        p2.run(fn)
    assert calls["_inspect_all"] == 1, dict(calls)
    calls.clear()  # and phase 0, whose other reading is of the leftover containers the parameters name by pattern
    p0 = rb.open_phase("00_preflight", demo_params, tmp_path / "run")
    p0.run(preflight.current_state, preflight.orphans)
    assert calls["_inspect_all"] == 2, dict(calls)


def test_interactively_each_cell_reads_anew_and_sees_a_container_stopped_between_cells(healthy_demo, write_params,
                                                                                     engine, calls):
    no_window = write_params({"production.observe_s": 0})
    phase = rb.open_phase("03_production_mode", no_window, "")  # opened by hand: no run directory
    first = phase.run(production.env, production.restart_policy, production.stability)
    assert calls["_inspect_all"] == 2, dict(calls)  # the opening's, then one for the whole call
    assert all(r.status == "PASS" for r in phase.records if r.id == "prod.stability")
    [view] = engine.service_containers(healthy_demo.project, "alertmanager")
    engine.stop_container(view.id, timeout=5)
    calls.clear()
    phase.run(production.stability)
    assert calls["_inspect_all"] == 1
    [after] = [r for r in phase.records[len(first.records):] if r.target == "alertmanager"]
    assert after.status == "FAIL" and after.actual.startswith("exited"), after


def test_a_phase_that_changes_the_deployment_never_keeps_a_reading(healthy_demo, demo_params, tmp_path):
    for phase_name in ("01_controlled_redeployment", "04_smoke_tests"):
        phase = rb.open_phase(phase_name, demo_params, tmp_path / "run")
        assert not phase.ctx.keep_reads
        phase.ctx.containers()
        assert phase.ctx.state.containers is None
    assert rb.open_phase("05_signoff", demo_params, tmp_path / "run").ctx.keep_reads


def test_stability_judges_a_reading_taken_after_its_window_so_a_container_killed_in_it_fails(
        healthy_demo, demo_params, engine, write_params, tmp_path):
    params = write_params({"production.observe_s": 4})
    phase = rb.open_phase("03_production_mode", params, tmp_path / "run")
    phase.run(production.env)  # the phase's reading is taken: every container running
    assert all(v.running for v in phase.ctx.containers())
    [view] = engine.service_containers(healthy_demo.project, "alertmanager")
    killer = threading.Timer(1.5, lambda: engine.api.kill(view.id))
    killer.start()
    try:
        phase.run(production.stability)
    finally:
        killer.cancel()
    [rec] = [r for r in phase.records if r.id == "prod.stability" and r.target == "alertmanager"]
    assert rec.status == "FAIL", rec
    # the container as inspected after the window (not the phase's earlier reading), and the window's events
    assert rec.evidence["state"] != "running" and "event(s) during the 4s observation window" in rec.actual, rec


def test_in_a_run_phase_3_takes_its_stats_samples_ahead_and_interactively_it_does_not(healthy_demo, demo_params,
                                                                                  calls, tmp_path):
    phase = rb.open_phase("03_production_mode", demo_params, tmp_path / "run")
    production.sample_stats_ahead(phase.ctx)
    ids, future = phase.ctx.state.stats_ahead
    future.result(timeout=30)
    assert calls["stats"] == len(ids) > 0
    phase.run(production.resources)
    assert calls["stats"] == len(ids), "resources judged the samples taken ahead, not new ones"
    recs = [r for r in phase.records if r.id == "prod.resources"]
    assert recs and all(r.status == "PASS" for r in recs), [(r.target, r.status, r.actual) for r in recs]
    assert {r.evidence["sample"]["read_at"][:19] for r in recs} and all(r.evidence["sample"]["cpu_cores_used"] is not None
                                                                        for r in recs)

    calls.clear()
    by_hand = rb.open_phase("03_production_mode", demo_params, "")
    production.sample_stats_ahead(by_hand.ctx)
    assert by_hand.ctx.state.stats_ahead is None and calls["stats"] == 0
    by_hand.run(production.resources)
    assert calls["stats"] == len(ids)


def test_leftover_containers_are_matched_on_the_listing_and_only_those_are_inspected(healthy_demo, engine, monkeypatch):
    name = f"{healthy_demo.project}-adhoc-reading"
    box = engine.client.containers.run("runbook-demo/app:local", ["300"], entrypoint=["sleep"], name=name, detach=True)
    try:
        inspected = []
        real = engine.api.inspect_container
        monkeypatch.setattr(engine.api, "inspect_container", lambda cid: inspected.append(cid) or real(cid))
        found = engine.containers_matching([f"{healthy_demo.project}-adhoc-*"])
        assert [v.name for v in found] == [name] and inspected == [box.id], inspected  # not the other containers
        inspected.clear()
        assert engine.containers_matching([f"{healthy_demo.project}-no-such-*"]) == [] and inspected == []
    finally:
        box.remove(force=True)
