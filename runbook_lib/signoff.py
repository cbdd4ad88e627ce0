"""Phase 5, sign-off: the final verification table, accepted risks, blockers, the verdict and its
rationale, a readiness statement that claims only what was checked, remediation notes, and the
sign-off block (who, when, which toolkit, which compose files and images).

The verdict here comes from :func:`runbook_lib.policy.evaluate`, the same function the runner uses for
summary.json, over the records of every earlier phase of the run.
"""
from __future__ import annotations

import fnmatch
import getpass
import hashlib
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from . import __version__
from .display import Html, RecordTable, badge, esc, simple_table, verdict_banner
from .errors import RunbookError
from .phase import PhaseSession
from .policy import Decision, WaiverOutcome, evaluate, ref
from .records import Check, CheckRecord, counts, read_records

PHASE = "05_signoff"

# The verification table's rows: category -> check-id patterns (first matching category wins).
CATEGORIES: dict[str, list[str]] = {
    "Preflight": ["preflight.*"],
    "Startup and restart stability": ["redeploy.*", "prod.stability"],
    "Service connectivity": ["smoke.health"],
    "End-to-end flow": ["smoke.flow*"],
    "Degraded mode per dependency": ["smoke.drill*"],
    "Metrics": ["smoke.metrics*"],
    "Log ingestion": ["prod.observability*", "prod.logs*"],
    "Resource usage": ["prod.resources*"],
    "Docker secrets": ["secrets.*"],
    "Container hardening": ["hardening.*", "security.*", "lint.*"],
    "Production mode": ["prod.env", "prod.restart_policy", "prod.healthcheck"],
    "Configuration drift": ["prod.drift*"],
}
SEVERITY_ORDER = ("ERROR", "FAIL", "WARN", "SKIP", "WAIVED", "PASS")


@dataclass
class RunView:
    """The run being signed off: its records (waivers applied) and the decision over them."""

    run_dir: Path | None
    records: list[CheckRecord]
    decision: Decision
    categories: dict[str, list[str]]
    on: date

    @property
    def waivers(self) -> WaiverOutcome:
        return self.decision.waivers


def latest_run_dir(project: str, outputs: Path) -> Path | None:
    runs = sorted(p for p in outputs.glob(f"*-{project}*") if (p / "results").is_dir())
    return runs[-1] if runs else None


def load(phase: PhaseSession, outputs: Path | None = None) -> RunView:
    """The records of every earlier phase of this run. Interactively (no run directory), the latest
    run of the project under ``outputs/`` is reviewed, read-only."""
    run_dir = phase.ctx.run_dir
    if run_dir is None:
        outputs = outputs or (Path(phase.params.source).parent.parent / "outputs" if phase.params.source else Path("outputs"))
        run_dir = latest_run_dir(phase.params.project, outputs)
        if run_dir is None:
            phase.ctx.progress(f"no run of {phase.params.project} under {outputs} yet: nothing to sign off "
                               "(run `runbook run`, or give this notebook a run_dir)")
    records = []
    for p in sorted((run_dir / "results").glob("*.json")) if run_dir else []:
        if p.stem != PHASE:
            records.extend(read_records(p))
    started = _run_started(run_dir) if run_dir else datetime.now(timezone.utc).date()
    waived, decision = evaluate(records, phase.params.policy, started)
    return RunView(run_dir, waived, decision, phase.params.signoff.categories or CATEGORIES, started)


def _run_started(run_dir: Path) -> date:
    # The run directory's name starts with its UTC start time: the date waivers are judged on.
    try:
        return datetime.strptime(run_dir.name[:16], "%Y%m%dT%H%M%SZ").date()
    except ValueError:
        return datetime.now(timezone.utc).date()


def category_of(check_id: str, categories: dict[str, list[str]]) -> str:
    for name, patterns in categories.items():
        if any(fnmatch.fnmatchcase(check_id, p) for p in patterns):
            return name
    # Not a category of the table unless such records exist (a phase that did not complete...).
    return "Runner" if check_id.startswith("runner.") else "Other"


def _worst(recs: list[CheckRecord]) -> str:
    present = {r.status for r in recs}
    return next((s for s in SEVERITY_ORDER if s in present), "SKIP")


def verification_table(run: RunView) -> Html:
    """One row per category: overall status (the worst record), counts, and links to the evidence."""
    by_cat: dict[str, list[CheckRecord]] = {name: [] for name in run.categories}
    for r in run.records:
        by_cat.setdefault(category_of(r.id, run.categories), []).append(r)
    rows, text = [], []
    for name, recs in by_cat.items():
        if not recs:
            rows.append([esc(name), badge("SKIP"), "not verified by this run", ""])
            text.append(f"{name:32} not verified")
            continue
        c = counts(recs)
        tally = " · ".join(f"{s} {n}" for s, n in c.items() if n)
        ids = sorted({r.id for r in recs})
        problems = [r for r in recs if r.status not in ("PASS",)]
        links = ", ".join(f"<a href='#{esc(r.id)}--{esc(r.target)}'>{esc(ref(r))}</a>" for r in problems[:8])
        rows.append([esc(name), badge(_worst(recs)), esc(tally) + "<br><small>" + esc(", ".join(ids)) + "</small>",
                     links or "<small>all passed</small>"])
        text.append(f"{name:32} {_worst(recs):6} {tally}")
    return Html(simple_table(["Category", "Status", "Records (check ids)", "Problems (evidence)"], rows,
                             raw_columns=(0, 1, 2, 3)), "\n".join(text))


def waiver_records(run: RunView) -> list[CheckRecord]:
    """One record per waiver: applied (with what it waived), expired (not applied) or stale."""
    c = Check("signoff.waiver", "Waiver", phase=PHASE, severity="low",
              remediation="Renew the waiver with a new justification and expiry, fix the check, or remove the waiver.")
    out = []
    for w, refs in run.waivers.applied:
        out.append(c.record(f"{w.check}@{w.target or '*'}", "PASS", expected="valid on the run's date",
                            actual=f"applied to {len(refs)} record(s), expires {w.expires}",
                            evidence={**w.model_dump(mode="json"), "waived": refs, "judged_on": run.on.isoformat()}))
    for w, refs in run.waivers.expired:
        out.append(c.record(f"{w.check}@{w.target or '*'}", "WARN", expected="valid on the run's date",
                            actual=f"expired on {w.expires}: not applied to {', '.join(refs)}",
                            evidence={**w.model_dump(mode="json"), "would_waive": refs, "judged_on": run.on.isoformat()},
                            severity="medium"))
    for w in run.waivers.stale:
        out.append(c.record(f"{w.check}@{w.target or '*'}", "WARN", expected="matches a FAIL or WARN of this run",
                            actual="stale: matches no problem in this run; remove it",
                            evidence={**w.model_dump(mode="json"), "judged_on": run.on.isoformat()}))
    return out


def blockers_table(run: RunView) -> RecordTable:
    return RecordTable(run.decision.blockers, "Release blockers")


def verdict(run: RunView, project: str) -> Html:
    c = counts(run.records)
    started = min((r.started for r in run.records), default="")
    return Html(verdict_banner(run.decision.verdict, project, c, [ref(r) for r in run.decision.blockers], started,
                               datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
                               extra=f"<p>{esc(run.decision.rationale)}</p>"),
                f"{run.decision.verdict}: {run.decision.rationale}")


def readiness(run: RunView, project: str) -> Html:
    """What this run shows, and only that: categories verified, categories not verified, risks accepted."""
    cats: dict[str, list[CheckRecord]] = {}
    for r in run.records:
        cats.setdefault(category_of(r.id, run.categories), []).append(r)
    verified = [n for n in run.categories if cats.get(n) and all(x.status in ("PASS", "WAIVED") for x in cats[n])]
    partial = [n for n in run.categories if cats.get(n) and n not in verified]
    missing = [n for n in run.categories if not cats.get(n)]
    d = run.decision
    lead = (f"<b>{esc(project)} is ready for release as far as this run can show.</b>" if d.go
            else f"<b>{esc(project)} is not ready for release:</b> {len(d.blockers)} blocker(s), listed above.")
    parts = [f"<p>{lead} {len(run.records)} check records were gathered with their evidence.</p>",
             "<ul>",
             f"<li>Verified (every record PASS or accepted): {esc(', '.join(verified) or 'none')}.</li>",
             f"<li>With problems: {esc(', '.join(partial) or 'none')}.</li>",
             f"<li><b>Not verified by this run</b> (no claim is made about them): {esc(', '.join(missing) or 'none')}.</li>"]
    if d.waived:
        parts.append(f"<li>Accepted risks: {esc(', '.join(ref(r) for r in d.waived))} (see the waivers above).</li>")
    parts.append("</ul>")
    text = f"{'GO' if d.go else 'NO-GO'}; verified: {', '.join(verified)}; not verified: {', '.join(missing)}"
    return Html("".join(parts), text)


def remediation(run: RunView) -> Html:
    rows = [[ref(r), r.status, r.remediation or "(no remediation given)"] for r in run.records
            if r.status in ("FAIL", "ERROR", "WAIVED", "WARN")]
    if not rows:
        return Html("<p>Nothing to remediate.</p>", "nothing to remediate")
    return Html(simple_table(["Record", "Status", "Remediation"], rows), "\n".join(" ".join(r) for r in rows))


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc}"


def signoff_records(phase: PhaseSession, run: RunView) -> list[CheckRecord]:
    """The sign-off block as a record: operator, approver, time, toolkit version, compose-file hashes
    and the image digests running now. Stored with the run, so the signature covers it."""
    p = phase.params
    c = Check("signoff.block", "Sign-off", phase=PHASE, severity="info")
    operator = p.operator or os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()
    images: dict[str, dict] = {}
    try:
        for v in phase.ctx.engine.project_containers(p.project):
            info = phase.ctx.engine.image_summary(v.image_id)
            images[v.service] = {"image": v.image, "id": info.get("id"), "digests": info.get("digests", [])}
    except RunbookError as exc:
        images = {"error": str(exc)}
    ev = {
        "operator": operator, "approver": p.signoff.approver or "(not named)",
        "signed_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "toolkit_version": __version__, "verdict": run.decision.verdict, "run_dir": str(run.run_dir),
        "compose_files": {str(f): _sha256(f) for f in p.compose_files},
        "env_files": {str(f): _sha256(f) for f in p.env_files},
        "images": images,
        "waivers_file": {str(p.policy.waivers_file): _sha256(p.policy.waivers_file)} if p.policy.waivers_file else None,
    }
    return [c.record(p.project, "PASS", expected="who signed, when, and what was verified",
                     actual=f"{run.decision.verdict} signed by {operator}", evidence=ev)]


def signoff_html(record: CheckRecord) -> Html:
    ev = record.evidence
    rows = [["Operator", ev["operator"]], ["Approver", ev["approver"]], ["Signed at (UTC)", ev["signed_at"]],
            ["Verdict", ev["verdict"]], ["Toolkit version", ev["toolkit_version"]]]
    rows += [[f"Compose file {Path(f).name}", f"sha256:{h}"] for f, h in ev["compose_files"].items()]
    rows += [[f"Image of {svc}", f"{i.get('image')} {i.get('id')} {' '.join(i.get('digests') or [])}"]
             for svc, i in ev["images"].items() if isinstance(i, dict)]
    return Html(simple_table(["", ""], rows), "\n".join(f"{a}: {b}" for a, b in rows))
