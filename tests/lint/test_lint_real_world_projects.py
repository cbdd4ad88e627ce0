"""`runbook lint` on real-world compose projects: one section per kind of problem real projects showed.
Through the CLI (a separate process, no engine) and the functions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_lib.lint import judge_args, judge_environment, lint_files
from runbook_lib.model.facts import ServiceFacts
from runbook_lib.params.sections import Security
from runbook_lib.results.redact import Redactor, marker, weakness

from conftest import write_compose

write = write_compose


def secret_file(tmp_path: Path, name: str, value: str) -> Path:
    p = tmp_path / name
    p.write_text(value)
    os.chmod(p, 0o400)
    return p


def lint_json(cli, *args, env=None):
    proc = cli("lint", *map(str, args), "--format", "json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    return proc, data, {(r["id"], r["target"]): r for r in data["records"]}


def by_key(records):
    return {(r.id, r.target): r for r in records}


# -- profile-gated services ---------------------------------------------------------------------------

PROFILES = """
services:
  api:
    image: kong:3.6
    restart: always
  agent:
    image: example/agent:1.0
    profiles: [monitoring]
    privileged: true
    pid: host
    secrets: [agent_token]
  admin:
    image: example/admin:1.0
    profiles: [debug, tools]
secrets:
  agent_token:
    file: ./fixture-not-a-secret.txt
"""


def test_1_every_service_is_linted_whatever_its_profile(cli, no_engine, tmp_path):
    secret_file(tmp_path, "fixture-not-a-secret.txt", "Zq8-fixture-not-a-secret-4Hk2")
    f = write(tmp_path, PROFILES)
    proc, data, by = lint_json(cli, f, env=no_engine)
    assert data["services"] == ["admin", "agent", "api"]
    assert by[("hardening.privileged", "agent")]["status"] == "FAIL"       # the privileged agent is seen
    assert by[("hardening.host_pid", "agent")]["status"] == "FAIL"
    assert by[("hardening.privileged", "agent")]["evidence"]["profiles"] == ["monitoring"]
    assert by[("images.pinned", "admin")]["evidence"]["profiles"] == ["debug", "tools"]
    assert "profiles" not in by[("images.pinned", "api")]["evidence"]
    # its secret is used: no false "declared but unused"
    assert ("secrets.declared_unused", "agent_token") not in by
    assert "3 services linted, all profiles (debug, monitoring, tools)" in data["summary"]
    table = cli("lint", str(f), env=no_engine).stdout.splitlines()[-1]
    assert "3 services linted" in table and "monitoring" in table


def test_1_profile_restricts_and_says_what_it_left_out(cli, no_engine, tmp_path):
    secret_file(tmp_path, "fixture-not-a-secret.txt", "Zq8-fixture-not-a-secret-4Hk2")
    f = write(tmp_path, PROFILES)
    proc, data, by = lint_json(cli, f, "--profile", "debug", env=no_engine)
    assert data["services"] == ["admin", "api"] and data["not_linted"] == ["agent"]
    assert "1 not linted (not in the selected profiles): agent" in data["summary"]


# -- secrets.duplicate reads what was written ---------------------------------------------------------

def test_2_a_secret_listed_twice_fails_and_points_at_the_line(cli, no_engine, tmp_path):
    secret_file(tmp_path, "a.txt", "Zq8-fixture-not-a-secret-4Hk2")
    f = write(tmp_path, """\
        services:
          web:
            image: nginx:1.25
            secrets: [a, a]
          two-targets:
            image: nginx:1.25
            secrets:
              - a
              - source: a
                target: /etc/app/a
        secrets:
          a: {file: ./a.txt}
        """)
    _, _, by = lint_json(cli, f, env=no_engine)
    dup = by[("secrets.duplicate", "web")]
    assert dup["status"] == "FAIL" and "a at a" in dup["actual"]
    assert dup["evidence"]["location"]["line"] == 4
    assert by[("secrets.duplicate", "two-targets")]["status"] == "PASS", "one secret at two targets is fine"
    sarif = json.loads(cli("lint", str(f), "--format", "sarif", env=no_engine).stdout)
    res = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "secrets.duplicate")
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 4


# -- short secret values ------------------------------------------------------------------------------

def test_3_a_secret_equal_to_the_product_name_is_weak_not_a_leak_and_names_survive(cli, no_engine, tmp_path):
    secret_file(tmp_path, "pg_password.txt", "chatapp")
    secret_file(tmp_path, "flag.txt", "true")
    f = write(tmp_path, """\
        name: chatapp
        services:
          chatapp-api:
            image: example/chatapp:1.0
            environment:
              CHATAPP_PG_USER: chatapp
              CHATAPP_PG_DATABASE: chatapp
              FEATURE_ENABLED: "true"
              PG_PASSWORD_FILE: /run/secrets/pg_password
              FLAG_FILE: /run/secrets/flag
            secrets: [pg_password, flag]
          chatapp-worker:
            image: example/chatapp:1.0
        secrets:
          pg_password: {file: ./pg_password.txt}
          flag: {file: ./flag.txt}
        """)
    proc, data, by = lint_json(cli, f, env=no_engine)
    assert by[("secrets.no_plaintext_env", "chatapp-api")]["status"] == "PASS"
    weak = by[("secrets.weak_value", "pg_password")]
    assert weak["status"] == "FAIL" and "shorter than 8" in weak["actual"]
    assert by[("secrets.weak_value", "flag")]["status"] == "FAIL"
    assert "REDACTED" not in json.dumps([r["target"] for r in data["records"]])
    sarif = json.loads(cli("lint", str(f), "--format", "sarif", env=no_engine).stdout)
    results = sarif["runs"][0]["results"]
    assert results and all("region" in r["locations"][0]["physicalLocation"] for r in results)
    assert all(not r["message"]["text"].startswith("[REDACTED") for r in results)


def test_3_weak_values_are_never_matched_as_leaks_but_still_never_reach_an_output_and_never_rename_anything():
    """Matching a value as a leak needs a value that could identify a secret; redaction is wider (a weak
    secret is still a secret and must not reach a report) but never rewrites names, keys or ids."""
    assert weakness("true") and weakness("changeme") and weakness("chatapp", ["chatapp-api"])
    assert weakness("Zq8-fixture-not-a-secret-4Hk2") is None
    r = Redactor(["true", "chatapp", "Zq8-fixture-not-a-secret-4Hk2"])
    assert r.scrub_text("FEATURE_ENABLED=true chatapp") == f"FEATURE_ENABLED=true {marker('chatapp')}"
    rec = r.scrub({"id": "secrets.mounted", "target": "chatapp-api", "evidence": {"chatapp-api": "uses chatapp"}},
                  names=False, keep=("id", "target"))
    assert rec["target"] == "chatapp-api" and list(rec["evidence"]) == ["chatapp-api"]
    assert "chatapp" not in rec["evidence"]["chatapp-api"]
    out = r.scrub({"Zq8-fixture-not-a-secret-4Hk2": "x Zq8-fixture-not-a-secret-4Hk2"}, names=False)
    assert list(out) == ["Zq8-fixture-not-a-secret-4Hk2"] and "REDACTED" in out["Zq8-fixture-not-a-secret-4Hk2"]
    v = judge_environment(ServiceFacts("svc", "compose", environment={"FEATURE_ENABLED": "true"}), Security(),
                          {"true": "flag"})
    assert v.status == "PASS"


# -- plaintext credentials outside environment: -------------------------------------------------------

def test_4_credentials_in_command_healthcheck_labels_and_embedded_json_are_found(cli, no_engine, tmp_path):
    f = write(tmp_path, """\
        services:
          redis:
            image: redis:7.2
            command: ["redis-server", "--requirepass", "Hx7-redis-literal-pw"]
            healthcheck:
              test: ["CMD", "redis-cli", "-a", "Hx7-redis-literal-pw", "ping"]
          coturn:
            image: coturn/coturn:4.6
            command: ["--lt-cred-mech", "--user=turnuser:Tq9-turn-literal-pw", "--realm=example.org"]
          app:
            image: example/app:1.0
            labels:
              traefik.http.middlewares.auth.basicauth.users: "admin:$$apr1$$x$$y"
              com.example.db-password: "Lb4-label-literal-pw"
            environment:
              SETTINGS: '{"db": {"host": "db", "credential": "Js5-json-literal-pw"}}'
              SALT: "Sa1-salt-literal"
              REDIS_AUTH: "Ra2-auth-literal"
              DB_PASS: "Dp3-pass-literal"
              DATABASE_URL: "postgres://app:Ur4-url-literal@db/app"
              LOG_LEVEL: info
          clean:
            image: example/app:1.0
            command: ["app", "--password-file", "/run/secrets/pw", "--user", "1000:1000", "--token", "$${TOKEN}"]
        """)
    _, _, by = lint_json(cli, f, env=no_engine)
    redis = by[("secrets.no_plaintext_args", "redis")]
    assert redis["status"] == "FAIL" and "--requirepass" in redis["actual"] and "healthcheck" in redis["actual"]
    assert "name:password" in by[("secrets.no_plaintext_args", "coturn")]["actual"]
    app_args = by[("secrets.no_plaintext_args", "app")]
    assert app_args["status"] == "FAIL" and "com.example.db-password" in app_args["actual"]
    env = by[("secrets.no_plaintext_env", "app")]["actual"]
    for name in ("SETTINGS", "SALT", "REDIS_AUTH", "DB_PASS", "DATABASE_URL"):
        assert name in env, (name, env)
    assert "credential in an embedded document at db.credential" in env
    assert "LOG_LEVEL" not in env
    assert by[("secrets.no_plaintext_args", "clean")]["status"] == "PASS", by[("secrets.no_plaintext_args", "clean")]


def test_4_the_argv_rule_as_a_function_never_shows_a_value():
    facts = ServiceFacts("s", "compose", argv={"command": ["sh", "-c", "PGPASSWORD=Pg5-literal psql -h db"]})
    v = judge_args(facts, Security())
    assert v.status == "FAIL" and "PGPASSWORD" in v.actual
    assert "Pg5-literal" not in json.dumps(v.evidence) and v.evidence["findings"][0]["value"] == marker("Pg5-literal")


# -- statics of phase 2 and 3 -------------------------------------------------------------------------

def test_5_restart_policy_is_judged_against_production_restart_policy(cli, no_engine, tmp_path, write_params):
    f = write(tmp_path, """\
        services:
          web: {image: nginx:1.25, restart: on-failure}
          api: {image: nginx:1.25, restart: unless-stopped}
        """)
    _, _, by = lint_json(cli, f, env=no_engine)
    web = by[("service.restart_policy", "web")]
    assert web["status"] == "FAIL" and web["severity"] == "high" and "on-failure" in web["actual"]
    assert by[("service.restart_policy", "api")]["status"] == "PASS"
    params = write_params({"production.restart_policy": ["always", "on-failure"]})
    _, _, by = lint_json(cli, f, "--params", params, env=no_engine)
    assert by[("service.restart_policy", "web")]["status"] == "PASS"


def test_5_a_secret_file_tracked_by_git_is_a_committed_secret(cli, no_engine, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    secret_file(repo, "fixture-not-a-secret.txt", "Zq8-fixture-not-a-secret-4Hk2")
    secret_file(repo, "untracked.txt", "Yw3-fixture-not-a-secret-8Lp1")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "fixture-not-a-secret.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "add"], check=True)
    f = write(repo, """\
        services:
          web: {image: nginx:1.25, secrets: [committed, fine]}
        secrets:
          committed: {file: ./fixture-not-a-secret.txt}
          fine: {file: ./untracked.txt}
        """)
    _, _, by = lint_json(cli, f, env=no_engine)
    assert by[("secrets.committed_file", "committed")]["status"] == "FAIL"
    assert by[("secrets.committed_file", "committed")]["severity"] == "critical"
    assert by[("secrets.committed_file", "fine")]["status"] == "PASS"


def test_5_plain_http_and_admin_ports_beyond_loopback_fail(cli, no_engine, tmp_path):
    f = write(tmp_path, """\
        services:
          gateway:
            image: kong:3.6
            ports: ["8000:8000", "8001:8001", "127.0.0.1:8444:8444"]
          node:
            image: node:20.11
            ports: ["0.0.0.0:9229:9229"]
          behind-lb:
            image: nginx:1.25
            ports: ["8080:80"]
            labels: {runbook.tls-terminated: "true"}
          local:
            image: nginx:1.25
            ports: ["127.0.0.1:8081:80"]
        """)
    _, _, by = lint_json(cli, f, env=no_engine)
    admin = by[("hardening.admin_ports", "gateway")]
    assert admin["status"] == "FAIL" and "Kong Admin API on 0.0.0.0:8001" in admin["actual"] and "8444" not in admin["actual"]
    assert by[("hardening.admin_ports", "node")]["status"] == "FAIL" and "inspector" in by[("hardening.admin_ports", "node")]["actual"]
    assert by[("hardening.tls", "gateway")]["status"] == "FAIL" and "8000" in by[("hardening.tls", "gateway")]["actual"]
    assert by[("hardening.tls", "behind-lb")]["status"] == "PASS"
    assert by[("hardening.tls", "local")]["status"] == "PASS"
    assert by[("hardening.admin_ports", "local")]["status"] == "PASS"


# -- hostile input ------------------------------------------------------------------------------------

BOMB = "".join(
    [f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi")]
)


def _peak_child_rss_mb(cmd: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float, float]:
    code = ("import resource, subprocess, sys, time, json, os\n"
            "t = time.monotonic(); p = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)\n"
            "d = time.monotonic() - t\n"
            "print(json.dumps([p.returncode, p.stdout, p.stderr, d, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cmd)], capture_output=True, text=True, env=env,
                         timeout=120)
    rc, stdout, stderr, secs, rss = json.loads(out.stdout)
    return subprocess.CompletedProcess(cmd, rc, stdout, stderr), secs, rss


def test_6_an_anchor_bomb_is_refused_fast_and_small(no_engine, tmp_path):
    f = tmp_path / "bomb.yaml"
    f.write_text('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB
                 + "services: {web: {image: nginx:1.25, command: *i}}\n")
    assert f.stat().st_size < 500
    cmd = [sys.executable, "-m", "runbook_lib.cli", "lint", str(f), "--format", "json"]
    proc, secs, rss = _peak_child_rss_mb(cmd, {**os.environ, **no_engine})
    assert proc.returncode == 2 and secs <= 10 and rss <= 500, (secs, rss, proc.stderr)
    assert "alias bomb" in proc.stderr.splitlines()[0]
    err = json.loads(proc.stdout)["error"]
    assert "alias bomb" in err["cause"]


def _alive(marker_arg: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker_arg in (p / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_6_a_compose_that_hangs_is_killed_with_its_whole_process_group(tmp_path, monkeypatch):
    """A fake Compose whose child ignores SIGTERM and outlives its parent: after the timeout, nothing of
    it is left running."""
    import runbook_lib.engine.compose as compose_mod
    import runbook_lib.lint.run as run_mod
    from runbook_lib.errors import ComposeConfigError

    tag = f"300.{os.getpid()}{time.monotonic_ns() % 10**6}"  # a unique sleep duration marks the children
    fake = tmp_path / "fake-compose"
    fake.write_text(f"#!/bin/sh\n(trap '' TERM; sleep {tag}) &\ntrap '' TERM\nsleep {tag}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(compose_mod, "find_compose_command", lambda: (str(fake),))
    monkeypatch.setattr(run_mod, "CONFIG_TIMEOUT_S", 2)
    f = write(tmp_path, "services: {web: {image: nginx:1.25}}\n")
    t0 = time.monotonic()
    with pytest.raises(ComposeConfigError, match="timed out"):
        lint_files([f])
    assert time.monotonic() - t0 < 15
    time.sleep(0.2)
    assert _alive(tag) == [], "a child of Compose outlived lint"


def test_6_secret_files_that_are_devices_fifos_or_huge_are_refused_not_read(cli, no_engine, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * ((1 << 20) + 1))
    f = write(tmp_path, f"""\
        services:
          web: {{image: nginx:1.25, secrets: [zero, fifo, big]}}
        secrets:
          zero: {{file: /dev/zero}}
          fifo: {{file: {fifo}}}
          big: {{file: {big}}}
        """)
    t0 = time.monotonic()
    proc = cli("lint", str(f), "--format", "json", env=no_engine, timeout=60)
    assert time.monotonic() - t0 < 30 and proc.returncode == 1, proc.stderr
    by = {(r["id"], r["target"]): r for r in json.loads(proc.stdout)["records"]}
    mounted = by[("secrets.mounted", "web")]["actual"]
    assert "zero: /dev/zero not a regular file" in mounted and "fifo:" in mounted
    assert "larger than 1 MiB" in mounted


def test_6_a_port_range_is_one_finding(cli, no_engine, tmp_path):
    f = write(tmp_path, """\
        services:
          rtc: {image: example/rtc:1.0, ports: ["49152-65535:49152-65535/udp"]}
        """)
    proc, data, by = lint_json(cli, f, env=no_engine)
    ports = by[("hardening.published_ports", "rtc")]
    assert "0.0.0.0:49152-65535->49152-65535/udp" in ports["actual"] and len(ports["actual"]) < 200
    assert len(proc.stdout) < 200_000
    table = cli("lint", str(f), env=no_engine).stdout
    assert max(len(line) for line in table.splitlines()) < 400


def test_6_a_directory_is_a_directory_and_json_sarif_still_get_an_error_object(cli, no_engine, tmp_path):
    proc = cli("lint", str(tmp_path), env=no_engine)
    assert proc.returncode == 2 and "is a directory" in proc.stderr.splitlines()[0]
    proc = cli("lint", str(tmp_path), "--format", "json", env=no_engine)
    assert proc.returncode == 2 and "is a directory" in json.loads(proc.stdout)["error"]["message"]
    proc = cli("lint", str(tmp_path / "missing.yaml"), "--format", "sarif", env=no_engine)
    sarif = json.loads(proc.stdout)
    inv = sarif["runs"][0]["invocations"][0]
    assert proc.returncode == 2 and inv["executionSuccessful"] is False
    assert "not found" in inv["toolExecutionNotifications"][0]["message"]["text"]


def test_6_the_first_stderr_line_of_an_input_error_is_the_cause(cli, no_engine, tmp_path):
    f = write(tmp_path, """\
        services:
          web:
            image: "nginx:${TAG}"
            env_file: ./missing.env
            environment: {A: "${A}", B: "${B}", C: "${C}"}
        """)
    proc = cli("lint", str(f), env=no_engine)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert "missing.env" in first and "not found" in first and "variable is not set" not in first
    assert "variable is not set" in proc.stderr, "the warnings follow"

