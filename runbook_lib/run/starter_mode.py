"""`runbook init`'s ``production.expected_env``: only the production values the compose model itself sets.

``prod.env`` FAILs an app service that lacks an expected variable. A starter file that required
``ENV=production`` of a service that never reads ``ENV`` (a proxy, a database image, most frameworks) would
give a FAIL a person reading the application would call false. So init requires a variable of a service only
when that service's compose environment (``environment:`` and ``env_file:``, as ``docker compose config``
merges them) already sets a known mode variable (:data:`MODE_VARIABLES`) to a production value: phase 3 then
checks that the running container really has it. Variables every app service sets alike go to
``expected_env``, the others to ``env_overrides``. Nothing else is required; a TODO says so.
"""
from __future__ import annotations

from typing import Any

#: mode variables of common runtimes -> the values that mean "production" (compared case-insensitively)
MODE_VARIABLES: dict[str, tuple[str, ...]] = {
    "ENV": ("production", "prod"), "ENVIRONMENT": ("production", "prod"), "APP_ENV": ("production", "prod"),
    "NODE_ENV": ("production",), "RAILS_ENV": ("production",), "RACK_ENV": ("production",),
    "FLASK_ENV": ("production",), "DJANGO_ENV": ("production", "prod"), "MIX_ENV": ("prod",),
    "ASPNETCORE_ENVIRONMENT": ("production",), "DOTNET_ENVIRONMENT": ("production",), "GIN_MODE": ("release",),
    "SPRING_PROFILES_ACTIVE": ("prod", "production"), "GO_ENV": ("production",), "PYTHON_ENV": ("production",),
}


def production_values(spec: dict[str, Any]) -> dict[str, str]:
    """The mode variables the service's compose environment sets to a production value (names and values
    of mode variables only: nothing else of the environment is read)."""
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(str(e).split("=", 1) if "=" in str(e) else (str(e), None) for e in env)
    return {k: str(env[k]) for k, ok in MODE_VARIABLES.items()
            if env.get(k) is not None and str(env[k]).lower() in ok}


def production_env(modes: dict[str, dict[str, str]]) -> tuple[dict[str, str], dict[str, dict[str, str]], list[str]]:
    """``(expected_env, env_overrides, comment lines)`` from each app service's production values."""
    apps = list(modes)
    shared = dict(modes[apps[0]]) if apps else {}
    for values in modes.values():
        shared = {k: v for k, v in shared.items() if values.get(k) == v}
    overrides = {s: {k: v for k, v in values.items() if k not in shared} for s, values in modes.items()}
    overrides = {s: v for s, v in overrides.items() if v}
    bare = [s for s, values in modes.items() if not values]
    lines = ["prod.env requires a variable of an app service only where its compose environment already sets a "
             "production mode value (" + ", ".join(MODE_VARIABLES) + "), so a service that never reads ENV is not "
             "asked for it; phase 3 checks the running containers really have these."]
    if shared or overrides:
        seen = "; ".join(f"{s}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                         for s, values in modes.items() if values)
        lines.append(f"Set in the compose model: {seen}.")
    lines.append("TODO: expected_env holds only what the compose model shows"
                 + (f"; nothing is required of {', '.join(bare)}" if bare else "")
                 + ". Add the variables your services really read for production mode (e.g. NODE_ENV: production), "
                   "per service in env_overrides.")
    return shared, overrides, lines
