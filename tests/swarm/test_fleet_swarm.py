"""A fleet target in swarm mode (the mode is the fleet's, passed to every target's run): phase 0 on a
single-node swarm of its own (a second engine in its own network namespace, tests/engines.py), GO, with the
swarm's records in the target's directory and no secret value anywhere in the fleet's."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import run_dir_from
from engines import netns_engine, netns_swarm, skip_reason  # noqa: F401  (pytest fixtures)
from test_swarm_preflight import project, values  # noqa: F401  (pytest fixtures: a stack file, its external secret)

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def test_a_swarm_target_runs_phase0_to_go_inside_a_fleet(netns_swarm, project, values, cli, tmp_path):
    d, params = project
    data = yaml.safe_load(params.read_text())
    data["targets"] = [{"name": "swarm-a", "docker_host": netns_swarm.host, "address": netns_swarm.address}]
    fleet = d / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = cli("run", "--params", str(fleet), "--output", str(tmp_path / "out"), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = run_dir_from(proc.stdout)
    v = json.loads((run / "verdict.json").read_text())
    assert v["verdict"] == "GO" and v["fleet"]["no_go"] == [], v["rationale"]
    recs = json.loads((run / "targets" / "swarm-a" / "results" / "00_preflight.json").read_text())
    assert {(r["id"], r["status"]) for r in recs} >= {("preflight.swarm_active", "PASS"), ("preflight.swarm_objects", "PASS")}
    assert json.loads((run / "targets" / "swarm-a" / "run.json").read_text())["docker_host"] == netns_swarm.host
    everything = "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
    assert values["db"] not in everything and values["api"] not in everything
    assert cli("verify", str(run)).returncode == 0
