"""Engine.scale_service on a real single-node swarm (a second engine in its own network namespace,
tests/engines.py; the main engine is never put in swarm mode): only the replicas change in the service's
spec, as `docker service scale` does; a global service and a missing one are refused as EngineErrors."""
from __future__ import annotations

import copy

import pytest

from engines import netns_engine, netns_swarm, skip_reason  # noqa: F401  (pytest fixtures)

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

REPLICATED, GLOBAL = "rbtest-scale-web", "rbtest-scale-agent"


@pytest.fixture(scope="module")
def services(netns_swarm):
    for name, mode in ((REPLICATED, ["--replicas", "1"]), (GLOBAL, ["--mode", "global"])):
        netns_swarm.docker("service", "create", "--detach", "--no-resolve-image", "--name", name, *mode,
                           "--entrypoint", "sleep", "--env", "KEEP=me", "--limit-memory", "64m",
                           "runbook-demo/app:local", "3600")
    yield netns_swarm
    netns_swarm.docker("service", "rm", REPLICATED, GLOBAL, check=False)


@pytest.fixture
def engine(services, monkeypatch):
    from runbook_lib.engine import Engine

    monkeypatch.setenv("DOCKER_HOST", services.host)
    return Engine(timeout=30)


def _with_replicas(spec: dict, n: int) -> dict:
    want = copy.deepcopy(spec)
    want["Mode"]["Replicated"]["Replicas"] = n
    return want


def test_scaling_a_service_changes_only_its_replicas_and_back(engine):
    before = engine.service(REPLICATED)
    engine.scale_service(REPLICATED, 0)
    down = engine.service(REPLICATED)
    assert down["Spec"] == _with_replicas(before["Spec"], 0)
    assert down["Version"]["Index"] > before["Version"]["Index"]
    engine.scale_service(REPLICATED, 1)
    up = engine.service(REPLICATED)
    assert up["Spec"] == before["Spec"]
    assert up["PreviousSpec"] == down["Spec"]


def test_a_global_service_and_a_missing_one_cannot_be_scaled(engine):
    from runbook_lib.engine import EngineError

    before = engine.service(GLOBAL)
    with pytest.raises(EngineError, match="is not replicated \\(global\\): it cannot be scaled"):
        engine.scale_service(GLOBAL, 0)
    assert engine.service(GLOBAL)["Version"] == before["Version"]
    with pytest.raises(EngineError) as missing:
        engine.scale_service("rbtest-scale-none", 1)
    assert missing.value.status_code == 404 and "while scaling service rbtest-scale-none to 1" in str(missing.value)

