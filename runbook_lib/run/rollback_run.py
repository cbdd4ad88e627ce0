"""``runbook rollback --to RUN_DIR``: roll back to a GO run (:mod:`runbook_lib.run.rollback`) under the deploy
lock, and write what was done as a run directory of its own: the GO run's parameters, ``run.json`` (with
``rollback_of``), ``results/rollback.json``, a ``notebooks/rollback.ipynb`` that shows its records, then the
verdict, the report, the manifest and its signature, as a run writes them (:func:`runbook_lib.run.runner.finish`).
``runbook verify`` and ``runbook report`` read it like any run directory.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from runbook_lib import __version__
from runbook_lib.results.records import CheckRecord, utcnow, write_records
from runbook_lib.phases.redeploy.rollback import on_failed_gate, perform
from runbook_lib.run.rollback import PHASE, RollbackRefused, open_target, plan
from runbook_lib.run.rundir import RunResult, new_run_dir

if TYPE_CHECKING:
    from runbook_lib.run.context import Context


def _notebook(run_dir: Path, records: list[CheckRecord], target: str) -> None:
    """notebooks/rollback.ipynb: what the report shows of a rollback (a heading and its records' table)."""
    import nbformat

    from runbook_lib.results.display import RecordTable

    table = RecordTable(records, f"rollback to {target}")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(
        f"# Rollback to {target}\n\nThe GO run's images (by id), compose model and secret files (by SHA-256) "
        "were checked, redeployed with `docker compose up -d`, then judged by phase 1's health gate, phase 4's "
        "endpoint checks, and the image ids the containers run."))
    cell = nbformat.v4.new_code_cell("rollback.perform(ctx, target)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": table._repr_html_(),
                                                                 "text/plain": repr(table)})]
    nb.cells.append(cell)
    nbformat.write(nb, run_dir / "notebooks" / f"{PHASE}.ipynb")


def _archive(run_dir: Path, target: Path, started: str) -> None:
    """The GO run's parameters (and waivers) and run.json, so the verdict is re-derived from the archive."""
    for name in ("params.yaml", "waivers.yaml"):
        if (target / name).is_file():
            shutil.copyfile(target / name, run_dir / name)
    run = json.loads((target / "run.json").read_text(encoding="utf-8"))
    (run_dir / "run.json").write_text(json.dumps({
        "schema": 1, "project": run.get("project"), "started": started, "toolkit_version": __version__,
        "params_source": run.get("params_source", ""), "phases": [PHASE], "show_code": False,
        "rollback_of": str(target), "docker_host": run.get("docker_host", ""),
    }, indent=1) + "\n", encoding="utf-8")


def rollback(to: Path, *, output: Path | None = None, key: Path | None = None, wait_s: float = 0,
             progress: Callable[[str], None] = print) -> RunResult:
    """Roll back to the GO run ``to``; raises RollbackRefused (exit 2, nothing changed) when it cannot be
    restored exactly, LockHeld (exit 3) when another run holds the deploy lock. The run directory goes
    under ``output`` (default: beside ``to``)."""
    from runbook_lib.params import load_params
    from runbook_lib.results import signing
    from runbook_lib.run.context import Context
    from runbook_lib.run.lock import holding
    from runbook_lib.run.runner import finish

    target = open_target(Path(to), key)
    params = load_params(target.run_dir / "params.yaml")
    ctx = Context(params=params, progress=progress)
    ctx.learn_secrets(containers=False)
    pl = plan(ctx, target)
    if pl.problems:
        raise RollbackRefused(pl.refusal())
    signing_key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
    with holding(ctx.engine, params.project, f"runbook rollback --to {target.run_dir}", wait_s=wait_s,
                 budget_s=params.redeploy.healthy_timeout_s + 900, progress=progress):
        run_dir = new_run_dir(Path(output or target.run_dir.parent).resolve(), params.project)
        started = utcnow()
        _archive(run_dir, target.run_dir, started)
        progress(f"runbook: rollback to {target.run_dir.name}; run directory {run_dir}")
        ctx.run_dir = run_dir
        t0 = time.monotonic()
        records = [CheckRecord.from_dict(ctx.redactor.scrub(r.fields())) for r in perform(ctx, target)]
        write_records(run_dir / "results" / f"{PHASE}.json", records)
        _notebook(run_dir, records, target.run_dir.name)
        entry = {"phase": PHASE, "status": "completed", "detail": f"rollback to {target.run_dir.name}",
                 "records": len(records), "duration_s": round(time.monotonic() - t0, 1)}
        return finish(run_dir, params, started, [entry], progress=progress, signing_key=signing_key)


def after_smoke_tests(ctx: "Context", run_dir: Path, progress: Callable[[str], None] = print) -> bool:
    """``redeploy.on_failure: rollback`` at the end of a run whose phase 1 redeployed and whose phase 4 (the smoke
    tests) holds a blocker, when phase 1 did not roll back already: roll back to the last GO run (as
    :func:`~runbook_lib.phases.redeploy.rollback.on_failed_gate` does) and write its records as ``results/rollback.json``
    with the notebook the report shows. Returns whether it wrote them."""
    from datetime import date

    from runbook_lib.results.policy import evaluate
    from runbook_lib.results.records import read_records
    from runbook_lib.results.verdict import run_started

    p = ctx.params
    results = run_dir / "results"
    redeploy, smoke = results / "01_controlled_redeployment.json", results / "04_smoke_tests.json"
    if p.redeploy.on_failure != "rollback" or p.mode != "compose" or not redeploy.is_file() or not smoke.is_file():
        return False
    if any(r.id.startswith(f"{PHASE}.") for r in read_records(redeploy)):
        return False  # phase 1 rolled back already: phase 4 judged the rolled-back deployment
    blockers = evaluate(read_records(smoke), p.policy, date.fromisoformat(run_started(run_dir)[:10])).blockers
    if not blockers:
        return False
    progress(f"rollback: the smoke tests have {len(blockers)} blocker(s) ({blockers[0].id}@{blockers[0].target})")
    ctx.run_dir = run_dir
    records = [CheckRecord.from_dict(ctx.redactor.scrub(r.fields()))
               for r in on_failed_gate(ctx, blockers, why="the smoke tests failed")]
    write_records(results / f"{PHASE}.json", records)
    _notebook(run_dir, records, records[0].evidence.get("run_dir", "the last GO run").rsplit("/", 1)[-1])
    return True
