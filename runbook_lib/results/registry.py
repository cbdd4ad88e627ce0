"""The check registry: one declaration per check id (contract: docs/design.md, "the check registry").

A check is declared once, next to the function that runs it::

    @check("prod.drift", "Running containers match the compose files", severity="high",
           category="Configuration drift")
    def drift(ctx): ...

and its phase is the phase whose manifest lists the function (:mod:`runbook_lib.run.manifest`, which calls
:func:`place`; a ``phase=`` given to :func:`check` must agree with it). The declaration holds everything the
rest of the toolkit reads about a check: its title, its phase, its default severity, its category in the sign-off's verification table, whether it changes the deployment
and its CIS Docker Benchmark id. :class:`~runbook_lib.results.records.Check` takes title, phase and severity
from here; the sign-off table, waivers, severity overrides and the crash handler of
:meth:`~runbook_lib.run.phase.PhaseSession.run` read it too.

The static rules of ``runbook lint`` are declared by their table, handed to :func:`declare_rules`; a phase
function that runs some of them says so with :func:`runs`. A family (``smoke.drill``) covers ids with a suffix
(``smoke.drill.redis``).

The registry is read from anywhere (a report of an old run, the policy's validation), so it must be complete
whoever asks first: on first use it imports :data:`CATALOG`, the module at the top of the package that imports
every declaring module (the phases, whose manifests place their checks, and the run's own records) and hands
the lint rules to :func:`declare_rules`. The registry itself imports nothing of the project.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, replace
from typing import Callable, Iterable, TypeVar

F = TypeVar("F", bound=Callable)

# The sign-off's verification table, in order. A check's category is part of its declaration.
CATEGORIES: tuple[str, ...] = (
    "Preflight",
    "Startup and restart stability",
    "Service connectivity",
    "End-to-end flow",
    "Degraded mode per dependency",
    "Metrics and monitoring",
    "Log ingestion",
    "Runtime errors in the logs (tracebacks, exceptions, panics, server errors, 5xx)",
    "Resource usage",
    "Docker secrets",
    "Container hardening",
    "Production mode",
    "Configuration drift",
    "Static audit",
    "Run integrity",
    "Sign-off",
)

# The module whose import declares every check (the registry is complete once it is imported).
CATALOG = "runbook_lib.catalog"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    phase: str            # the phase whose manifest lists it ("lint": only `runbook lint` and the static audit)
    severity: str         # default; policy.severity_overrides changes it per id
    category: str         # row of the verification table
    changes_deployment: bool = False
    cis: str = ""
    remediation: str = ""
    family: bool = False  # ids are "<id>.<suffix>" (one per dependency, ...)
    function: str = ""    # module:function that runs it

    def matches(self, check_id: str) -> bool:
        return check_id == self.id or (self.family and check_id.startswith(self.id + "."))


_REGISTRY: dict[str, CheckSpec] = {}


def declare(spec: CheckSpec) -> CheckSpec:
    """Register a check; declaring the same id twice differently is a programming error."""
    if spec.category not in CATEGORIES:
        raise ValueError(f"check {spec.id}: unknown category {spec.category!r}; one of {CATEGORIES}")
    old = _REGISTRY.get(spec.id)
    if old is not None and not spec.phase:  # declared again (a module reloaded): keep the phase placed since
        spec = replace(spec, phase=old.phase)
    if old is not None and old != spec:
        raise ValueError(f"check {spec.id} declared twice: {old} and {spec}")
    _REGISTRY[spec.id] = spec
    return spec


def check(check_id: str, title: str, *, severity: str, category: str, phase: str = "", changes_deployment: bool = False,
          cis: str = "", remediation: str = "", family: bool = False) -> Callable[[F], F]:
    """Declare a check and mark the decorated function as the one that runs it; its phase comes from the
    manifest that lists the function (:func:`place`)."""

    def wrap(fn: F) -> F:
        declare(CheckSpec(check_id, title, phase, severity, category, changes_deployment, cis, remediation, family,
                          f"{fn.__module__}:{fn.__name__}"))
        fn.check_ids = (*getattr(fn, "check_ids", ()), check_id)  # type: ignore[attr-defined]
        return fn

    return wrap


def runs(*check_ids: str, phase: str = "") -> Callable[[F], F]:
    """Mark a phase function as running rules declared elsewhere (the lint rules); its phase comes from the
    manifest that lists the function (:func:`place`)."""

    def wrap(fn: F) -> F:
        for cid in check_ids:
            _RUNS[cid] = (phase, f"{fn.__module__}:{fn.__name__}")
        fn.check_ids = (*getattr(fn, "check_ids", ()), *check_ids)  # type: ignore[attr-defined]
        return fn

    return wrap


# rule id -> (phase, function) for lint rules that a phase runs at run time
_RUNS: dict[str, tuple[str, str]] = {}


def place(fn: Callable, phase: str) -> None:
    """Record that ``phase`` runs ``fn``: every check id it declares (or rule it runs) belongs to that phase.
    A phase given at declaration must agree; a check placed in two phases is a programming error."""
    function = f"{fn.__module__}:{fn.__name__}"
    for cid in getattr(fn, "check_ids", ()):
        spec = _REGISTRY.get(cid)
        if spec is not None and spec.function == function:
            if spec.phase and spec.phase != phase:
                raise ValueError(f"check {cid} is declared in phase {spec.phase} but listed in {phase}'s manifest")
            _REGISTRY[cid] = replace(spec, phase=phase)
        elif cid in _RUNS:
            old_phase, old_function = _RUNS[cid]
            if old_phase and (old_phase, old_function) != (phase, function):
                raise ValueError(f"rule {cid} is run by {old_function} in {old_phase}, and listed in {phase}'s manifest")
            _RUNS[cid] = (phase, function)
        else:
            raise ValueError(f"{function}, listed in {phase}'s manifest, names check {cid} but neither declares it "
                             "(@check) nor runs it (@runs)")

# The runner's own records (phase "runner": recorded by the runner, not run by a notebook).
declare(CheckSpec("runner.phase", "Phase ran to completion", "runner", "critical", "Run integrity",
                  remediation="Open the executed notebook in the run directory and read the failing cell.",
                  function="runbook_lib.run.runner:run_phase"))
declare(CheckSpec("runner.deploy_lock", "No other run changed the deployment during a read-only run", "runner",
                  "critical", "Run integrity", remediation="Run again once the run holding the deploy lock is done "
                  "(`runbook lock status`); its changes make this run's evidence unreliable.",
                  function="runbook_lib.run.lock:RunGuard.record_into"))
declare(CheckSpec("runner.undeclared_check", "A check function with no declaration crashed", "runner", "high",
                  "Run integrity", remediation="Declare the function with @registry.check and fix what it raised.",
                  function="runbook_lib.run.phase:PhaseSession.run"))


def _rule_category(rule_id: str) -> str:
    if rule_id.startswith("secrets."):
        return "Docker secrets"
    if rule_id.startswith("hardening."):
        return "Container hardening"
    return "Static audit"


def declare_rules(rules: Iterable, *, function: str) -> None:
    """Declare the static rules (objects with ``id``, ``title``, ``severity``, ``cis`` and ``remediation``):
    in phase "lint", run by ``function``, unless a phase function runs them (:func:`runs`)."""
    for rule in rules:
        phase, runner = _RUNS.get(rule.id, ("lint", function))
        spec = CheckSpec(rule.id, rule.title, phase or "lint", rule.severity, _rule_category(rule.id), False, rule.cis,
                         rule.remediation, False, runner)
        _REGISTRY.setdefault(rule.id, spec)


def _load() -> None:
    importlib.import_module(CATALOG)


def specs() -> dict[str, CheckSpec]:
    """Every declared check, by id (imports the declaring modules on first use)."""
    _load()
    return dict(_REGISTRY)


def get(check_id: str) -> CheckSpec | None:
    """The declaration of a check id (exact, or the family it belongs to), or None."""
    spec = _REGISTRY.get(check_id)
    if spec is None:
        _load()
        spec = _REGISTRY.get(check_id)
    if spec is None:
        spec = next((s for s in _REGISTRY.values() if s.family and s.matches(check_id)), None)
    return spec


def require(check_id: str) -> CheckSpec:
    spec = get(check_id)
    if spec is None:
        hint = difflib.get_close_matches(check_id, list(_REGISTRY), n=1)
        raise KeyError(f"unregistered check id {check_id!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return spec


def category_of(check_id: str) -> str:
    spec = get(check_id)
    return spec.category if spec else "Other"


def unknown_ids(patterns: Iterable[str]) -> dict[str, str | None]:
    """Check-id patterns (waivers, severity overrides, required checks) that match no declared check:
    pattern -> closest declared id (or None)."""
    import fnmatch

    ids = list(specs())
    out: dict[str, str | None] = {}
    for pat in patterns:
        if get(pat) is not None or any(fnmatch.fnmatchcase(i, pat) for i in ids):
            continue
        hint = difflib.get_close_matches(pat, ids, n=1)
        out[pat] = hint[0] if hint else None
    return out
