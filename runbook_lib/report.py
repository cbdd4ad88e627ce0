"""The run directory's outputs: summary.json, summary.md, junit.xml, report.html and manifest.json.

report.html is one self-contained HTML file made by nbconvert from the executed phase notebooks, with
a verdict banner and a table of contents on top. Code is hidden unless asked for; the template
(templates/runbook) removes every CDN script so the report opens with no network.
"""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from .display import badge, esc, records_table, verdict_banner
from .policy import Decision, ref
from .records import SCHEMA, CheckRecord, counts, read_records

TEMPLATES = Path(__file__).parent / "templates"
MANIFEST = "manifest.json"


def _html_cell(markup: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source="")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": markup})]
    cell.metadata["tags"] = tags or []
    return cell


def phase_records(run_dir: Path) -> dict[str, list[CheckRecord]]:
    out = {}
    for p in sorted((run_dir / "results").glob("*.json")):
        out[p.stem] = read_records(p)
    return out


def build_summary(project: str, started: str, finished: str, decision: Decision,
                  records: list[CheckRecord], phases: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json (contract: DESIGN.md)."""
    w = decision.waivers
    return {
        "schema": SCHEMA, "project": project, "verdict": decision.verdict, "started": started,
        "finished": finished, "counts": counts(records), "blockers": [ref(r) for r in decision.blockers],
        "waived": [ref(r) for r in decision.waived], "rationale": decision.rationale, "phases": phases,
        "waivers": {
            "applied": [{"check": x.check, "target": x.target, "expires": x.expires.isoformat(), "waived": refs} for x, refs in w.applied],
            "expired": [{"check": x.check, "target": x.target, "expires": x.expires.isoformat(), "would_waive": refs} for x, refs in w.expired],
            "stale": [{"check": x.check, "target": x.target, "expires": x.expires.isoformat()} for x in w.stale],
        },
    }


def write_summary_md(run_dir: Path, summary: dict[str, Any], records: list[CheckRecord]) -> None:
    c = summary["counts"]
    lines = [f"## {summary['verdict']}: {summary['project']}", "",
             f"{summary['started']} → {summary['finished']} · " + " · ".join(f"{s} {n}" for s, n in c.items() if n), "",
             summary["rationale"], "", "| phase | status | checks | problems |", "|---|---|---|---|"]
    for ph in summary["phases"]:
        lines.append(f"| {ph['phase']} | {ph['status']} | {ph['records']} | {ph['problems']} |")
    blockers = [r for r in records if ref(r) in set(summary["blockers"])]
    if blockers:
        lines += ["", "### Blockers", "", "| check | target | status | actual |", "|---|---|---|---|"]
        for r in blockers:
            actual = r.actual.replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| `{r.id}` | {r.target} | {r.status} | {actual} |")
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_junit(run_dir: Path, records_by_phase: dict[str, list[CheckRecord]]) -> None:
    """junit.xml: one testsuite per phase, one testcase per check record."""
    suites = ET.Element("testsuites", name="runbook")
    for phase, recs in records_by_phase.items():
        c = counts(recs)
        suite = ET.SubElement(suites, "testsuite", name=phase, tests=str(len(recs)), failures=str(c["FAIL"]),
                              errors=str(c["ERROR"]), skipped=str(c["SKIP"]),
                              time=f"{sum(r.duration_s for r in recs):.3f}")
        for r in recs:
            case = ET.SubElement(suite, "testcase", classname=f"{phase}.{r.id}", name=r.target, time=f"{r.duration_s:.3f}")
            text = f"expected: {r.expected}\nactual: {r.actual}\nseverity: {r.severity}"
            if r.status == "FAIL":
                ET.SubElement(case, "failure", message=r.actual[:500], type=r.severity).text = text
            elif r.status == "ERROR":
                ET.SubElement(case, "error", message=r.actual[:500], type=r.severity).text = text
            elif r.status == "SKIP":
                ET.SubElement(case, "skipped", message=r.actual[:500])
            else:
                ET.SubElement(case, "system-out").text = f"{r.status}: {r.actual}"
    ET.ElementTree(suites).write(run_dir / "junit.xml", encoding="utf-8", xml_declaration=True)


def render_html(run_dir: Path, summary: dict[str, Any], records: list[CheckRecord], *, show_code: bool = False) -> Path:
    """Combine the executed notebooks into report.html (banner, contents, each phase, blockers)."""
    blockers = set(summary["blockers"])
    combined = nbformat.v4.new_notebook()
    combined.metadata["title"] = f"{summary['verdict']} · {summary['project']} · runbook report"
    banner = verdict_banner(summary["verdict"], summary["project"], summary["counts"], summary["blockers"],
                            summary["started"], summary["finished"],
                            extra=f"<div style='margin-top:6px'>{esc(summary['rationale'])}</div>")
    combined.cells.append(_html_cell(banner))
    toc = "".join(
        f"<li><a href='#phase-{esc(ph['phase'])}'>{esc(ph['phase'])}</a> {badge(_phase_badge(ph))} "
        f"<small>{ph['records']} checks, {ph['problems']} problems</small></li>"
        for ph in summary["phases"]
    )
    combined.cells.append(_html_cell(f"<nav class='rb-toc'><h2>Contents</h2><ol>{toc}"
                                     "<li><a href='#blockers'>Blockers</a></li></ol></nav>"))
    for ph in summary["phases"]:
        anchor = (f"<hr><div id='phase-{esc(ph['phase'])}' class='rb-phase'>{badge(_phase_badge(ph))} "
                  f"<code>{esc(ph['phase'])}</code> · {esc(ph['status'])} · {ph['records']} checks, "
                  f"{ph['problems']} problems · {ph.get('duration_s', 0)} s</div>")
        note = f"<p><b>{esc(ph['status'])}</b>: {esc(ph.get('detail', ''))}</p>" if ph.get("detail") else ""
        combined.cells.append(_html_cell(anchor + note))
        nb_path = run_dir / "notebooks" / f"{ph['phase']}.ipynb"
        if nb_path.exists():
            nb = nbformat.read(nb_path, as_version=4)
            for cell in nb.cells:
                if "injected-parameters" in cell.metadata.get("tags", []) and not show_code:
                    continue
                combined.cells.append(cell)
    blocker_records = [r for r in records if ref(r) in blockers]
    combined.cells.append(_html_cell("<h1 id='blockers'>Blockers</h1>" + (
        records_table(blocker_records, "Release blockers") if blocker_records else "<p>None.</p>")))
    exporter = HTMLExporter(template_name="runbook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(combined)
    out = run_dir / "report.html"
    out.write_text(body, encoding="utf-8")
    return out


def _phase_badge(ph: dict[str, Any]) -> str:
    return {"completed": "PASS" if not ph["problems"] else "FAIL", "error": "ERROR", "skipped": "SKIP"}.get(ph["status"], "ERROR")


# -- manifest ----------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.endswith(".sig"))


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def write_manifest(run_dir: Path) -> Path:
    """manifest.json: the SHA-256 of every file in the run directory but itself and its signature.

    It also carries ``self_sha256``, the digest of its own file list, and is written in one canonical
    form, so that even unsigned, a change to any byte of the manifest itself is detected."""
    files = {str(p.relative_to(run_dir)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in _files(run_dir)}
    data = {"schema": SCHEMA, "algorithm": "sha256", "files": files,
            "self_sha256": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()}
    out = run_dir / MANIFEST
    out.write_text(_canonical(data), encoding="utf-8")
    return out


def verify_manifest(run_dir: Path) -> dict[str, list[str]]:
    """Compare the run directory with its manifest: files changed, added and removed (the manifest
    itself is "changed" when its bytes are not what write_manifest wrote)."""
    raw = (run_dir / MANIFEST).read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(raw)
        listed = data["files"]
        intact = (raw == _canonical(data) and
                  data.get("self_sha256") == hashlib.sha256(json.dumps(listed, sort_keys=True).encode()).hexdigest())
    except (ValueError, KeyError, TypeError):
        return {"changed": [MANIFEST], "added": [], "removed": []}
    present = {str(p.relative_to(run_dir)): p for p in _files(run_dir)}
    changed = sorted(n for n, p in present.items() if n in listed and _sha256(p) != listed[n].get("sha256"))
    return {
        "changed": ([] if intact else [MANIFEST]) + changed,
        "added": sorted(n for n in present if n not in listed),
        "removed": sorted(n for n in listed if n not in present),
    }
