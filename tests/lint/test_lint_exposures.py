"""`runbook lint` finds the exposures a compose file can hide in its less common forms: ports published
without a host port, a host IP written inside `published:`, host directories behind named volumes, slave
mount propagation, a host directory written by two services, image tags without a digest. Each test lints a
minimal compose file resolved by the real Compose CLI (no engine needed)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runbook_lib.lint import lint_files


@pytest.fixture(autouse=True)
def no_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


def lint(tmp_path: Path, text: str) -> dict:
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(text))
    return {(r.id, r.target): r for r in lint_files([f]).records}


# -- ports published without a host port ---------------------------------------------------------------

def test_a_container_only_port_is_published_on_every_interface_on_a_random_host_port(tmp_path):
    by = lint(tmp_path, """\
        services:
          web:
            image: nginx:1.25
            ports: ["80"]
          debug:
            image: node:20.11
            ports: ["9229"]
        """)
    ports = by[("hardening.published_ports", "web")]
    assert ports.status == "WARN" and "0.0.0.0:(random)->80/tcp" in ports.actual
    assert by[("hardening.tls", "web")].status == "FAIL"
    admin = by[("hardening.admin_ports", "debug")]
    assert admin.status == "FAIL" and "Node.js inspector" in admin.actual
    assert by[("hardening.privileged_ports", "web")].status == "PASS"  # the random host port is above 1023


def test_a_container_only_port_range_is_one_entry_and_every_admin_port_in_it_is_found(tmp_path):
    by = lint(tmp_path, """\
        services:
          wide:
            image: example/wide:1.0
            ports: ["70-8000"]
          debug:
            image: example/debug:1.0
            ports: ["5000-5010"]
        """)
    ports = by[("hardening.published_ports", "wide")]
    assert ports.status == "WARN" and ports.evidence["ports"] == [
        {"host_ip": "", "host_port": "", "container_port": "70-8000", "protocol": "tcp"}]
    assert by[("hardening.tls", "wide")].status == "FAIL"  # 80, 3000, 8000 are in the range
    admin = by[("hardening.admin_ports", "debug")]
    assert admin.status == "FAIL" and [p["port"] for p in admin.evidence["admin_ports"]] == [5005]
    assert "Java debug (JDWP) on 0.0.0.0:(random)->5005/tcp" in admin.actual


def test_a_service_that_publishes_nothing_still_passes_the_port_rules(tmp_path):
    by = lint(tmp_path, """\
        services:
          quiet:
            image: example/quiet:1.0
            expose: ["80"]
        """)
    for rule in ("hardening.published_ports", "hardening.admin_ports", "hardening.tls"):
        assert by[(rule, "quiet")].status == "PASS", rule


# -- a host IP inside published: ----------------------------------------------------------------------

def test_a_host_ip_inside_published_is_read_as_the_interface_it_names(tmp_path):
    by = lint(tmp_path, """\
        services:
          local:
            image: node:20.11
            ports:
              - target: 9229
                published: "127.0.0.1:8080"
          v6:
            image: nginx:1.25
            ports:
              - target: 80
                published: "[::1]:8081"
          range:
            image: nginx:1.25
            ports:
              - target: 80
                published: "127.0.0.1:8080-8090"
        """)
    for service in ("local", "v6", "range"):
        ports = by[("hardening.published_ports", service)]
        assert "0.0.0.0" not in ports.actual, ports.actual
        assert ports.severity == "low" and "host_ip:" in ports.actual  # the form the engine may refuse
        assert by[("hardening.admin_ports", service)].status == "PASS"  # loopback only
        assert by[("hardening.tls", service)].status == "PASS"
    assert by[("hardening.published_ports", "local")].evidence["ports"][0]["host_ip"] == "127.0.0.1"
    assert by[("hardening.published_ports", "v6")].evidence["ports"][0]["host_ip"] == "::1"
    assert by[("hardening.published_ports", "range")].evidence["ports"][0]["host_port"] == "8080-8090"


# -- host directories behind named volumes -------------------------------------------------------------

def test_a_named_volume_that_binds_a_sensitive_host_directory_is_a_sensitive_mount(tmp_path):
    by = lint(tmp_path, """\
        services:
          app:
            image: example/app:1.0
            volumes: ["hostetc:/host-etc", "data:/data"]
          reader:
            image: example/app:1.0
            volumes: ["hostetc-ro:/host-etc"]
        volumes:
          data: {}
          hostetc:
            driver: local
            driver_opts: {type: none, o: bind, device: /etc}
          hostetc-ro:
            driver_opts: {type: none, o: "bind,ro", device: /etc}
        """)
    mounts = by[("hardening.sensitive_mounts", "app")]
    assert mounts.status == "FAIL" and "/etc at /host-etc" in mounts.actual
    assert by[("hardening.sensitive_mounts", "reader")].status == "PASS"  # `o: bind,ro`: read-only


def test_a_named_volume_that_binds_the_docker_socket_is_a_docker_socket_mount(tmp_path):
    by = lint(tmp_path, """\
        services:
          agent:
            image: example/agent:1.0
            volumes: ["sock:/var/run/docker.sock"]
        volumes:
          sock:
            driver_opts: {type: none, o: bind, device: /var/run/docker.sock}
        """)
    sock = by[("hardening.docker_socket", "agent")]
    assert sock.status == "FAIL" and sock.severity == "critical" and "/var/run/docker.sock" in sock.actual


# -- slave mount propagation ----------------------------------------------------------------------------

def test_slave_mount_propagation_is_flagged_at_a_lower_severity_than_shared(tmp_path):
    (tmp_path / "mnt").mkdir()
    by = lint(tmp_path, """\
        services:
          slave:
            image: example/app:1.0
            volumes: ["./mnt:/mnt:rslave"]
          plain-slave:
            image: example/app:1.0
            volumes: [{type: bind, source: ./mnt, target: /m, bind: {propagation: slave}}]
          shared:
            image: example/app:1.0
            volumes: ["./mnt:/mnt:rshared"]
          private:
            image: example/app:1.0
            volumes: ["./mnt:/mnt:ro"]
        """)
    for service in ("slave", "plain-slave"):
        v = by[("hardening.mount_propagation", service)]
        assert v.status == "FAIL" and v.severity == "low" and "slave" in v.actual, service
    assert by[("hardening.mount_propagation", "shared")].status == "FAIL"
    assert by[("hardening.mount_propagation", "shared")].severity == "medium"
    assert by[("hardening.mount_propagation", "private")].status == "PASS"


# -- a host directory written by two services -----------------------------------------------------------

def test_a_host_directory_mounted_writable_into_two_services_is_reported(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "own").mkdir()
    by = lint(tmp_path, """\
        services:
          a:
            image: example/app:1.0
            volumes: ["./shared:/data", "./own:/own"]
          b:
            image: example/app:1.0
            volumes: ["./shared:/srv/data"]
          reader:
            image: example/app:1.0
            volumes: ["./own:/own:ro"]
        """)
    shared = by[("hardening.shared_volume", "./shared")]  # the target does not depend on where the project is
    assert shared.status == "WARN" and "written by 2 services: a, b" in shared.actual
    assert shared.evidence["kind"] == "bind"
    assert ("hardening.shared_volume", "./own") not in by  # one writer, one read-only reader


# -- digest pinning --------------------------------------------------------------------------------------

def test_a_version_tag_without_a_digest_is_an_info_finding_and_a_digest_passes(tmp_path):
    digest = "sha256:" + "a" * 64
    by = lint(tmp_path, f"""\
        services:
          tagged:
            image: nginx:1.25
          pinned:
            image: nginx:1.25@{digest}
        """)
    tagged = by[("images.pinned", "tagged")]
    assert tagged.status == "INFO" and tagged.severity == "info" and "no digest" in tagged.actual
    assert by[("images.pinned", "pinned")].status == "PASS"
