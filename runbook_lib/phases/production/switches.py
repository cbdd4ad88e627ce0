"""prod.env: the development switches of the common web frameworks, judged where a service sets them.

A framework reads its own variable, not ``ENV``: Flask ``FLASK_ENV``/``FLASK_DEBUG``, Django ``DJANGO_DEBUG``
(and many settings files ``DEBUG``), Express and most Node tools ``NODE_ENV``, Rails/Rack ``RAILS_ENV``/
``RACK_ENV``, Laravel/Symfony ``APP_ENV``/``APP_DEBUG``, ASP.NET Core ``ASPNETCORE_ENVIRONMENT``/
``DOTNET_ENVIRONMENT``, Spring ``SPRING_PROFILES_ACTIVE``, Gin ``GIN_MODE``, Phoenix ``MIX_ENV``, Werkzeug
``WERKZEUG_DEBUG_PIN=off``, a Node debugger in ``NODE_OPTIONS``. Each one a container carries (its own
environment, which includes the image's ``ENV``) is judged:

- a development value (``development``, ``debug``, ``true``...) is a finding;
- a production value (``production``, ``release``, ``false``...) is evidence of production mode;
- anything else (``staging``, a profile list without ``prod``) is shown, not judged;
- a switch that is absent is no claim either way.

:func:`judge_switches` returns the three lists; :func:`source_of` says whether a value came from the compose
file (``environment``/``env_file``) or the image.
"""
from __future__ import annotations

import re
from typing import Any

_DEV_ENV = {"development", "develop", "dev", "debug", "local", "test", "testing"}
_PROD_ENV = {"production", "prod", "release", "live"}
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}

# name: (framework, kind); kind: "env" (an environment name), "bool" (a debug flag), "profiles" (a list),
# "gin" (debug | test | release), "pin" (the Werkzeug debugger PIN), "node_options" (debugger flags)
SWITCHES: dict[str, tuple[str, str]] = {
    "FLASK_ENV": ("Flask", "env"), "FLASK_DEBUG": ("Flask", "bool"),
    "DJANGO_DEBUG": ("Django", "bool"), "DEBUG": ("Django and others", "bool"), "DJANGO_ENV": ("Django", "env"),
    "NODE_ENV": ("Node.js/Express", "env"), "NODE_OPTIONS": ("Node.js", "node_options"),
    "RAILS_ENV": ("Rails", "env"), "RACK_ENV": ("Rack", "env"),
    "APP_ENV": ("Laravel/Symfony", "env"), "APP_DEBUG": ("Laravel/Symfony", "bool"),
    "ASPNETCORE_ENVIRONMENT": ("ASP.NET Core", "env"), "DOTNET_ENVIRONMENT": (".NET", "env"),
    "SPRING_PROFILES_ACTIVE": ("Spring", "profiles"), "GIN_MODE": ("Gin", "gin"), "MIX_ENV": ("Phoenix", "env"),
    "WERKZEUG_DEBUG_PIN": ("Werkzeug debugger", "pin"), "PYRAMID_RELOAD_TEMPLATES": ("Pyramid", "bool"),
}


def _judge_one(name: str, kind: str, value: str) -> str:
    """'development', 'production' or 'unknown' for one switch's value."""
    v = value.strip().lower()
    if kind == "env":
        return "development" if v in _DEV_ENV else "production" if v in _PROD_ENV else "unknown"
    if kind == "bool":
        return "development" if v in _TRUE else "production" if v in _FALSE else "unknown"
    if kind == "profiles":
        profiles = {p.strip() for p in v.split(",")}
        return ("development" if profiles & _DEV_ENV else "production" if profiles & _PROD_ENV else "unknown")
    if kind == "gin":
        return "development" if v in ("debug", "test") else "production" if v == "release" else "unknown"
    if kind == "pin":
        return "development" if v == "off" else "unknown"  # "off": the debugger console needs no PIN
    if kind == "node_options":
        return "development" if re.search(r"--inspect(-brk)?\b", v) else "unknown"
    return "unknown"


def source_of(name: str, model_env: dict[str, Any] | list | None) -> str:
    """Where a variable of the container came from: the compose file (its environment or env_file) or the image."""
    if isinstance(model_env, list):
        keys = {str(e).split("=", 1)[0] for e in model_env}
    else:
        keys = set(model_env or {})
    return "compose environment/env_file" if name in keys else "image ENV"


def judge_switches(environment: dict[str, str], model_env: dict[str, Any] | list | None = None) -> dict[str, list]:
    """The known switches a container carries, sorted into ``development``, ``production`` and ``unknown``:
    each ``{name, framework, value, source}``. ``DEBUG`` with a value that is not a boolean (the Node
    ``debug`` package's namespaces, say) is unknown, not a finding."""
    out: dict[str, list] = {"development": [], "production": [], "unknown": []}
    for name, (framework, kind) in SWITCHES.items():
        if name not in environment:
            continue
        value = environment[name]
        verdict = _judge_one(name, kind, value)
        if kind == "node_options" and verdict == "unknown":
            continue  # NODE_OPTIONS without a debugger flag says nothing about the mode
        shown = value if len(value) <= 80 else value[:77] + "..."
        out[verdict].append({"name": name, "framework": framework, "value": shown, "source": source_of(name, model_env)})
    return out
