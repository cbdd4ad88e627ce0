"""Phase 4 in a read-only run (``read_only: true``, ``runbook run --read-only``): the first look at a
production system asks it over HTTP without changing it.

What runs: ``smoke.health`` and ``smoke.metrics`` (GET requests), and the flow's steps up to the first one
that may change something. A step is safe when its method is GET, HEAD or OPTIONS, or the parameters mark
it ``safe: true`` (a login POST that writes nothing). The flow stops at the first other step: a later GET
may read what the skipped write would have made (the object stored, the call started), so running it would
FAIL for the run's own sake, not the system's. What does not run is recorded SKIP (severity info: not
verified, not a blocker), saying why; so are the drills, which stop a dependency.
"""
from __future__ import annotations

from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.params.sections import Drill

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
READ_ONLY = "a read-only run"


def is_safe(step) -> bool:
    """Whether a flow step changes nothing: a GET, HEAD or OPTIONS, or a step the parameters mark ``safe``."""
    return step.method in SAFE_METHODS or bool(getattr(step, "safe", False))


def safe_prefix(steps: list) -> int:
    """How many of the flow's first steps a read-only run runs: those before the first unsafe step."""
    return next((i for i, s in enumerate(steps) if not is_safe(s)), len(steps))


def skipped_steps(c: Check, steps: list) -> list[CheckRecord]:
    """SKIP records (info) for the flow steps a read-only run does not run, ``steps`` from the first
    unsafe one on, each saying why."""
    if not steps:
        return []
    first = steps[0]
    out = []
    for s in steps:
        why = (f"not run: {READ_ONLY}, and {s.method} may change the deployment (mark the step `safe: true` if it "
               "changes nothing)") if s is first else (f"not run: {READ_ONLY} stops the flow at step {first.name!r} "
                                                       f"({first.method}), whose effects later steps may read")
        out.append(c.record(s.name, "SKIP", expected=f"{s.method} answers {'/'.join(map(str, s.expect_status))}",
                            actual=why, severity="info",
                            evidence={"read_only": True, "method": s.method, "first_unsafe_step": first.name}))
    return out


def skipped_drill(c: Check, d: Drill) -> CheckRecord:
    """The SKIP record (info) of a drill in a read-only run."""
    return c.record(d.dependency, "SKIP", severity="info", expected=f"{d.mode} {d.dependency}, then recovery",
                    actual=f"not run: {READ_ONLY}, and the drill would {d.mode} {d.dependency}",
                    evidence={"read_only": True, "mode": d.mode, "endpoints": [ep.name for ep in d.endpoints]})
