"""A fleet's report.html: the verdict and the targets that are NO-GO, the verification table (one row per
category, then per check id; one column per target), every target's blockers, and links to each target's own
report (``targets/NAME/report.html``, an ordinary run's). Derived only from files of the fleet's directory
(:mod:`runbook_lib.results.fleet_verdict`), so `runbook report` renders it again identically.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from runbook_lib.results import verdict as verdicts
from runbook_lib.results.fleet_verdict import FLEET_RESULTS, TARGETS_DIR
from runbook_lib.results.records import headline, read_records

_COLOURS = {"PASS": "#1a7f37", "GO": "#1a7f37", "FAIL": "#cf222e", "NO-GO": "#cf222e", "ERROR": "#8250df",
            "WARN": "#9a6700", "SKIP": "#57606a", "WAIVED": "#0969da", "NOT VERIFIED": "#57606a", "NOT RUN": "#8250df",
            "INFO": "#57606a"}


def _badge(status: str) -> str:
    return (f'<span class="b" style="background:{_COLOURS.get(status, "#57606a")}">{html.escape(status)}</span>')


def _target_statuses(sub: Path) -> dict[str, Any]:
    """One target's columns: its verdict (None: it did not run), the worst status of each check id over its
    records (a waived record: WAIVED; a blocker: the status that blocks), and each category's status."""
    tv = verdicts.read(sub) if (sub / verdicts.VERDICT_FILE).exists() else None
    checks: dict[str, str] = {}
    if tv is not None:
        bad = {b["ref"]: b["status"] for b in tv["blockers"]}
        for r in verdicts.load_records(sub):
            s = "WAIVED" if any(w["ref"] == f"{r.id}@{r.target}" for w in tv["waived"]) else r.status
            if f"{r.id}@{r.target}" in bad:
                s = bad[f"{r.id}@{r.target}"]
            checks[r.id] = headline([s, *([checks[r.id]] if r.id in checks else [])])
    return {"verdict": tv, "checks": checks, "cats": {c["name"]: c["status"] for c in (tv or {}).get("categories", [])}}


def render_html(run_dir: Path, v: dict[str, Any]) -> str:
    """The fleet's report: the verdict and the targets that are NO-GO, the verification table (one row per
    category, then per check id; one column per target), every target's blockers, links to each target's
    own report. Derived only from files of the run directory, so `runbook report` renders it again identically."""
    e = html.escape
    targets = v["fleet"]["targets"]
    per = {t["name"]: _target_statuses(run_dir / TARGETS_DIR / t["name"]) for t in targets}
    cats = []
    for t in targets:
        for c in (per[t["name"]]["verdict"] or {}).get("categories", []):
            if c["name"] not in cats:
                cats.append(c["name"])
    ids = sorted({cid for p in per.values() for cid in p["checks"]})
    head = "".join(f'<th><a href="{TARGETS_DIR}/{e(t["name"])}/report.html">{e(t["name"])}</a><br>'
                   f'<small>{e(t["docker_host"])}</small></th>' for t in targets)

    def row(label: str, cells: list[str], cls: str = "") -> str:
        return f'<tr class="{cls}"><td>{label}</td>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    def cells(cid: str) -> list[str]:
        return [per[t["name"]]["checks"].get(cid, "—") for t in targets]

    # check ids with anything but PASS/INFO on some target first; those fine everywhere they ran after them
    attention = [cid for cid in ids if any(c not in ("PASS", "INFO", "—") for c in cells(cid))]
    fine = [cid for cid in ids if cid not in attention]
    n = len(targets) + 1
    rows = [row("<b>verdict</b>", [_badge(t["verdict"]) for t in targets])]
    rows += [row(e(c), [_badge(per[t["name"]]["cats"].get(c, "NOT VERIFIED")) if per[t["name"]]["verdict"] else "—"
                        for t in targets]) for c in cats]
    for title, group in ((f"check ids not PASS on every target ({len(attention)})", attention),
                         (f"check ids PASS (or INFO) on every target that ran them ({len(fine)})", fine)):
        if group:
            rows.append(f'<tr><th colspan="{n}">{e(title)}</th></tr>')
            rows += [row(f"<code>{e(cid)}</code>", [c if c == "—" else _badge(c) for c in cells(cid)], "id")
                     for cid in group]
    fleet_rows = "".join(f"<li>{_badge(r.status)} <code>{e(r.id)}</code> <b>{e(r.target)}</b>: {e(r.actual)}</li>"
                         for r in read_records(run_dir / "results" / f"{FLEET_RESULTS}.json"))
    blockers = "".join(f"<li>{_badge(b['status'])} <code>{e(b['id'])}</code> on <b>{e(b['target'])}</b> "
                       f"({e(b['severity'])}): {e(b['actual'])}</li>" for b in v["target_blockers"]) or "<li>None.</li>"
    no_go = v["fleet"]["no_go"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(v['verdict'])}: {e(v['project'])} (fleet of {len(targets)})</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;vertical-align:top}}tr.id td{{font-size:.9em}}
.b{{color:#fff;border-radius:.3em;padding:0 .4em;font-size:.85em;font-weight:600}}h1 .b{{font-size:1em}}</style></head>
<body>
<h1>{_badge(v['verdict'])} {e(v['project'])}: fleet of {len(targets)} target{'s' if len(targets) != 1 else ''}</h1>
<p>{e(v['rationale'])}</p>
<p>Started {e(v['started'])}, decided {e(v['decided_at'])}. {'NO-GO targets: <b>' + e(', '.join(no_go)) + '</b>.' if no_go else 'Every target is GO.'}
Each target's own run, with its records, notebooks and report, is in <code>{TARGETS_DIR}/NAME/</code>; this directory's
<code>manifest.json</code> covers every file of every target.</p>
<h2>Targets</h2><ul>{fleet_rows}</ul>
<h2>Blockers, by target</h2><ul>{blockers}</ul>
<h2>Verification, per target</h2>
<table><tr><th>category / check</th>{head}</tr>
{''.join(rows)}
</table>
</body></html>
"""


def write_html(run_dir: Path, v: dict[str, Any], out: Path | None = None) -> Path:
    out = out or run_dir / "report.html"
    out.write_text(render_html(run_dir, v), encoding="utf-8")
    return out
