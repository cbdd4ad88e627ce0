"""`runbook watch` beside a demo stack of the test's own, scraped by the stack's real Prometheus, alerting the
stack's real Alertmanager with the rules runbook ships: `docker update --memory` on one service makes
RunbookNoGo (and RunbookNewBlocker) reach the Alertmanager API within two intervals; undoing it resolves them.

The watcher listens on the engine's default bridge address, which `host.docker.internal` (host-gateway) names
inside the Prometheus container; the stack's Prometheus finds it through a targets file of the test's own
(RB_WATCH_TARGETS). The watched phases are 0 and 3 (prod.drift sees the changed limit), so a run fits well
inside the short interval."""
from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from conftest import wait_for
from watchers import Watcher, bridge_gateway, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EVERY_S = 20
SERVICE = "api-gateway"


def _alerts(am: str, name: str, project: str) -> list[dict]:
    """The active alerts named ``name`` for ``project`` in the Alertmanager API (v2)."""
    r = httpx.get(f"{am}/api/v2/alerts", params={"filter": [f'alertname="{name}"', f'project="{project}"']}, timeout=5)
    r.raise_for_status()
    return [a for a in r.json() if a.get("status", {}).get("state") == "active"]


def test_a_memory_change_fires_runbook_no_go_in_alertmanager_and_undoing_it_resolves_it(tmp_path):
    import runbook_demo as demo

    gateway = bridge_gateway()
    if gateway is None:
        pytest.skip("the engine's default bridge is not an address of this host (a remote engine)")
    port = free_port(gateway)
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps([{"targets": [f"host.docker.internal:{port}"]}]))
    stack = demo.Stack.isolated(tmp_path, prefix="rbtest-watch")
    with stack.env_file.open("a") as f:
        f.write(f"RB_WATCH_TARGETS={targets}\n")
    # the demo's log signatures under a loaded machine are not what this test is about: not blocking here
    params = stack.write_params(tmp_path / "params.yaml", {"policy.severity_overrides": {"prod.logs": "medium"}})
    am, prom = stack.url("alertmanager"), stack.url("prometheus")
    watcher = None
    try:
        stack.up(progress=lambda s: None)
        [container] = [c for c in subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}",
             "--filter", f"label=com.docker.compose.service={SERVICE}"], capture_output=True, text=True).stdout.split()]
        watcher = Watcher("--params", str(params), "--every", f"{EVERY_S}s", "--output", str(tmp_path / "out"),
                          "--phase", "00_preflight", "--phase", "03_production_mode", listen=f"{gateway}:{port}")
        # from a GO (a loaded machine can make one run's health check late: the next run is judged anew)
        watcher.wait_line("runbook watch: GO", 240)

        def scraped():
            r = httpx.get(f"{prom}/api/v1/query", params={"query": f'runbook_verdict{{project="{stack.project}"}}'})
            return r.json()["data"]["result"]
        wait_for(scraped, 60, "the stack's Prometheus to scrape the watcher", interval=1)
        assert not _alerts(am, "RunbookNoGo", stack.project)

        subprocess.run(["docker", "update", "--memory", "192m", container], check=True, capture_output=True)
        t0 = time.monotonic()
        mark = len(watcher.lines)
        seen_new = []

        def fired():
            seen_new.extend(_alerts(am, "RunbookNewBlocker", stack.project))
            return _alerts(am, "RunbookNoGo", stack.project)
        [alert] = wait_for(fired, 2 * EVERY_S + 30, "RunbookNoGo in Alertmanager", interval=1)
        fired_s = time.monotonic() - t0
        line = watcher.wait_line(f"NEW BLOCKER prod.drift@{SERVICE}", 5, mark)
        assert "FAIL" in line and "was PASS" in line and "memory" in line, line
        print(line)
        assert alert["labels"]["severity"] == "critical"
        assert seen_new or _alerts(am, "RunbookNewBlocker", stack.project)  # the same evaluation fires both
        assert {a["labels"]["check"] for a in seen_new or _alerts(am, "RunbookNewBlocker", stack.project)} == {"prod.drift"}
        print(f"RunbookNoGo in Alertmanager {fired_s:.0f} s after `docker update` (interval {EVERY_S} s)")
        # two intervals, and the Prometheus between: one scrape and one rule evaluation (5 s each in the demo)
        assert fired_s <= 2 * EVERY_S + 10, f"{fired_s:.0f} s: more than two intervals"

        subprocess.run(["docker", "update", "--memory", "128m", container], check=True, capture_output=True)
        t1 = time.monotonic()
        wait_for(lambda: not _alerts(am, "RunbookNoGo", stack.project), 2 * EVERY_S + 40, "RunbookNoGo resolved",
                 interval=1)
        resolved_s = time.monotonic() - t1
        watcher.wait_line(f"resolved prod.drift@{SERVICE}", 5, mark)
        print(f"RunbookNoGo resolved {resolved_s:.0f} s after the limit was put back")
        assert resolved_s <= 2 * EVERY_S + 10, f"{resolved_s:.0f} s: more than two intervals"
        assert watcher.metric("runbook_verdict") == 1
        rc, took = watcher.terminate(120)
        assert rc == 0 and "stopped (SIGTERM)" in watcher.text, watcher.text
    finally:
        if watcher:
            watcher.kill()
        stack.down(volumes=True)
