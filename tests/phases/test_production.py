"""Phase 3, production mode: pure logic without Docker, then the demo stack on a real engine — healthy
(it passes), and with planted faults (each one FAILs with its check id and target).

The planted faults are grouped so one stack start covers them all, one fault per service:
api-gateway holds 95 MiB of its 128 MiB (resources), auth-service runs ENV=development (env),
chat-service has restart "no" (restart_policy), video-service crash-loops (stability, and Prometheus
sees its target down), storage-service logged "panic:" (logs), alertmanager has its healthcheck
disabled (healthcheck); then, after deployment and without telling the runbook, redis gets a new
memory limit with `docker update` and minio is recreated from an edited override (drift).
"""
from __future__ import annotations

import re

import time

import pytest
import yaml

from conftest import load_run, run_dir_from
import runbook_demo as demo
from runbook_lib.model.facts import ServiceFacts, parse_bytes, parse_duration_ns
from runbook_lib.model.restart import policy_accepted
from runbook_lib.phases import production as prod
from runbook_lib.phases.production.conformance import compare
from runbook_lib.errors import ParametersError
from runbook_lib.params import load_params

APPS = ["api-gateway", "auth-service", "chat-service", "video-service", "storage-service"]


# ----------------------------------------------------------------------------------------------------
# pure logic
# ----------------------------------------------------------------------------------------------------

def test_compose_durations_parse_to_the_nanoseconds_the_engine_stores():
    assert parse_duration_ns("3s") == 3_000_000_000
    assert parse_duration_ns("1m30s") == 90_000_000_000
    assert parse_duration_ns("500ms") == 500_000_000
    assert parse_duration_ns(None) == 0
    with pytest.raises(ValueError):
        parse_duration_ns("3 seconds")


def test_one_memory_parser_reads_what_compose_and_users_write_and_refuses_the_rest():
    assert parse_bytes("134217728") == 134217728 and parse_bytes("128m") == 128 * 2**20
    assert parse_bytes("1.5GiB") == int(1.5 * 2**30) and parse_bytes(None) == 0 and parse_bytes(1024) == 1024
    with pytest.raises(ValueError):
        parse_bytes("lots")


def test_drift_is_a_comparison_of_two_service_models_field_by_field():
    spec = {"image": "app:1", "restart": "always", "environment": {"ENV": "production", "PRICE": "5$$", "UNSET": None},
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s"}, "cpu_quota": 50000,
            "ports": [{"target": 80, "published": "8080-8081", "host_ip": "127.0.0.1", "protocol": "tcp"}],
            "secrets": [{"source": "db", "target": "db"}], "mem_limit": "128m"}
    want = ServiceFacts.from_compose("web", spec, {"db": {"file": "/srv/db.txt"}})
    # one container port on a host range: the engine stores the range (HostPort "8080-8081") and binds one of it
    assert want.bindings == ["127.0.0.1:8080-8081->80/tcp"]
    assert want.environment == {"ENV": "production", "PRICE": "5$"} and want.cpu_limit == 0.5
    same = ServiceFacts(**{**want.__dict__, "source": "engine",
                           "healthcheck": {"test": ["CMD", "true"], "interval": 5_000_000_000, "timeout": 0,
                                           "start_period": 0, "retries": 0}})
    assert compare(want, same) == []  # only the healthcheck keys the compose file sets are compared
    changed = ServiceFacts(**{**same.__dict__, "environment": {"ENV": "staging", "PRICE": "5$", "DB_PASSWORD": "hunter22"},
                              "memory_limit": 2**28, "secret_sources": {}})
    diffs = {d["field"]: d for d in compare(want, changed)}
    assert set(diffs) == {"environment.ENV", "environment.DB_PASSWORD", "limits.memory_bytes", "secrets"}
    assert "hunter22" not in str(diffs["environment.DB_PASSWORD"])  # a credential-named value is masked
    assert diffs["limits.memory_bytes"] == {"field": "limits.memory_bytes", "expected": 2**27, "actual": 2**28}


def test_plain_on_failure_accepts_any_retry_count_but_a_given_count_must_match():
    assert policy_accepted("always", ["always", "unless-stopped"])
    assert not policy_accepted("no", ["always", "unless-stopped"])
    assert policy_accepted("on-failure:5", ["on-failure"])
    assert not policy_accepted("on-failure:5", ["on-failure:3"])


def test_log_scan_matches_case_insensitively_and_reports_the_range_it_read():
    lines = ["2024-01-01T00:00:00.1Z started", "2024-01-01T00:00:01.2Z PANIC: nil map",
             "2024-01-01T00:00:02.3Z a fatalistic remark", "2024-01-01T00:00:03.4Z fatal error: out of memory"]
    scan = prod.scan_lines(lines, [r"\bpanic\b", r"\bfatal\b", r"out of memory"])
    assert scan["lines_read"] == 4 and scan["match_count"] == 2
    assert scan["first_line_at"] == "2024-01-01T00:00:00.1Z" and scan["last_line_at"] == "2024-01-01T00:00:03.4Z"
    assert [m["line"][23:28] for m in scan["matches"]] == ["PANIC", "fatal"]


def test_memory_use_from_a_stats_sample_leaves_out_the_inactive_file_cache():
    sample = {"read": "t1", "preread": "t0",
              "memory_stats": {"usage": 110 * 2**20, "limit": 128 * 2**20, "stats": {"total_inactive_file": 10 * 2**20}},
              "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 20_000_000_000, "online_cpus": 4},
              "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 10_000_000_000}}
    use = prod.usage_from_stats(sample)
    assert use["memory_used_bytes"] == 100 * 2**20
    assert use["cpu_cores_used"] == pytest.approx(0.4)


def test_resource_chart_is_an_svg_of_both_fractions_and_nothing_is_drawn_without_samples():
    import xml.etree.ElementTree as ET

    rows = [{"service": "a<b>", "memory_fraction": 0.9, "cpu_fraction": 0.1, "memory_used_mib": 115, "memory_limit_mib": 128,
             "cpu_cores_used": 0.05, "cpu_limit": 0.5},
            {"service": "b", "memory_fraction": None, "cpu_fraction": None, "memory_used_mib": 20, "memory_limit_mib": None,
             "cpu_cores_used": 0.0, "cpu_limit": None}]
    svg = prod.resource_chart(rows, 0.8)
    root = ET.fromstring(svg)  # well-formed: the service name is escaped
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(ns + "text")]
    assert "a<b>" in texts and "115/128 MiB" in texts and "0.050/0.5 CPUs" in texts and texts.count("no limit") == 2
    bars = [r for r in root.iter(ns + "rect") if r.get("fill") != "none"]
    assert [b.get("fill") for b in bars] == ["#cf222e", "#8c959f", "#1a7f37", "#8c959f"]  # memory over 80 %: red
    assert float(bars[0].get("width")) == pytest.approx(0.9 * 345, abs=0.1) and len(list(root.iter(ns + "line"))) == 2
    many = [dict(rows[0], service=f"s{i}", memory_fraction=i / 100) for i in range(40)]
    assert "24 of 40, the closest to their limits" in prod.resource_chart(many, 0.8)
    assert prod.resource_chart([], 0.8) is None


def test_production_parameters_refuse_a_bad_log_pattern_and_an_unknown_restart_policy(write_params):
    with pytest.raises(ParametersError, match=r"production\.log_patterns"):
        load_params(write_params({"production.log_patterns": ["panic("]}))
    with pytest.raises(ParametersError, match=r"production\.restart_policy"):
        load_params(write_params({"production.restart_policy": ["sometimes"]}))
    with pytest.raises(ParametersError, match="did you mean 'observe_s'"):
        load_params(write_params({"production.observe_seconds": 3}))


# ----------------------------------------------------------------------------------------------------
# the demo stack, real engine
# ----------------------------------------------------------------------------------------------------

def _run_phase3(cli, params, tmp_path, *compose_files):
    args = ["run", "--params", str(params), "--output", str(tmp_path / "out"),
            "--phase", "00_preflight", "--phase", "03_production_mode"]
    for f in compose_files:
        args += ["--compose", str(f)]
    proc = cli(*args, timeout=600)
    run_dir = run_dir_from(proc.stdout)
    summary, records = load_run(run_dir)
    return proc, run_dir, summary, {(r["id"], r["target"]): r for r in records if r["phase"] == "03_production_mode"}


@pytest.mark.docker
def test_the_healthy_demo_stack_passes_production_mode(healthy_demo, demo_params, cli, tmp_path):
    proc, run_dir, summary, recs = _run_phase3(cli, demo_params, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["verdict"] == "GO"
    problems = {k: r["actual"] for k, r in recs.items() if r["status"] not in ("PASS", "SKIP")}
    assert problems == {}
    for svc in APPS:
        assert recs[("prod.env", svc)]["evidence"]["actual"] == {"ENV": "production"}
        assert recs[("prod.observability.scrape", svc)]["status"] == "PASS"
    for svc in ("redis", "minio", "prometheus", "alertmanager", *APPS):
        for check in ("prod.restart_policy", "prod.healthcheck", "prod.drift", "prod.stability", "prod.resources",
                      "prod.dev_server"):
            assert recs[(check, svc)]["status"] == "PASS", (check, svc)
        logs = recs[("prod.logs", svc)]  # a service that wrote nothing since its start is not judged
        assert logs["status"] == "PASS" or (logs["status"] == "SKIP" and logs["evidence"]["lines_read"] == 0), logs
    assert recs[("prod.observability", "prometheus")]["status"] == "PASS"
    assert recs[("prod.observability", "alertmanager")]["status"] == "PASS"
    # no Grafana or Loki in the demo: skipped, and the record says why
    assert recs[("prod.observability", "grafana")]["status"] == "SKIP"
    assert recs[("prod.observability", "loki")]["actual"] == "no production.loki_url"
    # every record says what it read
    for r in recs.values():
        assert r["evidence"].get("read") or r["status"] == "SKIP", r
    assert recs[("prod.stability", "redis")]["evidence"]["observation_window"]["seconds"] == 3
    assert recs[("prod.logs", "redis")]["evidence"]["window"].startswith("since this deploy (the container's start")
    # the resource chart is inlined in the report
    import base64  # the chart: an SVG the report embeds as an image (no markup of its own in the page)
    charts = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', (run_dir / "report.html").read_text())
    assert any(b"prod.resources: one stats sample" in base64.b64decode(c) for c in charts)


def _wait_for_die(engine, project: str, service: str, since: float, timeout: float = 60) -> None:
    """Block until the engine reports a `die` of the service's container (a crash loop has started)."""
    events = engine.container_events(project, since, time.time() + 0.01, actions=["die"])
    if any(e["service"] == service for e in events):
        return
    stream = engine.api.events(since=f"{since:.9f}", until=f"{time.time() + timeout:.9f}", decode=True,
                               filters={"type": "container", "event": ["die"],
                                        "label": [f"com.docker.compose.project={project}",
                                                  f"com.docker.compose.service={service}"]})
    try:
        for _ in stream:
            return
    finally:
        stream.close()
    raise AssertionError(f"{service} never died within {timeout}s")


@pytest.mark.docker
def test_each_planted_fault_fails_with_its_check_id_and_target(healthy_demo, demo_params, engine, cli, tmp_path):
    project = healthy_demo.project
    faults = tmp_path / "faults.yaml"
    faults.write_text(yaml.safe_dump({"services": {
        "api-gateway": {"environment": {"DEMO_FAULT": "hog:95"},
                        "depends_on": {"video-service": {"condition": "service_started"}}},
        "auth-service": {"environment": {"ENV": "development"}},
        "chat-service": {"restart": "no"},
        "video-service": {"environment": {"DEMO_FAULT": "crash"}},
        "storage-service": {"environment": {"DEMO_FAULT": "panic"}},
        "alertmanager": {"healthcheck": {"disable": True}},
    }}))
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump({"services": {"minio": {"environment": {"DRIFT_MARK": "edited-after-review"}}}}))
    redis = f"{project}-redis-1"
    before = engine.container(redis).host_config
    t0 = time.time()
    try:
        healthy_demo.up([faults], wait=False, progress=lambda s: None)
        _wait_for_die(engine, project, "video-service", t0)
        ok, views = engine.wait_ready(project, ["api-gateway", "auth-service", "chat-service", "storage-service"], 120)
        assert ok, [v.summary() for v in views]
        # drift made after deployment, without telling the runbook
        healthy_demo.compose([faults, edited]).up("minio", remove_orphans=False)
        engine.client.containers.get(redis).update(mem_limit="120m", memswap_limit="240m")

        proc, run_dir, summary, recs = _run_phase3(cli, demo_params, tmp_path, demo.COMPOSE_FILE, faults)
        assert proc.returncode == 1 and summary["verdict"] == "NO-GO", proc.stdout + proc.stderr

        def failed(check, target):
            r = recs[(check, target)]
            assert r["status"] == "FAIL", (check, target, r["status"], r["actual"])
            assert r["evidence"].get("read"), r
            return r

        r = failed("prod.env", "auth-service")
        assert r["evidence"]["differences"] == {"ENV": {"expected": "production", "actual": "development"}}
        assert recs[("prod.env", "api-gateway")]["status"] == "PASS"

        r = failed("prod.restart_policy", "chat-service")
        assert r["actual"].startswith("no: the container stays down")
        assert recs[("prod.restart_policy", "auth-service")]["status"] == "PASS"

        r = failed("prod.healthcheck", "alertmanager")
        assert "no healthcheck" in r["actual"] and r["evidence"]["defined_by"] == "compose (disable: true)"

        r = failed("prod.stability", "video-service")
        assert r["evidence"]["restart_count"] >= 1 and r["evidence"]["observation_window"]["seconds"] == 3
        assert recs[("prod.stability", "auth-service")]["status"] == "PASS"
        # Prometheus, for real, sees the crash-looping service's target down
        failed("prod.observability.scrape", "video-service")
        assert recs[("prod.observability.scrape", "auth-service")]["status"] == "PASS"

        r = failed("prod.logs", "storage-service")
        g = r["evidence"]["groups"][0]
        assert g["kind"] == "go" and g["severity"] == "critical" and g["signature"].startswith("panic: runtime error")
        assert recs[("prod.logs", "auth-service")]["status"] in ("PASS", "SKIP")

        r = failed("prod.resources", "api-gateway")
        assert r["evidence"]["memory_fraction"] >= 0.8 and "of the 128 MiB limit" in r["actual"]
        assert recs[("prod.resources", "auth-service")]["status"] == "PASS"

        r = failed("prod.drift", "redis")
        assert [d["field"] for d in r["evidence"]["differences"]] == ["limits.memory_bytes"]
        assert r["evidence"]["config_hash"]["label"] == r["evidence"]["config_hash"]["compose"], \
            "docker update leaves the config-hash label alone: only the field comparison sees it"
        r = failed("prod.drift", "minio")
        fields = [d["field"] for d in r["evidence"]["differences"]]
        assert fields == ["environment.DRIFT_MARK"]
        assert r["evidence"]["config_hash"]["label"] != r["evidence"]["config_hash"]["compose"]
        assert str(edited) in r["evidence"]["config_files"]["label"]
        assert "config-hash label" in r["actual"] and "created from" in r["actual"]
        # containers created from exactly the intended files are not drift, faults or not
        assert recs[("prod.drift", "auth-service")]["status"] == "PASS"
        assert recs[("prod.drift", "chat-service")]["status"] == "PASS"
    finally:
        engine.client.containers.get(redis).update(mem_limit=before["Memory"], memswap_limit=before["MemorySwap"])
        healthy_demo.up(progress=lambda s: None)
