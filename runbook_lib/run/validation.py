"""Validation before a run: everything that can be checked before a container is touched, one path for an
ordinary run (:mod:`runbook_lib.run.runner`) and a fleet (:mod:`runbook_lib.run.fleet`).

Each function raises :class:`~runbook_lib.errors.InputError` (exit 2) with one clear message naming the file
and the key. The order: the phases asked for (:func:`choose_phases`), then what the parameters alone say
(:func:`check_parameters`), then the compose model's services (:func:`check_services`), then the notebooks
(:func:`check_notebooks`). Only the runner reaches the engine in between (a fleet's targets each reach their
own, in their own run).
"""
from __future__ import annotations

import difflib
from pathlib import Path

from runbook_lib.errors import InputError
from runbook_lib.params import PHASES, Params, load_waivers, refuse_unsupported_phases, unknown_phase


def destructive_phases() -> tuple[str, ...]:
    """Notebook phases with a check declared as changing the deployment (redeploy; dependency drills). After a
    blocking preflight they are skipped (recorded as SKIP, so the verdict is NO-GO); the read-only
    phases still gather their evidence."""
    from runbook_lib.results.registry import specs

    return tuple(sorted({s.phase for s in specs().values() if s.changes_deployment and s.phase in PHASES}))


def read_only_phases(phases: list[str]) -> list[str]:
    """The phases a read-only run runs, of ``phases`` (empty: all): every phase but redeployment, which is
    nothing but changing the deployment. Phase 4 runs too: in a read-only run it asks its endpoints and
    records its drills SKIP (:mod:`runbook_lib.phases.smoke.readonly`)."""
    return [p for p in (phases or PHASES) if p != "01_controlled_redeployment"]


def choose_phases(params: Params, asked: list[str] | None) -> Params:
    """``params`` with the phases to run: those asked for (``--phase``, in the toolkit's order) or the
    parameters' own (empty: every phase, :func:`check_notebooks` fills them in); in a read-only run, the
    read-only ones of those."""
    if asked:
        problem = unknown_phase(asked)
        if problem:
            raise InputError(f"--phase: {problem}")
        params = params.model_copy(update={"phases": sorted(set(asked), key=PHASES.index)})
    if params.read_only:
        kept = read_only_phases(params.phases)
        if not kept:
            raise InputError("--read-only: phase 01_controlled_redeployment only changes the deployment, so a read-only "
                             "run of it runs nothing; ask for other phases (or none: every read-only one)")
        params = params.model_copy(update={"phases": kept})
    return params


def check_parameters(params: Params) -> None:
    """What the parameters alone say: destructive requests carry their confirmation, the phases exist in this
    mode (swarm), every check id the policy names is declared (:func:`check_ids_known`)."""
    params.ensure_safe()
    refuse_unsupported_phases(params)
    check_ids_known(params)


def check_ids_known(params: Params) -> None:
    """Every check id the policy names (waivers, severity overrides, required checks) is declared in the
    registry: a typo would otherwise silently waive or override nothing. Raises InputError naming the
    file, the key and the closest declared id. Also loads the waivers file (malformed: an input error)."""
    from runbook_lib.results.registry import unknown_ids

    named: dict[str, str] = {}
    if params.policy.waivers_file:
        for i, w in enumerate(load_waivers(params.policy.waivers_file)):
            named.setdefault(w.check, f"{params.policy.waivers_file}: waivers[{i}].check")
    for cid in params.policy.severity_overrides:
        named.setdefault(cid, f"{params.source}: policy.severity_overrides")
    for pat in params.policy.required_checks:
        named.setdefault(pat, f"{params.source}: policy.required_checks")
    bad = unknown_ids(named)
    if bad:
        raise InputError("; ".join(f"{where}: {cid!r} is not a check id of this toolkit"
                                   + (f" (did you mean {hint!r}?)" if hint else "") for cid, hint in bad.items()
                                   for where in [named[cid]]) + ". `runbook checks` lists them.")


def check_services(params: Params, services: set[str]) -> None:
    """Every service the parameters name is one the compose files define (InputError naming where, with a
    did-you-mean)."""
    unknown = {s: w for s, w in params.service_names_used().items() if s not in services}
    if unknown:
        parts = []
        for s, where in unknown.items():
            hint = difflib.get_close_matches(s, services, n=1)
            parts.append(f"{s!r} (in {', '.join(where)})" + (f", did you mean {hint[0]!r}?" if hint else ""))
        raise InputError(f"{params.source}: unknown service {'; '.join(parts)}. "
                         f"The compose files define: {', '.join(sorted(services))}.")


def check_notebooks(params: Params, notebooks: Path) -> None:
    """Every phase to run has its notebook in ``notebooks``; no phase named means every phase that has one
    (``params.phases`` is filled in)."""
    if not params.phases:
        params.phases = [p for p in PHASES if (notebooks / f"{p}.ipynb").exists()]
    for p in params.phases:
        if not (notebooks / f"{p}.ipynb").exists():
            raise InputError(f"{params.source}: phase {p!r} has no notebook in {notebooks}; "
                             "remove it from `phases:` (this toolkit version does not ship it yet).")
