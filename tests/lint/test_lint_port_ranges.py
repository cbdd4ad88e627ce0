"""A large port range (a TURN relay's 16k UDP ports) is grouped before Compose expands it, and judged
exactly as the expanded range is: real Compose resolves both ways."""
from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest

import runbook_lib.lint.ranges as ranges
from runbook_lib.lint import lint_files

RELAY = """\
    x-relay: &relay
      - "3478:3478/udp"
      - "49152-65535:49152-65535/udp"
    services:
      turn:
        image: coturn/coturn:4.6
        ports: *relay
      turn-b:
        image: coturn/coturn:4.6
        ports: *relay
      web:
        image: nginx:1.25
        ports: ["127.0.0.1:8000-8999:8000-8999", "9222"]
        env_file: [app.env]
    """


@pytest.fixture(autouse=True)
def no_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


def judged(tmp_path: Path) -> list[tuple]:
    (tmp_path / "app.env").write_text("MODE=relative-path-resolves\n")
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(RELAY))
    result = lint_files([f])
    return sorted((r.id, r.target, r.status, r.actual, str(r.evidence)) for r in result.records)


def test_a_large_port_range_is_judged_the_same_grouped_as_expanded(tmp_path, monkeypatch):
    before = set(Path(tempfile.gettempdir()).glob("runbook-lint-*"))
    grouped = judged(tmp_path)
    assert set(Path(tempfile.gettempdir()).glob("runbook-lint-*")) == before  # the copies are removed
    monkeypatch.setattr(ranges, "MIN_GROUPED", 1 << 20)  # nothing grouped: Compose expands every range
    expanded = judged(tmp_path)
    assert grouped == expanded
    ports = {r[1]: r for r in grouped if r[0] == "hardening.published_ports"}
    assert "0.0.0.0:49152-65535->49152-65535/udp" in ports["turn"][3]
    assert "0.0.0.0:49152-65535->49152-65535/udp" in ports["turn-b"][3]  # through the anchor, both services


def test_the_stand_in_replaces_only_the_range_where_it_was_written():
    import yaml

    text = 'services:\n  a:\n    ports: [ "80:80", \'1000-1999:1000-1999/udp\' ]  # keep\n'
    found = ranges.find_ranges(yaml.compose(text).value[0][1].value[0][1].value[0][1].value)
    assert [(r.host_first, r.host_last, r.container_last, r.protocol) for r in found] == [(1000, 1999, 1999, "udp")]
    assert ranges.rewritten(text, found) == 'services:\n  a:\n    ports: [ "80:80", "1000:1999/udp" ]  # keep\n'
    assert ranges.rewritten("include: [x.yaml]\n" + text, found) is None  # paths relative to a file: as written
