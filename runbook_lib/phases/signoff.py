"""Phase 5, sign-off: the final verification table, accepted risks, blockers, the verdict and its
rationale, a readiness statement that claims only what was checked, remediation notes, and the
sign-off block (who, when, which toolkit, which compose files and images).

The verdict is made here, once, by :func:`decide` (:func:`runbook_lib.results.verdict.judge` over every record
of the run, this phase's own included) and written as ``verdict.json``; every table of this phase and of
the report, summary.json, summary.md, junit.xml and the exit code read that file.
"""
from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from runbook_lib import __version__
from runbook_lib.results import verdict as verdicts
from runbook_lib.results.records import plural
from runbook_lib.results.display import Html, badge, esc, simple_table, verdict_banner
from runbook_lib.errors import RunbookError
from runbook_lib.run.phase import PhaseSession
from runbook_lib.results.policy import WaiverOutcome, evaluate, ref
from runbook_lib.results.records import Check, CheckRecord, read_records
from runbook_lib.results.registry import check

PHASE = "05_signoff"


@dataclass
class RunView:
    """The run being signed off: its directory and the records of every earlier phase."""

    run_dir: Path | None
    records: list[CheckRecord]
    on: date
    waivers: WaiverOutcome  # what each waiver covers, as of ``on`` (records are not changed)


def latest_run_dir(project: str, outputs: Path) -> Path | None:
    runs = sorted(p for p in outputs.glob(f"*-{project}*") if (p / "results").is_dir())
    return runs[-1] if runs else None


def load(phase: PhaseSession, outputs: Path | None = None) -> RunView:
    """The records of every earlier phase of this run, and what the waivers cover (records untouched).
    Interactively (no run directory), the latest run of the project under ``outputs/`` of the parameters
    file's project (:func:`~runbook_lib.params.core.default_outputs`) is reviewed, read-only."""
    from runbook_lib.params import default_outputs

    run_dir = phase.ctx.run_dir
    if run_dir is None:
        outputs = outputs or default_outputs(phase.params.source)
        run_dir = latest_run_dir(phase.params.project, outputs)
        if run_dir is None:
            phase.ctx.progress(f"no run of {phase.params.project} under {outputs} yet: nothing to sign off "
                               "(run `runbook run`, or give this notebook a run_dir)")
    records = [r for p in (verdicts.results_files(run_dir) if run_dir else []) if p.stem != PHASE for r in read_records(p)]
    on = date.fromisoformat(verdicts.run_started(run_dir)[:10]) if run_dir else datetime.now(timezone.utc).date()
    return RunView(run_dir, records, on, evaluate(records, phase.params.policy, on).waivers)


def decide(phase: PhaseSession, run: RunView) -> dict:
    """Apply the policy to the whole run, once, and write verdict.json (headless). Everything this
    notebook shows after this comes from that document, as do the report's banner, summary.json,
    summary.md, junit.xml and the exit code. Interactively, the reviewed run's own verdict file is
    shown when it still matches its records; nothing is written."""
    if phase.ctx.run_dir is not None:
        phase.save()
        v = verdicts.judge(phase.ctx.run_dir, phase.params)
        verdicts.write(phase.ctx.run_dir, v)
        return v
    if run.run_dir is None:
        return {"verdict": "NO-GO", "project": phase.params.project, "rationale": "no run to sign off", "records": 0,
                "counts": {}, "blockers": [], "waived": [], "waivers": [], "not_verified": [], "categories": [],
                "phases": {}, "started": "", "decided_at": "", "judged_on": ""}
    return verdicts.current(run.run_dir) or verdicts.judge(run.run_dir, phase.params)


def verification_table(v: dict) -> Html:
    """One row per category: its status (the worst of its judged records; a waived FAIL counts as
    WAIVED), the counts, and the checks it holds. INFO records are facts, counted apart."""
    rows, text = [], []
    for cat in v["categories"]:
        status = cat["status"]
        tally = " · ".join(f"{s} {n}" for s, n in cat["counts"].items()) or "no judged record"
        if cat["info"]:
            tally += f" · {cat['info']} INFO"
        checks = ", ".join(f"<a href='#check-{esc(c)}'>{esc(c)}</a>" for c in cat["checks"])
        rows.append([esc(cat["name"]), badge("SKIP") + " <small>not verified</small>" if status == "NOT VERIFIED"
                     else badge(status), esc(tally), checks or "<small>no check of this run</small>"])
        text.append(f"{cat['name']:32} {status:12} {tally}")
    return Html(simple_table(["Category", "Status", "Records", "Checks"], rows, raw_columns=(0, 1, 2, 3)),
                "\n".join(text))


def accepted_risks(v: dict) -> Html:
    """The waivers: what each covers, who owns and approved it, until when; expired and stale ones too."""
    if not v["waivers"]:
        return Html("<p>No waiver: no risk was accepted.</p>", "no waivers")
    rows = [[w["id"], w["state"], f"{w['check']}@{w['target'] or '*'}", ", ".join(w["refs"]) or "-",
             w["justification"], w["owner"], w["approver"], w["expires"]] for w in v["waivers"]]
    return Html(simple_table(["Waiver", "State", "Covers", "Records", "Justification", "Owner", "Approver", "Expires"], rows),
                "\n".join(" ".join(r[:4]) for r in rows))


@check("signoff.waiver", "Waiver", phase=PHASE, severity="low", category="Sign-off",
       remediation="Renew the waiver with a new justification and expiry, fix the check, or remove the waiver.")
def waiver_records(run: RunView) -> list[CheckRecord]:
    """One record per waiver, as facts of the sign-off: applied (INFO, with what it covers), expired
    (WARN: not applied) or stale (WARN: matches nothing)."""
    c = Check("signoff.waiver")
    out = []
    for wid, w, refs in run.waivers.applied:
        out.append(c.record(wid, "INFO", expected="valid on the run's date",
                            actual=f"{w.check}@{w.target or '*'}: covers {', '.join(refs)} until {w.expires}",
                            evidence={**w.model_dump(mode="json"), "covers": refs, "judged_on": run.on.isoformat()}))
    for wid, w, refs in run.waivers.expired:
        out.append(c.record(wid, "WARN", expected="valid on the run's date",
                            actual=f"{w.check}@{w.target or '*'} expired on {w.expires}: not applied to {', '.join(refs)}",
                            evidence={**w.model_dump(mode="json"), "would_cover": refs, "judged_on": run.on.isoformat()},
                            severity="medium"))
    for wid, w in run.waivers.stale:
        out.append(c.record(wid, "WARN", expected="matches a FAIL or WARN of this run",
                            actual=f"{w.check}@{w.target or '*'} is stale: it matches no problem in this run; remove it",
                            evidence={**w.model_dump(mode="json"), "judged_on": run.on.isoformat()}))
    return out


def blockers_table(v: dict) -> Html:
    if not v["blockers"]:
        return Html("<p>None.</p>", "no blockers")
    rows = [[f"<a href='#{esc(b['id'])}--{esc(b['target'])}'><code>{esc(b['id'])}</code></a>", esc(b["target"]),
             badge(b["status"]) + f" <small>{esc(b['severity'])}</small>", esc(b["actual"])] for b in v["blockers"]]
    return Html(simple_table(["Check", "Target", "Status", "Actual"], rows, raw_columns=(0, 1, 2, 3)),
                "\n".join(f"{b['status']} {b['ref']}: {b['actual']}" for b in v["blockers"]))


def verdict(v: dict) -> Html:
    return Html(verdict_banner(v["verdict"], v["project"], v["counts"], [b["ref"] for b in v["blockers"]],
                               v["started"], v["decided_at"], extra=f"<p>{esc(v['rationale'])}</p>"),
                f"{v['verdict']}: {v['rationale']}")


def readiness(v: dict) -> Html:
    """What this run shows, and only that: categories verified, with problems, not verified; every
    record that could not look (SKIP, ERROR) is listed by name; accepted risks are named."""
    cats = v["categories"]
    verified = [c["name"] for c in cats if c["status"] in ("PASS", "WAIVED")]
    partial = [c["name"] for c in cats if c["status"] in ("FAIL", "WARN", "ERROR", "SKIP")]
    missing = [c["name"] for c in cats if c["status"] == "NOT VERIFIED"]
    project = v["project"]
    lead = (f"<b>{esc(project)} is ready for release as far as this run can show.</b>" if v["verdict"] == "GO"
            else f"<b>{esc(project)} is not ready for release:</b> {len(v['blockers'])} blocker(s), listed above.")
    judged = v["records"] - v["counts"].get("INFO", 0)
    nv = v["not_verified"]
    parts = [f"<p>{lead} {plural(judged, 'check')} judged on their evidence; {plural(v['counts'].get('INFO', 0), 'fact')} recorded.</p>",
             "<ul>",
             f"<li>Verified (every judged record PASS or accepted): {esc(', '.join(verified) or 'none')}.</li>",
             f"<li>With problems or gaps (a FAIL, WARN, ERROR or SKIP among their records): {esc(', '.join(partial) or 'none')}.</li>",
             f"<li><b>Not verified by this run</b> (no claim is made about them): {esc(', '.join(missing) or 'no category')}"
             + (f"; and {len(nv)} record(s) that could not look: " + ", ".join(
                 f"<code>{esc(n['ref'])}</code> ({esc(n['status'])}: {esc(n['actual'][:120])})" for n in nv) if nv else "")
             + ".</li>"]
    if v["waived"]:
        parts.append("<li>Accepted risks: " + ", ".join(f"{esc(w['ref'])} ({esc(w['status'])} — {esc(w['note'])})"
                                                       for w in v["waived"]) + ".</li>")
    parts.append("</ul>")
    text = (f"{v['verdict']}; verified: {', '.join(verified)}; not verified: {', '.join(missing) or 'no category'}"
            + (f"; could not look: {', '.join(n['ref'] for n in nv)}" if nv else ""))
    return Html("".join(parts), text)


def remediation(v: dict, run: RunView) -> Html:
    waived = {w["ref"]: w["note"] for w in v["waived"]}
    rows = [[ref(r), r.status + (f" — {waived[ref(r)]}" if ref(r) in waived else ""), r.remediation or "(no remediation given)"]
            for r in run.records if r.status in ("FAIL", "ERROR", "WARN")]
    if not rows:
        return Html("<p>Nothing to remediate.</p>", "nothing to remediate")
    return Html(simple_table(["Record", "Status", "Remediation"], rows), "\n".join(" ".join(r) for r in rows))


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc}"


@check("signoff.block", "Sign-off", phase=PHASE, severity="high", category="Sign-off",
       remediation="Make the engine answer so the running images can be recorded, then sign off again.")
def signoff_records(phase: PhaseSession, run: RunView) -> list[CheckRecord]:
    """The sign-off block as a record: operator, approver, time, toolkit version, compose-file hashes
    and the image digests running now. A fact (INFO), stored with the run so the signature covers it;
    ERROR when the running images could not be recorded (what was signed off would be unknown)."""
    p = phase.params
    c = Check("signoff.block")
    operator = p.operator or os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()
    images: dict[str, dict] = {}
    error = ""
    deployment = phase.ctx.deployment
    try:
        images = running_images(phase.ctx)
    except RunbookError as exc:
        error = str(exc)
    ev = {
        "operator": operator, "approver": p.signoff.approver or "(not named)",
        "signed_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "toolkit_version": __version__, "run_dir": str(run.run_dir),
        "compose_files": {str(f): _sha256(f) for f in p.compose_files},
        "env_files": {str(f): _sha256(f) for f in p.env_files},
        "images": images,
        "waivers_file": {str(p.policy.waivers_file): _sha256(p.policy.waivers_file)} if p.policy.waivers_file else None,
    }
    if error or not images:
        ev["images_error"] = error or deployment.nothing_deployed
        return [c.record(p.project, "ERROR", expected="who signed, when, and the images that were verified",
                         actual=f"signed by {operator}, but the running images could not be recorded: {ev['images_error']}",
                         evidence=ev)]
    return [c.record(p.project, "INFO", expected="who signed, when, and what was verified",
                     actual=f"signed by {operator}; {len(images)} services' images recorded", evidence=ev)]


def running_images(ctx) -> dict[str, dict]:
    """The image each service runs (:meth:`Deployment.running_images`): in compose mode each container's image
    id and digests; in swarm mode each service spec's reference and what the running task containers this
    engine holds run. Raises RunbookError when the engine cannot be read."""
    return ctx.deployment.running_images(ctx.current_containers())


def signoff_html(record: CheckRecord) -> Html:
    ev = record.evidence
    rows = [["Operator", ev["operator"]], ["Approver", ev["approver"]], ["Signed at (UTC)", ev["signed_at"]],
            ["Toolkit version", ev["toolkit_version"]]]
    rows += [[f"Compose file {Path(f).name}", f"sha256:{h}"] for f, h in ev["compose_files"].items()]
    rows += [[f"Image of {svc}", f"{i.get('image')} {i.get('id')} {' '.join(i.get('digests') or [])}"]
             for svc, i in ev["images"].items() if isinstance(i, dict)]
    if ev.get("images_error"):
        rows.append(["Images", f"not recorded: {ev['images_error']}"])
    return Html(simple_table(["Signed", "Value"], rows), "\n".join(f"{a}: {b}" for a, b in rows))


from runbook_lib.run.manifest import Manifest, records  # noqa: E402

# The sign-off judges a whole run: its records are made from the run's own (the notebook adds them), not
# by checks run against the deployment.
MANIFEST = Manifest(PHASE, {
    "sign-off": [records(waiver_records), records(signoff_records)],
})
