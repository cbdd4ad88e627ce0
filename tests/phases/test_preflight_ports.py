"""Who holds the host ports a deployment is about to publish (``preflight.ports_free``, ``runbook demo up
--swarm``): named within seconds, before anything changes."""
from __future__ import annotations

import os
import socket
import time

import pytest

from runbook_lib.deploy.port_holders import Binding, engine_shares_this_network, find_conflicts, model_bindings
from runbook_lib.params import load_params
from runbook_lib.run.context import Context


@pytest.mark.docker
def test_a_port_held_by_a_process_of_this_host_is_named_with_its_pid(engine):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        bindings = model_bindings({"web": {"ports": [{"target": 80, "published": str(port), "host_ip": "127.0.0.1"}],
                                           "ranged": {"ports": [{"target": 80, "published": "9000-9001"}]}}})
        [conflict] = find_conflicts(engine.published_ports(), bindings, own=lambda p: False, local=True)
    assert conflict.binding == Binding("web", "127.0.0.1", port, "tcp")
    assert f"(pid {os.getpid()})" in conflict.holder and "python" in conflict.holder
    assert find_conflicts([], bindings, own=lambda p: False, local=True) == []  # closed again: free
    # the suite's engine publishes on this host's interfaces; one in a network namespace of its own would not
    assert engine_shares_this_network()
    os.environ["DOCKER_HOST"], saved = "unix:///nonexistent/docker.sock", os.environ.get("DOCKER_HOST")
    try:
        assert not engine_shares_this_network()
    finally:
        os.environ.pop("DOCKER_HOST") if saved is None else os.environ.__setitem__("DOCKER_HOST", saved)


@pytest.mark.docker
def test_the_projects_own_containers_hold_its_ports_and_another_project_is_named(healthy_demo, demo_params):
    from runbook_lib.phases.preflight import ports_free

    params = load_params(demo_params)
    recs = ports_free(Context(params=params, progress=lambda s: None))
    assert len(recs) == 8 and all(r.status == "PASS" and "held by this project's" in r.actual for r in recs), \
        [(r.target, r.actual) for r in recs]
    other = ports_free(Context(params=params.model_copy(update={"project": "someone-else"}), progress=lambda s: None))
    gateway = next(r for r in other if r.target.startswith("api-gateway"))
    assert (gateway.id, gateway.status, gateway.severity) == ("preflight.ports_free", "FAIL", "critical")
    assert gateway.actual == (f"held by container {healthy_demo.project}-api-gateway-1 "
                              f"(compose project {healthy_demo.project})")


@pytest.mark.docker
def test_demo_up_swarm_with_a_port_taken_ends_within_seconds_naming_the_holder(cli):
    """The stack file publishes 8080 on every interface: held by a compose demo if one is up, else by this test."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8080))
            s.listen()
        except OSError:
            pass  # already held (a compose demo): that holder must be named
        t0 = time.monotonic()
        proc = cli("demo", "up", "--swarm", timeout=60)
        elapsed = time.monotonic() - t0
    assert proc.returncode == 2 and elapsed < 10, (proc.returncode, elapsed)
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("runbook: error: the host ports of stack.yaml are taken: ") and "Nothing was changed" in line
    assert "*:8080/tcp (api-gateway) is held by " in line


def test_an_engine_of_another_network_namespace_is_not_local_while_this_one_holds_a_connection_to_it(tmp_path,
                                                                                                      monkeypatch):
    """/proc/net/unix lists the engine's path on a connection's accepted end too (made in the connecting side's
    namespace): only a listening entry (flags __SO_ACCEPTCON) says the engine listens here."""
    head = "Num       RefCount Protocol Flags    Type St Inode Path\n"
    connected = "0000000012345678: 00000003 00000000 00000000 0001 03 4242 /var/tmp/other-ns/docker.sock\n"
    listening = "0000000087654321: 00000002 00000000 00010000 0001 01 4243 /var/tmp/other-ns/docker.sock\n"
    table = tmp_path / "unix"
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/tmp/other-ns/docker.sock")
    table.write_text(head + connected)
    assert engine_shares_this_network(table) is False
    table.write_text(head + connected + listening)
    assert engine_shares_this_network(table) is True
