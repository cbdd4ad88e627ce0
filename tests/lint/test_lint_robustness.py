"""`runbook lint` on malformed and hostile input: a crash never looks like a finding (an internal error has
its own exit status and a JSON error object), every value the parsers read that Compose lets through is
either read or refused with a one-line error naming the service, the Compose timeout is an option and is
named when it runs out, and what Compose is asked to read is bounded (env files, expanded aliases).
Real Compose resolves every file; a fake Compose stands in only where Compose has to hang."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from runbook_lib import cli as cli_mod
from runbook_lib.errors import InputError
from runbook_lib.model.facts import ServiceFacts

from conftest import write_compose

write = write_compose


def lint_cli(*args, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runbook_lib.cli", "lint", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=timeout)


# -- a crash is not a finding ----------------------------------------------------------------------------

def test_a_host_ip_and_a_range_inside_published_lint_instead_of_crashing(no_engine, tmp_path):
    f = write(tmp_path, """\
        services:
          web:
            image: nginx:1.25
            ports:
              - target: 80
                published: 127.0.0.1:8080-8090
        """)
    proc = lint_cli(f, "--format", "json", env=no_engine)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    by = {(r["id"], r["target"]): r for r in json.loads(proc.stdout)["records"]}
    assert by[("hardening.published_ports", "web")]["evidence"]["ports"][0]["host_port"] == "8080-8090"


def test_an_internal_error_has_its_own_exit_status_and_a_json_error_object(tmp_path, monkeypatch, capsys):
    """A bug in a rule (planted: a rule that raises, its message quoting a value of the file) ends with exit 4,
    an error object on stdout and one line on stderr, naming the exception's type and where, never its text."""
    import runbook_lib.lint.audit as audit

    def broken(spec):
        raise ValueError(f"could not read {spec.get('image')}")

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setattr(audit, "judge_image", broken)
    f = write(tmp_path, "services: {web: {image: 'nginx:1.25-quoted-in-the-error'}}\n")
    rc = cli_mod.main(["lint", str(f), "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 4
    error = json.loads(out)["error"]
    assert error["internal"] is True and error["type"] == "ValueError" and "audit.py" in error["where"]
    assert json.loads(out)["exit_code"] == 4 and json.loads(out)["records"] == []
    assert err.count("\n") == 1 and "internal error" in err and "Traceback" not in err
    assert "quoted-in-the-error" not in out + err  # the exception's text may hold a credential: never shown
    rc = cli_mod.main(["lint", str(f), "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    assert rc == 4 and sarif["runs"][0]["invocations"][0]["exitCode"] == 4


# Values of a compose file that Compose resolves without complaint (each probed with `docker compose config`)
# but that no rule can read as they are: each is refused with a line naming the service, or read.
ACCEPTED_BY_COMPOSE = {
    "published not a port": ('ports: [{target: 80, published: "abc"}]', 2, "published 'abc'"),
    "published out of range": ('ports: [{target: 80, published: "99999"}]', 2, "port 99999 is out of range"),
    "published range reversed": ('ports: [{target: 80, published: "8090-8080"}]', 2, "ends before it starts"),
    "published host ip and junk": ('ports: [{target: 80, published: "127.0.0.1:80x"}]', 2, "is not a host port"),
    "two host ips": ('ports: [{target: 80, host_ip: 10.0.0.1, published: "127.0.0.1:8080"}]', 2, "two addresses"),
    "restart unknown": ('restart: "sometimes"', 1, ""),
    "restart count not a number": ('restart: "on-failure:x"', 1, ""),
    "propagation unknown": ("volumes: [{type: bind, source: /tmp, target: /x, bind: {propagation: weird}}]", 1, ""),
    "security_opt without value": ('security_opt: ["seccomp"]', 1, ""),
    "label without value": ('labels: ["a"]', 1, ""),
}


@pytest.mark.parametrize("swarm", [False, True], ids=["compose", "swarm"])
@pytest.mark.parametrize("case", sorted(ACCEPTED_BY_COMPOSE))
def test_every_parsing_path_fed_a_malformed_value_reads_it_or_refuses_it_in_one_line(case, swarm, no_engine, tmp_path):
    key, rc, says = ACCEPTED_BY_COMPOSE[case]
    f = write(tmp_path, f"services:\n  s:\n    image: busybox:1.36\n    {key}\n")
    proc = lint_cli(f, "--format", "json", *(["--swarm"] if swarm else []), env=no_engine)
    # read: findings or none (0 or 1, whatever severity fails the run); refused: 2
    assert (proc.returncode in (0, 1) if rc == 1 else proc.returncode == rc) and "Traceback" not in proc.stderr, \
        proc.stderr
    data = json.loads(proc.stdout)
    if rc == 2:
        assert says in data["error"]["message"] and "service s" in data["error"]["message"]
        assert len(proc.stderr.strip().splitlines()) == 1
    else:
        assert data["records"]


MALFORMED_MODEL = {  # what Compose would refuse, given to the one model reader directly (phase 3 reads it too)
    "ports not a list": {"ports": "80"},
    "port not a mapping": {"ports": ["80"]},
    "target not a port": {"ports": [{"target": "http"}]},
    "pids_limit": {"pids_limit": "many"},
    "healthcheck interval": {"healthcheck": {"test": ["CMD", "true"], "interval": "soon"}},
    "healthcheck retries": {"healthcheck": {"test": ["CMD", "true"], "retries": "x"}},
    "mem_limit": {"mem_limit": "lots"},
    "volumes not a list": {"volumes": "/tmp:/x"},
    "volume not a mapping": {"volumes": ["/tmp:/x"]},
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MODEL))
def test_the_model_reader_refuses_a_malformed_value_naming_the_service(case):
    with pytest.raises(InputError, match="service web"):
        ServiceFacts.from_compose("web", {"image": "nginx:1.25", **MALFORMED_MODEL[case]})


# -- the Compose timeout --------------------------------------------------------------------------------

@pytest.fixture
def hanging_compose(tmp_path, monkeypatch):
    import runbook_lib.engine.compose as compose_mod

    fake = tmp_path / "fake-compose"
    fake.write_text("#!/bin/sh\nexec sleep 120\n")
    fake.chmod(0o755)
    monkeypatch.setattr(compose_mod, "find_compose_command", lambda: (str(fake),))
    return fake


def test_the_compose_timeout_is_an_option_and_its_end_is_named(hanging_compose, tmp_path, capsys):
    f = write(tmp_path, "services: {web: {image: nginx:1.25}}\n")
    t0 = time.monotonic()
    rc = cli_mod.main(["lint", str(f), "--compose-timeout", "1.5", "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 2 and time.monotonic() - t0 < 30
    message = json.loads(out)["error"]["message"]
    assert "timed out after 1.5 s" in message and "--compose-timeout" in message
    assert "do not resolve" not in message


def test_a_large_valid_project_resolves_when_given_the_time(no_engine, tmp_path):
    services = "".join(f"  s{i}: {{image: 'example/s:1.{i}', ports: ['{20000 + i}:80']}}\n" for i in range(300))
    f = write(tmp_path, "services:\n" + services)
    proc = lint_cli(f, "--format", "json", "--compose-timeout", "300", env=no_engine, timeout=400)
    assert proc.returncode in (0, 1) and len(json.loads(proc.stdout)["services"]) == 300, proc.stderr


def test_a_compose_timeout_that_is_not_a_positive_number_is_an_input_error(no_engine, tmp_path):
    f = write(tmp_path, "services: {web: {image: nginx:1.25}}\n")
    proc = lint_cli(f, "--compose-timeout", "0", env=no_engine)
    assert proc.returncode == 2 and "--compose-timeout" in proc.stderr


# -- bounded inputs --------------------------------------------------------------------------------------

def test_an_env_file_that_is_a_fifo_is_refused_before_compose_waits_on_it(no_engine, tmp_path):
    os.mkfifo(tmp_path / "app.env")
    f = write(tmp_path, """\
        services:
          web:
            image: nginx:1.25
            env_file: [./app.env]
        """)
    t0 = time.monotonic()
    proc = lint_cli(f, "--format", "json", env=no_engine)
    assert proc.returncode == 2 and time.monotonic() - t0 < 20, proc.stderr
    message = json.loads(proc.stdout)["error"]["message"]
    assert "service web: env_file" in message and "is a FIFO" in message and "line 4" in message


def test_an_env_file_that_is_a_device_is_refused_before_compose_reads_it(no_engine, tmp_path):
    f = write(tmp_path, """\
        services:
          web:
            image: nginx:1.25
            env_file:
              - path: /dev/zero
                required: false
        """)
    proc = lint_cli(f, "--format", "json", env=no_engine, timeout=60)
    assert proc.returncode == 2 and "/dev/zero is a device" in proc.stderr, proc.stderr
    f = write(tmp_path, "services: {web: {image: nginx:1.25, label_file: /dev/zero}}\n")
    proc = lint_cli(f, env=no_engine, timeout=60)
    assert proc.returncode == 2 and "service web: label_file" in proc.stderr and "is a device" in proc.stderr


def test_env_files_larger_than_the_cap_are_refused_wherever_they_are_named(no_engine, tmp_path):
    big = tmp_path / "big.env"
    big.write_bytes(b"A=" + b"x" * (1 << 20) + b"\n")
    f = write(tmp_path, "services: {web: {image: nginx:1.25, env_file: big.env}}\n")
    proc = lint_cli(f, env=no_engine)
    assert proc.returncode == 2 and "larger than 1 MiB" in proc.stderr and "service web" in proc.stderr
    plain = write(tmp_path, "services: {web: {image: nginx:1.25}}\n", "plain.yaml")
    proc = lint_cli(plain, "--env-file", big, env=no_engine)
    assert proc.returncode == 2 and "--env-file" in proc.stderr and "larger than 1 MiB" in proc.stderr
    (tmp_path / ".env").write_bytes(big.read_bytes())
    proc = lint_cli(plain, env=no_engine)
    assert proc.returncode == 2 and "the project's .env" in proc.stderr


def _bomb(levels: int, width: int, leaf: str) -> str:
    lines = [f"x-a0: &a0 [{', '.join([repr(leaf)] * width)}]"]
    lines += [f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nx-all: *a{levels - 1}\nservices: {{web: {{image: 'nginx:1.25'}}}}\n"


@pytest.mark.parametrize("what,text,says", [
    ("nodes", _bomb(6, 9, "a"), "YAML nodes"),                 # ~1.3M nodes: under the earlier 2M bound
    ("characters", _bomb(5, 10, "a" * 200), "characters"),     # ~230k nodes, 42M characters
], ids=["nodes", "characters"])
def test_an_alias_bomb_under_the_node_bound_is_refused_before_compose_holds_it(what, text, says, no_engine, tmp_path):
    f = write(tmp_path, text, "bomb.yaml")
    assert f.stat().st_size < 10_000
    t0 = time.monotonic()
    proc = lint_cli(f, "--format", "json", env=no_engine, timeout=60)
    assert proc.returncode == 2 and time.monotonic() - t0 < 20, proc.stderr
    assert "alias bomb" in proc.stderr and says in proc.stderr
