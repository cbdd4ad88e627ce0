"""`runbook lint` gives no false alarm on ordinary compose files: each test lints a minimal project through
real Compose resolution (`docker compose config`) and checks the verdict a reviewer would give, with the
planted real problem beside it still found."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from runbook_lib.lint import lint_files


def project(root: Path, compose: str, **files: str) -> Path:
    """A compose project in ``root``: compose.yaml plus ``files`` (relative name -> text)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "compose.yaml").write_text(textwrap.dedent(compose))
    for name, text in files.items():
        p = root / name.replace("__", "/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if "secret" in name.lower() or name.startswith("env__."):
            os.chmod(p, 0o600)
    return root / "compose.yaml"


def records(compose: Path, **kw) -> dict[tuple[str, str], object]:
    return {(r.id, r.target): r for r in lint_files([compose], **kw).records}


def _sensitive_checkout_dir() -> Path | None:
    """A writable directory under a tree the sensitive-mount rule names (/root on a VPS, /usr/src)."""
    for d in (Path.home(), Path("/usr/local/src"), Path("/usr/src"), Path("/root")):
        if str(d).startswith(("/root", "/usr")) and os.access(d, os.W_OK):
            return d
    return None


def test_a_project_checked_out_under_root_or_usr_gives_no_sensitive_mount_for_its_own_directories():
    base = _sensitive_checkout_dir()
    if base is None:
        pytest.skip("no writable directory under /root or /usr here")
    d = Path(tempfile.mkdtemp(prefix="runbook-lint-checkout-", dir=base))
    try:
        f = project(d / "app", """\
            services:
              web:
                image: nginx:1.25.4
                volumes: ["./conf:/etc/nginx/conf.d", "./data:/data", "/etc:/host-etc"]
            """)
        r = records(f)[("hardening.sensitive_mounts", "web")]
        assert r.status == "FAIL" and r.evidence["writable"] == ["/etc:/host-etc"], r.actual
        assert str(d / "app") not in r.actual
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_project_whose_directory_is_itself_sensitive_is_not_exempt():
    from runbook_lib.lint.confinement import sensitive_dir

    assert sensitive_dir("/root/app/data", "/root/app") is None
    assert sensitive_dir("/usr/src/app/conf", "/usr/src/app") is None
    assert sensitive_dir("/root/.ssh", "/root/app") == "/root"  # outside the project: judged as what it is
    assert sensitive_dir("/root/data", "/root") == "/root"  # a project at /root itself: /root is still /root
    assert sensitive_dir("/etc/nginx", "/") == "/etc"


def test_a_secret_holding_a_user_name_is_not_a_weak_credential(tmp_path):
    f = project(tmp_path, """\
        services:
          db:
            image: postgres:16.2
            environment:
              POSTGRES_USER_FILE: /run/secrets/POSTGRES_USER
              POSTGRES_PASSWORD_FILE: /run/secrets/POSTGRES_PASSWORD
            secrets: [POSTGRES_USER, POSTGRES_PASSWORD, db]
        secrets:
          POSTGRES_USER: {file: ./env/.POSTGRES_USER}
          POSTGRES_PASSWORD: {file: ./env/.POSTGRES_PASSWORD}
          db: {file: ./env/.db}
        """, **{"env__.POSTGRES_USER": "zabbix", "env__.POSTGRES_PASSWORD": "zabbix", "env__.db": "zabbix"})
    by = records(f)
    user = by[("secrets.weak_value", "POSTGRES_USER")]
    assert user.status == "INFO" and "user or database name" in user.actual
    assert by[("secrets.weak_value", "POSTGRES_PASSWORD")].status == "FAIL"  # the password is still judged
    assert by[("secrets.weak_value", "db")].status == "FAIL"  # no *_FILE variable says what it holds


def test_one_env_line_shared_by_services_is_one_finding_saying_it_comes_from_dotenv(tmp_path):
    f = project(tmp_path, """\
        x-env: &env
          DB_PASSWORD: ${DB_PASSWORD}
        services:
          a: {image: "alpine:3.19", environment: *env}
          b: {image: "alpine:3.19", environment: *env}
          c: {image: "alpine:3.19", environment: *env}
          d:
            image: alpine:3.19
            environment: {API_TOKEN: "${API_TOKEN:-Kq83mZp0Lw2vNx7c}", LIT_SECRET: "Hq82nV0zPw3kLmXa"}
        """, **{".env": "DB_PASSWORD=Zr9qT2xW8vLp4Nm\n"})
    by = records(f)
    plain = [by[("secrets.no_plaintext_env", s)] for s in "abcd"]
    assert [r.status for r in plain] == ["FAIL", "INFO", "INFO", "FAIL"]
    assert ".env line 1" in plain[0].actual and "literal" not in plain[0].actual and "2 more" in plain[0].actual
    assert "reported for service a" in plain[1].actual
    kinds = {x["variable"]: x["origin"] for x in plain[3].evidence["findings"]}
    assert kinds == {"API_TOKEN": "interpolation_default", "LIT_SECRET": "literal"}
    assert "Zr9qT2xW8vLp4Nm" not in str([vars(r) for r in plain])


def test_a_missing_secret_file_is_reported_once(tmp_path):
    f = project(tmp_path, """\
        services:
          db:
            image: postgres:16.2
            environment: {POSTGRES_PASSWORD_FILE: /run/secrets/pg, OTHER_FILE: /run/secrets/nothing}
            secrets: [pg]
        secrets:
          pg: {file: ./missing-secret.txt}
        """)
    by = records(f)
    assert by[("secrets.mounted", "db")].status == "FAIL"
    env = by[("secrets.file_env", "db")]
    assert env.status == "FAIL" and "POSTGRES_PASSWORD_FILE" not in env.actual and "OTHER_FILE" in env.actual
    f2 = project(tmp_path / "only", """\
        services:
          db:
            image: postgres:16.2
            environment: {POSTGRES_PASSWORD_FILE: /run/secrets/pg}
            secrets: [pg]
        secrets:
          pg: {file: ./missing-secret.txt}
        """)
    assert records(f2)[("secrets.file_env", "db")].status == "INFO"


def test_a_secret_file_outside_any_git_repository_is_skipped_with_the_reason(tmp_path):
    outside = Path(tempfile.mkdtemp(prefix="runbook-lint-nogit-"))
    try:
        if subprocess.run(["git", "-C", str(outside), "rev-parse"], capture_output=True).returncode == 0:
            pytest.skip("the temporary directory is inside a git work tree")
        f = project(outside, """\
            services:
              db: {image: "postgres:16.2", environment: {POSTGRES_PASSWORD_FILE: /run/secrets/pg}, secrets: [pg]}
            secrets:
              pg: {file: ./pg-secret.txt}
            """, **{"pg-secret.txt": "Zr9qT2xW8vLp4NmQ"})
        r = records(f)[("secrets.committed_file", "pg")]
        assert r.status == "SKIP" and "no git work tree" in r.actual
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_a_udp_relay_range_is_no_admin_port_and_80_beside_443_is_the_https_redirect(tmp_path):
    f = project(tmp_path, """\
        services:
          relay:
            image: coturn/coturn:4.6.2
            ports: ["3478:3478/udp", "49152-65535:49152-65535/udp"]
          proxy:
            image: nginx:1.25.4
            ports: ["80:80", "443:443"]
          plain:
            image: nginx:1.25.4
            ports: ["8080:80"]
          hadoop:
            image: apache/hadoop:3.3.6
            ports: ["50070:50070"]
        """)
    by = records(f)
    assert by[("hardening.admin_ports", "relay")].status == "PASS"
    assert by[("hardening.admin_ports", "hadoop")].status == "FAIL"  # the real one, TCP, alone
    tls = by[("hardening.tls", "proxy")]
    assert tls.status == "INFO" and "redirect" in tls.actual
    assert by[("hardening.tls", "plain")].status == "FAIL"


def test_one_shot_jobs_and_bounded_on_failure_are_not_judged_as_long_running_services(tmp_path):
    f = project(tmp_path, """\
        services:
          db-migrate:
            image: alpine:3.19
            restart: "no"
          app:
            image: alpine:3.19
            restart: unless-stopped
            depends_on: {db-migrate: {condition: service_started}}
          worker:
            image: alpine:3.19
            restart: on-failure:5
          web:
            image: nginx:1.25.4
            restart: on-failure
            ports: ["127.0.0.1:8080:80"]
        """)
    by = records(f)
    job = by[("service.restart_policy", "db-migrate")]
    assert job.status == "INFO" and "job" in job.actual
    assert by[("service.healthcheck", "db-migrate")].status == "INFO"
    cis = by[("service.restart_policy", "worker")]
    assert cis.status == "WARN" and cis.severity == "low"
    web = by[("service.restart_policy", "web")]  # unbounded on-failure on a server: still the finding
    assert web.status == "FAIL" and web.severity == "high"


def test_a_locally_built_image_is_judged_by_its_dockerfile_from_lines(tmp_path):
    f = project(tmp_path, """\
        services:
          pinned: {build: ./app, image: "myorg/app:latest"}
          floating: {build: {context: ./app, dockerfile: Dockerfile.floating}}
          unseen: {build: ./nodockerfile}
        """, **{"app__Dockerfile": "ARG PY=3.12.2-slim\nFROM python:${PY} AS base\nFROM base\n",
                "app__Dockerfile.floating": "FROM node:20.11.1 AS deps\nFROM nginx\n",
                "nodockerfile__README": "no Dockerfile here\n"})
    by = records(f)
    ok = by[("images.pinned", "pinned")]
    assert ok.status == "PASS" and "python:3.12.2-slim" in ok.actual
    bad = by[("images.pinned", "floating")]
    assert bad.status == "FAIL" and "FROM nginx" in bad.actual and "node" not in bad.actual
    assert by[("images.pinned", "unseen")].status == "SKIP"


def test_lint_piped_into_a_reader_that_leaves_early_prints_no_traceback(tmp_path):
    f = project(tmp_path, """\
        services:
          web: {image: "nginx:1.25.4", ports: ["80:80"], environment: {API_TOKEN: "Kq83mZp0Lw2vNx7c"}}
        """)
    runbook = Path(sys.executable).parent / "runbook"
    p = subprocess.Popen([str(runbook), "lint", str(f), "--format", "json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before lint writes: `| head -0`
    err = p.stderr.read().decode()
    p.wait(timeout=300)
    p.stderr.close()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert p.returncode == 1  # the verdict still stands: findings


def test_secrets_declared_only_in_a_shipped_example_override_are_one_finding_naming_it(tmp_path):
    f = project(tmp_path, """\
        services:
          db:
            image: postgres:16.2
            environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db_password}
            secrets: [db_password]
          app:
            image: alpine:3.19
            environment: {DB_PASSWORD_FILE: /run/secrets/db_password, API_KEY_FILE: /run/secrets/api_key}
            secrets: [db_password, api_key]
        """, **{"docker-compose.override.yml.example": "secrets:\n  db_password: {file: ./db.txt}\n"
                                                       "  api_key: {file: ./api.txt}\n"})
    recs = lint_files([f]).records
    loud = [(r.id, r.target) for r in recs if r.status == "FAIL" and r.severity in ("high", "critical")]
    # Compose's refusal (the project does not start as it is), and the cause, once
    assert loud == [("compose.consistency", "compose"), ("secrets.undeclared", "app")], loud
    by = {(r.id, r.target): r for r in recs}
    cause = by[("secrets.undeclared", "app")]
    assert "docker-compose.override.yml.example" in cause.actual and "also used by db" in cause.actual
    for rule in ("secrets.mounted", "secrets.file_env", "secrets.file_mode"):
        assert by[(rule, "db")].status == "INFO", rule
