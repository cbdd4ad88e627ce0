"""`runbook watch`'s pure parts: the metrics as prometheus_client's own text parser reads them, the exporter's
/metrics and /healthz over real HTTP, the schedule's durations, what the retention keeps, and the alert rules
shipped in the wheel (promtool, when the host has it). No engine."""
from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT

from runbook_lib.errors import InputError
from runbook_lib.results.metrics import Published, WatchMetrics
from runbook_lib.run.exporter import Exporter, parse_listen
from runbook_lib.run.watch import LAST_GO, LATEST, _set_link, parse_every, prune, remember

RULES = ROOT / "runbook_lib" / "data" / "prometheus-rules.yml"

NO_GO = {"verdict": "NO-GO", "counts": {"PASS": 3, "FAIL": 1, "SKIP": 1},
         "blockers": [{"ref": "prod.drift@redis", "id": "prod.drift", "target": "redis", "status": "FAIL"}]}
RECORDS = [("prod.drift", "redis", "FAIL"), ("prod.drift", "minio", "PASS"), ("prod.env", "api", "PASS"),
           ("smoke.drill.redis", "redis", "SKIP"), ("preflight.engine", "engine", "PASS")]


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value}, parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_no_go_run_is_exported_with_its_blockers_statuses_and_timings():
    m = WatchMetrics("shop", 60)
    m.publish(Published(NO_GO, RECORDS, [("prod.drift", "redis")], finished=1_700_000_000.5, duration_s=12.34))
    m.count_error()
    got = samples(m.text().decode())
    p = (("project", "shop"),)
    assert got[("runbook_verdict", p)] == 0
    assert got[("runbook_blockers", p)] == 1
    assert got[("runbook_checks", p + (("status", "FAIL"),))] == 1
    assert got[("runbook_checks", p + (("status", "PASS"),))] == 3
    assert got[("runbook_checks", p + (("status", "ERROR"),))] == 0  # every status present, 0 when none
    not_pass = {dict(k[1])["check"] + "@" + dict(k[1])["target"]: dict(k[1])["status"]
                for k in got if k[0] == "runbook_check_status"}
    assert not_pass == {"prod.drift@redis": "FAIL", "smoke.drill.redis@redis": "SKIP"}
    assert got[("runbook_new_blocker", (("check", "prod.drift"), ("project", "shop"), ("target", "redis")))] == 1
    assert got[("runbook_last_run_timestamp_seconds", p)] == 1_700_000_000.5
    assert got[("runbook_last_run_duration_seconds", p)] == 12.34
    assert got[("runbook_run_errors_total", p)] == 1
    assert got[("runbook_watch_interval_seconds", p)] == 60


def test_the_next_run_replaces_the_statuses_so_a_fixed_check_loses_its_series():
    m = WatchMetrics("shop", 60)
    m.publish(Published(NO_GO, RECORDS, [("prod.drift", "redis")], 1.0, 1.0))
    fixed = [(c, t, "PASS") for c, t, _ in RECORDS]
    m.publish(Published({"verdict": "GO", "counts": {"PASS": 5}, "blockers": []}, fixed, [], 2.0, 1.0))
    got = samples(m.text().decode())
    assert got[("runbook_verdict", (("project", "shop"),))] == 1
    assert not [k for k in got if k[0] in ("runbook_check_status", "runbook_new_blocker")]
    assert got[("runbook_run_errors_total", (("project", "shop"),))] == 0


def test_the_exporter_serves_metrics_and_healthz_over_http_until_the_loop_stops():
    m = WatchMetrics("shop", 60)
    alive = {"v": True}
    with Exporter("127.0.0.1:0", m, lambda: (alive["v"], "waiting")) as ex:
        base = f"http://{ex.address}"
        r = httpx.get(base + "/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
        assert ("runbook_watch_interval_seconds", (("project", "shop"),)) in samples(r.text)
        h = httpx.get(base + "/healthz")
        assert (h.status_code, h.text) == (200, "waiting\n")
        alive["v"] = False
        assert httpx.get(base + "/healthz").status_code == 503
        assert httpx.get(base + "/other").status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/healthz")


def test_bad_listen_addresses_and_durations_are_input_errors_naming_the_value():
    for bad in ("9469", "localhost:", "host:99999"):
        with pytest.raises(InputError, match="--listen"):
            parse_listen(bad)
    assert parse_listen("[::1]:9469") == ("::1", 9469)
    assert [parse_every(x) for x in ("90", "90s", "5m", "1h", "1.5m")] == [90, 90, 300, 3600, 90]
    for bad in ("0", "5 minutes", "-1m", ""):
        with pytest.raises(InputError, match="--every"):
            parse_every(bad)
    with Exporter("127.0.0.1:0", WatchMetrics("a", 1), lambda: (True, "")) as ex:
        with pytest.raises(InputError, match="cannot listen there"):
            Exporter(ex.address, WatchMetrics("b", 1), lambda: (True, "")).__enter__()


def test_retention_keeps_the_newest_runs_and_the_last_go_and_nothing_else_is_touched(tmp_path):
    def run(stamp: str, verdict: str, project: str = "shop", by_watch: bool = True):
        d = tmp_path / f"20261207T{stamp}Z-{project}"
        d.mkdir()
        (d / "run.json").write_text("{}")
        (d / "verdict.json").write_text(json.dumps({"verdict": verdict}))
        if by_watch:
            remember(tmp_path, d)
        return d

    users_go = run("090000", "GO", by_watch=False)  # `runbook run --output` the same directory: never the watcher's
    go = run("100000", "GO")
    rest = [run(f"1{i}0000", "NO-GO") for i in range(1, 6)]
    other = run("100500", "NO-GO", project="other")
    mine = tmp_path / "notes"
    mine.mkdir()
    _set_link(tmp_path, LAST_GO, go)
    _set_link(tmp_path, LATEST, rest[-1])
    removed = prune(tmp_path, "shop", keep=2)
    assert sorted(removed) == rest[:3]
    assert go.is_dir() and rest[3].is_dir() and rest[4].is_dir() and other.is_dir() and mine.is_dir()
    assert users_go.is_dir()
    assert (tmp_path / LAST_GO).resolve() == go
    assert prune(tmp_path, "shop", keep=2) == []  # the removed ones are no longer remembered


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian's prometheus package) is not installed")
def test_the_shipped_alert_rules_pass_promtool():
    proc = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "SUCCESS: 3 rules found" in proc.stdout, proc.stdout + proc.stderr
    config = ROOT / "demo" / "observability" / "prometheus.yml"
    assert "job_name: runbook" in config.read_text()


def test_the_rules_print_from_the_installed_package(cli):
    proc = cli("watch", "--print-rules")
    assert proc.returncode == 0 and proc.stdout == RULES.read_text()
    for alert in ("RunbookNoGo", "RunbookStale", "RunbookNewBlocker"):
        assert f"alert: {alert}" in proc.stdout
