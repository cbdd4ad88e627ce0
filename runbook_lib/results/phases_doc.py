"""docs/phases.md, generated from the check registry (runbook_lib/results/registry.py).

Each phase with what it proves, then its checks as the registry declares them: id, title, category in the
verification table, default severity, CIS Docker Benchmark id, whether it changes the deployment. The
registry is the one source for the tables; a test regenerates the page and fails when the committed file
differs.

    python -m runbook_lib.results.phases_doc            # rewrite docs/phases.md
    python -m runbook_lib.results.phases_doc --check    # exit 1 when docs/phases.md is out of date

Reads the registry through its public functions only: :func:`registry.specs` (every declaration) and the
fields of :class:`registry.CheckSpec`. A developer tool of the source checkout, like
:mod:`runbook_lib.params.doc`: installed, it needs ``--out FILE``.
"""
from __future__ import annotations

import sys

from runbook_lib.params.doc import checkout_doc, generator_main
from runbook_lib.results import registry


DOC = checkout_doc("phases.md")

INTRO = """# The phases and their checks

Generated from the check registry (`runbook_lib/results/registry.py`) by `python -m runbook_lib.results.phases_doc`:
do not edit by hand (`tests/report/test_phases_doc.py` fails when this page is out of date). `runbook checks`
prints the same list. Every check is declared once, beside the function that runs it: its id, title, phase,
default severity (`policy.severity_overrides` changes it per id), its category in the sign-off's verification
table, whether it changes the deployment, and its CIS Docker Benchmark id (v1.6). An id ending in `.*` is a
family: one record per dependency (`smoke.drill.redis`).

Each phase is one notebook under `notebooks/`, run headless by `runbook run` or opened by hand. Volumes are never
removed unless the parameters set `redeploy.remove_volumes: true` **and** `redeploy.confirm_volume_removal: <project
name>`; even then every named volume is first archived into the run directory. Asked without the confirmation,
`runbook run` exits 2 before touching anything. In swarm mode (`mode: swarm`) every phase runs against the stack:
[swarm-and-fleets.md](swarm-and-fleets.md).
"""

# What each phase proves, and where its behaviour is told in full. Keyed by the registry's phase name.
PHASES: dict[str, tuple[str, str]] = {
    "00_preflight": ("Preflight", (
        "Engine and Compose v2; parameters valid; the compose model resolves; every file secret present and "
        "non-empty (its mode: `secrets.file_mode`); the static audit (`runbook lint`; in a run with phase 2 it "
        "points to phase 2 for the rules judged there); no unrecovered drill journal; every container of a "
        "declared service running and connected; what runs now (a fact, INFO), and every container carrying the "
        "project's label whose service is not in the compose model, named (phase 1 removes it). In swarm mode: "
        "the swarm, its nodes, the stack's external objects and the stack file. Changes nothing. When it has a "
        "blocking problem the runner skips the phases with a check that changes the deployment (1 and 4) and "
        "records them as SKIP; the read-only phases still gather their evidence. See [running.md](running.md).")),
    "01_controlled_redeployment": ("Controlled redeployment", (
        "Inventory (containers, images with digests, volumes); `down --remove-orphans`, then any container of "
        "the project outside the compose model that Compose left (one started by hand with the project's labels) "
        "is removed, each named in the record; leftover containers of the same system removed; nothing left; "
        "`up -d`; every service healthy (engine events, bounded); post-deploy init steps run and verified; "
        "inventory after; no volume destroyed. In swarm mode: `docker stack deploy --prune` and convergence, "
        "service by service. Not run with `--read-only`.")),
    "02_secrets_security": ("Secrets and security", (
        "Per container: secrets mounted, non-empty, readable, not writable/readable by others; `*_FILE` variables "
        "name real files; no plaintext credential in the environment (by name and by value); secret values absent "
        "from inspect, image history and logs; hardening with CIS Docker Benchmark ids. The same rules as "
        "`runbook lint`, judged on the running containers: [lint.md](lint.md). Changes nothing.")),
    "03_production_mode": ("Production mode", (
        "Per service: production mode by the environment (the frameworks' switches); no development server or "
        "debugger; restart policy; healthcheck defined and healthy; no drift from the compose files; no container "
        "of the project outside the compose model; stable (running, restart count, optional events window); "
        "memory/CPU limits set and one stats sample under the threshold (bar chart); no runtime error signature "
        "in the logs since the deploy; Prometheus targets up, Alertmanager, Grafana and Loki healthy when their "
        "URLs are given. How each is judged: [production-mode.md](production-mode.md). Changes nothing.")),
    "04_smoke_tests": ("Smoke tests and drills", (
        "Every endpoint answers in time; `/metrics` parses and has the required families; the end-to-end flow; "
        "per dependency a drill (stop, pause or disconnect for a few seconds; in swarm mode, scale to 0) judged "
        "against the designed degraded behaviour, restored, recovery time measured, the flow passing again, every "
        "endpoint asked once more; timelines as images. Breaks each drilled dependency briefly; always restores: "
        "[smoke-and-drills.md](smoke-and-drills.md).")),
    "05_signoff": ("Sign-off", (
        "The verification table by category; accepted risks (waivers); release blockers; the verdict and its "
        "rationale; a readiness statement that claims only what was checked; remediation notes; who signed, when, "
        "the toolkit version, the compose files' hashes and the image digests: "
        "[run-directory.md](run-directory.md).")),
    "runner": ("The runner's own records", (
        "Recorded by `runbook run` itself, not by a notebook: a phase that did not complete, a read-only run "
        "during which the deployment changed, a crash of an undeclared check, and a fleet's per-target results.")),
    "rollback": ("Rollback to the last GO", (
        "Recorded by a rollback: `runbook rollback --to RUN_DIR` (a run directory of its own) or phase 1 with "
        "`redeploy.on_failure: rollback` when its health gate fails (in that run's phase 1 records). The GO run's "
        "images, compose model and secret file hashes are still here (or the difference is named and nothing "
        "changes), the model is brought up, phase 1's health gate and phase 4's endpoint checks judge it, and the "
        "containers run the GO run's image ids: [rollback.md](rollback.md).")),
    "lint": ("`runbook lint` only", (
        "Static rules judged only on the compose files, by `runbook lint` and phase 0's static audit "
        "(`preflight.static_audit`); the rules phase 2 also judges at run time are listed under phase 2. "
        "The rules, their anchors in other scanners and what each reads: [lint.md](lint.md).")),
}


def phase_order(phases: set[str]) -> list[str]:
    """The notebooks' phases in their order, then the runner's records, the rollback's, lint's, then anything else."""
    notebooks = sorted(p for p in phases if p[:2].isdigit())
    rest = [p for p in ("runner", "rollback", "lint") if p in phases]
    return notebooks + rest + sorted(phases - set(notebooks) - set(rest))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def phase_section(phase: str, specs: list[registry.CheckSpec]) -> list[str]:
    """One phase: its heading, what it proves, and the table of its checks sorted by id."""
    name, text = PHASES.get(phase, (phase, ""))
    heading = f"## {phase}: {name}" if phase[:2].isdigit() else f"## {name}"
    lines = [heading, ""]
    if phase[:2].isdigit():
        lines += [f"Notebook `notebooks/{phase}.ipynb`.", ""]
    if text:
        lines += [text, ""]
    lines += ["| id | title | category | severity | CIS | changes the deployment |", "|---|---|---|---|---|---|"]
    for spec in sorted(specs, key=lambda s: s.id):
        check_id = f"{spec.id}.*" if spec.family else spec.id
        lines.append("| " + " | ".join(_cell(c) for c in (
            f"`{check_id}`", spec.title, spec.category, spec.severity, spec.cis or "-",
            "yes" if spec.changes_deployment else "")) + " |")
    return lines + [""]


def render() -> str:
    """The whole page: the introduction, then one section per phase."""
    specs = list(registry.specs().values())
    lines = [INTRO]
    for phase in phase_order({s.phase for s in specs}):
        lines += phase_section(phase, [s for s in specs if s.phase == phase])
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, module="runbook_lib.results.phases_doc", description=__doc__.splitlines()[0], doc=DOC,
                          name="phases.md", source="the registry", render=render)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
