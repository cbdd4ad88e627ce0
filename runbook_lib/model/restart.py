"""The restart policy of a service, as the compose model and the engine state it: shared by lint's
service.restart_policy and phase 3's prod.restart_policy and drift check (kept free of their imports, so
`runbook lint` does not load the engine client)."""
from __future__ import annotations

from typing import Any, Mapping


def policy_accepted(policy: str, accepted: list[str]) -> bool:
    """Whether a container's policy ("always", "on-failure:3"...) is one of the accepted ones; plain
    "on-failure" accepts any retry count."""
    if policy in accepted:
        return True
    return policy.startswith("on-failure") and "on-failure" in accepted


def model_restart(spec: Mapping[str, Any]) -> str:
    """The restart policy a service of the compose model asks for (``restart``, else Swarm's
    deploy.restart_policy), in the engine's words; "no" when none."""
    if spec.get("restart"):
        return spec["restart"]
    rp = (spec.get("deploy") or {}).get("restart_policy") or {}
    cond = rp.get("condition")
    if cond:
        return {"any": "always", "none": "no"}.get(cond, f"on-failure:{rp['max_attempts']}"
                                                   if rp.get("max_attempts") else "on-failure")
    return "no"
