"""A fleet's verdict (``targets:`` in the parameters; the fleet run itself lives in run/fleet.py).

A fleet's directory holds each target's ordinary run under ``targets/NAME/`` and the fleet's own records
(results/fleet.json: each target's reachability and verdict). Its verdict.json is the policy over those records
(NO-GO when any target is NO-GO or could not run) plus what :func:`fleet_view` derives from the targets' own
verdict files: each target's verdict, and every target's blockers with the target qualified
(``staging/auth-service``). summary.md shows the verification table with a column per target; report.html is
:mod:`runbook_lib.results.fleet_report`'s.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook_lib.results import verdict as verdicts
from runbook_lib.results.display import md
from runbook_lib.results.records import read_records
from runbook_lib.results.verdict import describe_group

TARGETS_DIR = "targets"
FLEET_RESULTS = "fleet"  # results/fleet.json: the fleet runner's own records (phase "runner")


def is_fleet(run_dir: Path) -> bool:
    """Whether a run directory is a fleet's (run.json says so)."""
    try:
        return bool(json.loads((run_dir / verdicts.RUN_FILE).read_text(encoding="utf-8")).get("fleet"))
    except (OSError, ValueError):
        return False



def fleet_view(run_dir: Path) -> dict[str, Any]:
    """What the fleet's verdict adds to an ordinary one, derived from the targets' verdict files: per target
    (verdict, counts, endpoint), the targets that are NO-GO or could not run, and every target's blockers
    with the target qualified (``staging/auth-service``) and the engine named."""
    own = read_records(run_dir / "results" / f"{FLEET_RESULTS}.json")
    recs = {r.target: r for r in own if r.id == "fleet.target_verdict"}
    hosts = {r.target: r.evidence.get("docker_host", "") for r in own if r.id == "fleet.target_reachable"}
    targets, blockers, no_go = [], [], []
    for name, r in recs.items():
        sub = run_dir / TARGETS_DIR / name
        try:
            v = verdicts.read(sub)
        except (OSError, ValueError):
            v = None
        info = json.loads((sub / verdicts.RUN_FILE).read_text()) if (sub / verdicts.RUN_FILE).exists() else {}
        targets.append({"name": name, "docker_host": hosts.get(name, ""),
                        "verdict": v["verdict"] if v else "NOT RUN", "status": r.status,
                        "counts": v["counts"] if v else {}, "run_dir": f"{TARGETS_DIR}/{name}" if v else "",
                        "engine_docker_host": info.get("docker_host", "")})
        if r.status != "PASS":
            no_go.append(name)
        for b in (v or {}).get("blockers", []):
            blockers.append({**b, "target": f"{name}/{b['target']}", "engine": name,
                             "ref": f"{b['id']}@{name}/{b['target']}"})
    return {"targets": targets, "no_go": no_go, "target_blockers": blockers}


def _categories(run_dir: Path, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verification table of the fleet: each category of the targets' verdicts, its status the worst over
    the targets (a target that did not run: NOT VERIFIED), with each target's status."""
    order = (*verdicts.WORST_FIRST, "NOT VERIFIED")
    rows: dict[str, dict[str, Any]] = {}
    for t in targets:
        try:
            tv = verdicts.read(run_dir / TARGETS_DIR / t["name"])
        except (OSError, ValueError):
            continue
        for c in tv.get("categories", []):
            row = rows.setdefault(c["name"], {"name": c["name"], "status": "PASS", "counts": {}, "checks": [],
                                              "info": 0, "targets": {}})
            row["targets"][t["name"]] = c["status"]
            for k, n in c["counts"].items():
                row["counts"][k] = row["counts"].get(k, 0) + n
            row["checks"] = sorted(set(row["checks"]) | set(c["checks"]))
            row["info"] += c.get("info", 0)
    for row in rows.values():
        statuses = [row["targets"].get(t["name"], "NOT VERIFIED") for t in targets]
        row["targets"] = {t["name"]: st for t, st in zip(targets, statuses)}
        row["status"] = min(statuses, key=lambda st: order.index(st) if st in order else 0)
    return list(rows.values())


def write_summary_md(run_dir: Path, v: dict[str, Any]) -> None:
    """summary.md of a fleet (CI job summary): the verdict, the targets, the verification table with a column
    per target, and every target's blockers with the target qualified."""
    names = [t["name"] for t in v["fleet"]["targets"]]
    lines = [f"## {v['verdict']}: {v['project']} (fleet of {len(names)})", "", v["rationale"], "",
             "| target | engine | verdict |", "|---|---|---|"]
    lines += [f"| {t['name']} | `{t['docker_host']}` | {t['verdict']} |" for t in v["fleet"]["targets"]]
    lines += ["", "### Verification", "", "| category | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {c['name']} | " + " | ".join(c.get("targets", {}).get(n, "—") for n in names) + " |"
              for c in v["categories"] if "targets" in c]
    lines += ["", "### Blockers", ""]
    lines += [f"- {md(describe_group(cid, rs, len(rs)), 400)}" for cid, rs, _ in verdicts.grouped(v["target_blockers"], {})]
    lines += [f"- {md(describe_group(cid, rs, n), 400)}" for cid, rs, n in verdicts.grouped(v["blockers"], v)
              if cid != "fleet.target_verdict"] or []
    if not v["blockers"]:
        lines.append("None.")
    lines += ["", f"Report: `{run_dir / 'report.html'}` · each target's own: `{run_dir / TARGETS_DIR}/NAME/report.html`"]
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def judge(run_dir: Path, judging: verdicts.Judging) -> dict[str, Any]:
    """The fleet's verdict document: the policy over the fleet's own records (one GO/NO-GO record per
    target: any target NO-GO or not run is a blocker), plus :func:`fleet_view`."""
    v = verdicts.judge(run_dir, judging)
    view = fleet_view(run_dir)
    v["fleet"] = {"targets": view["targets"], "no_go": view["no_go"]}
    v["categories"] = _categories(run_dir, view["targets"]) + [c for c in v["categories"] if c["counts"]]
    v["target_blockers"] = view["target_blockers"]
    if view["no_go"]:
        v["rationale"] = (f"NO-GO: target{'s' if len(view['no_go']) > 1 else ''} {', '.join(view['no_go'])} "
                          f"{'are' if len(view['no_go']) > 1 else 'is'} NO-GO or could not be verified. " + v["rationale"])
    return v
