"""Issue 10, check level: a PASS is a judgement on an observed value. Facts are INFO; evidence that
could not be gathered is ERROR; a user is judged by its uid. Real engine and the real demo stack;
the check functions are called directly with a Context, as a phase notebook does."""
from __future__ import annotations

import pytest

from conftest import PARAMS, ROOT

from runbook_lib.context import Context
from runbook_lib.params import load_params, with_overrides

DEMO = ROOT / "demo" / "compose.yaml"


def demo_ctx(*overrides) -> Context:
    params = load_params(PARAMS / "demo.yaml")
    if overrides:
        params = with_overrides(params, compose_files=[DEMO, *overrides])
    return Context(params=params, progress=lambda s: None)


@pytest.mark.docker
def test_current_state_and_inventories_are_info_never_pass(healthy_demo):
    from runbook_lib.checks import preflight, redeploy
    from runbook_lib.records import counts

    ctx = demo_ctx()
    recs = preflight.current_state(ctx)
    # inventory_before and inventory_after only read: called on the running demo, nothing is redeployed
    recs += redeploy.inventory_before(ctx) + redeploy.inventory_after(ctx)
    facts = {r.id: r for r in recs if r.id != "preflight.orphans"}
    assert set(facts) == {"preflight.current_state", "redeploy.inventory_before", "redeploy.inventory_after"}
    for r in facts.values():
        assert r.status == "INFO", (r.id, r.status, r.actual)
        assert r.evidence and "containers" in r.evidence  # the fact itself is still recorded
    assert counts(facts.values())["PASS"] == 0
    assert "9 of 9 project containers running" in facts["preflight.current_state"].actual
    assert facts["redeploy.inventory_after"].actual.startswith("9 containers (0 recreated)")
