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
from .policy import ref
from .records import SCHEMA, CheckRecord, read_records

TEMPLATES = Path(__file__).parent / "templates"
MANIFEST = "manifest.json"


def _html_cell(markup: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source="")
    cell.id = "rb-" + hashlib.sha256(markup.encode()).hexdigest()[:12]  # stable: a re-render is byte-identical
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": markup})]
    cell.metadata["tags"] = tags or []
    return cell


def phase_records(run_dir: Path) -> dict[str, list[CheckRecord]]:
    out = {}
    for p in sorted((run_dir / "results").glob("*.json")):
        out[p.stem] = read_records(p)
    return out


def build_summary(v: dict[str, Any], phases: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json: the verdict file's judgement, with the runner's per-phase facts (status, duration).
    Every number here is the verdict file's (contract: docs/design.md)."""
    entries = []
    for ph in phases:
        vp = v["phases"].get(ph["phase"], {"records": 0, "counts": {}, "blockers": 0})
        entries.append({**ph, "records": vp["records"], "counts": vp["counts"], "blockers": vp["blockers"],
                        "problems": vp["blockers"]})
    return {
        "schema": SCHEMA, "project": v["project"], "verdict": v["verdict"], "started": v["started"],
        "finished": v["decided_at"], "judged_on": v["judged_on"], "records": v["records"], "counts": v["counts"],
        "blockers": [b["ref"] for b in v["blockers"]], "waived": [w["ref"] for w in v["waived"]],
        "not_verified": [n["ref"] for n in v["not_verified"]], "rationale": v["rationale"], "phases": entries,
        "waivers": v["waivers"], "verdict_file": "verdict.json", "report": "report.html",
    }


def _md(text: Any, limit: int = 200) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:limit]


def write_summary_md(run_dir: Path, summary: dict[str, Any], v: dict[str, Any]) -> None:
    """summary.md, for a CI job summary or a pull-request comment: verdict, phases, blockers, waivers."""
    c = v["counts"]
    lines = [f"## {v['verdict']}: {v['project']}", "",
             f"{v['started']} → {v['decided_at']} · " + " · ".join(f"{s} {n}" for s, n in c.items() if n), "",
             v["rationale"], "", "| phase | status | records | blockers |", "|---|---|---|---|"]
    for ph in summary["phases"]:
        lines.append(f"| {ph['phase']} | {ph['status']} | {ph['records']} | {ph['blockers']} |")
    if v["blockers"]:
        lines += ["", "### Blockers", "", "| check | target | status | actual |", "|---|---|---|---|"]
        lines += [f"| `{b['id']}` | {_md(b['target'])} | {b['status']} | {_md(b['actual'])} |" for b in v["blockers"]]
    if v["waived"]:
        lines += ["", "### Accepted risks", "", "| check | target | status | waiver |", "|---|---|---|---|"]
        lines += [f"| `{w['id']}` | {_md(w['target'])} | {w['status']} | {w['note']} |" for w in v["waived"]]
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_junit(run_dir: Path, v: dict[str, Any], phases: list[dict[str, Any]]) -> None:
    """junit.xml: one testsuite per phase, one testcase per record. Failures and errors are exactly the
    verdict's blockers; a waived record is skipped with the waiver that covers it; a non-blocking FAIL or
    WARN passes with its status in a property and system-out."""
    blockers = {b["ref"] for b in v["blockers"]}
    waived = {w["ref"]: w["note"] for w in v["waived"]}
    wall = {ph["phase"]: ph.get("duration_s", 0.0) for ph in phases}
    suites = ET.Element("testsuites", name="runbook", tests=str(v["records"]))
    for phase, recs in phase_records(run_dir).items():
        refs = [ref(r) for r in recs]
        failing = [r for r in recs if ref(r) in blockers]
        suite = ET.SubElement(suites, "testsuite", name=phase, tests=str(len(recs)),
                              failures=str(sum(1 for r in failing if r.status != "ERROR")),
                              errors=str(sum(1 for r in failing if r.status == "ERROR")),
                              skipped=str(sum(1 for r in recs if (r.status in ("SKIP", "INFO") or ref(r) in waived)
                                              and ref(r) not in blockers)),
                              time=f"{wall.get(phase, 0.0):.3f}")
        for r, rf in zip(recs, refs):
            case = ET.SubElement(suite, "testcase", classname=f"{phase}.{r.id}", name=r.target, time=f"{r.duration_s:.3f}")
            props = ET.SubElement(case, "properties")
            for k, val in (("status", r.status), ("severity", r.severity)):
                ET.SubElement(props, "property", name=k, value=val)
            text = f"expected: {r.expected}\nactual: {r.actual}\nseverity: {r.severity}"
            if rf in blockers:
                tag = "error" if r.status == "ERROR" else "failure"
                ET.SubElement(case, tag, message=f"{r.status}: {r.actual[:500]}", type=r.severity).text = text
            elif rf in waived:
                ET.SubElement(props, "property", name="waiver", value=waived[rf])
                ET.SubElement(case, "skipped", message=f"{r.status} — {waived[rf]}: {r.actual[:400]}")
            elif r.status in ("SKIP", "INFO"):
                ET.SubElement(case, "skipped", message=f"{r.status}: {r.actual[:500]}")
            else:
                ET.SubElement(case, "system-out").text = f"{r.status}: {r.actual}"
    ET.ElementTree(suites).write(run_dir / "junit.xml", encoding="utf-8", xml_declaration=True)


def write_html(run_dir: Path, v: dict[str, Any], *, show_code: bool = False, out: Path | None = None,
               unverified: str = "") -> Path:
    """report.html from the verdict file (banner, contents, blockers) and the executed notebooks (each
    phase's evidence, the sign-off section). ``unverified``: why the run did not verify; the page then
    says so on top and goes to ``out``, never into the run directory."""
    combined = nbformat.v4.new_notebook()
    combined.metadata["title"] = f"{v['verdict']} · {v['project']} · runbook report"
    warn = (f"<div class='rb-unverified' style='border:3px solid #8250df;padding:8px 12px;margin:8px 0'>"
            f"<b>UNVERIFIED</b>: this run directory does not match its manifest ({esc(unverified)}). "
            "Nothing below can be trusted as the archived evidence.</div>") if unverified else ""
    banner = verdict_banner(v["verdict"], v["project"], v["counts"], [b["ref"] for b in v["blockers"]],
                            v["started"], v["decided_at"], extra=f"<div style='margin-top:6px'>{esc(v['rationale'])}</div>")
    combined.cells.append(_html_cell(warn + banner + _since_baseline(run_dir)))
    phases = sorted(v["phases"])
    toc = "".join(
        f"<li><a href='#phase-{esc(ph)}'>{esc(ph)}</a> {badge(_phase_badge(v['phases'][ph]))} "
        f"<small>{_n(v['phases'][ph]['records'], 'record')}, {_n(v['phases'][ph]['blockers'], 'blocker')}</small></li>"
        for ph in phases)
    combined.cells.append(_html_cell(f"<nav class='rb-toc'><h2>Contents</h2><ol>{toc}"
                                     "<li><a href='#blockers'>Blockers</a></li></ol></nav>"))
    for ph in phases:
        vp = v["phases"][ph]
        anchor = (f"<hr><div id='phase-{esc(ph)}' class='rb-phase'>{badge(_phase_badge(vp))} <code>{esc(ph)}</code> · "
                  f"{_n(vp['records'], 'record')}, {_n(vp['blockers'], 'blocker')}</div>")
        combined.cells.append(_html_cell(anchor))
        nb_path = run_dir / "notebooks" / f"{ph}.ipynb"
        if nb_path.exists():
            nb = nbformat.read(nb_path, as_version=4)
            combined.cells.extend(c for c in nb.cells
                                  if show_code or "injected-parameters" not in c.metadata.get("tags", []))
    blocker_refs = {b["ref"] for b in v["blockers"]}
    blocker_records = [r for recs in phase_records(run_dir).values() for r in recs if ref(r) in blocker_refs]
    combined.cells.append(_html_cell("<h1 id='blockers'>Blockers</h1>" + (
        records_table(blocker_records, "Release blockers") if blocker_records else "<p>None.</p>")))
    exporter = HTMLExporter(template_name="runbook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(combined)
    target = out or (run_dir / "report.html")
    target.write_text(body, encoding="utf-8")
    return target


def _since_baseline(run_dir: Path) -> str:
    """The "since the last GO" line of a run made with ``--baseline`` (its baseline.json), else ""."""
    from .compare import read_baseline

    b = read_baseline(run_dir)
    if not b or not isinstance(b.get("baseline"), dict):
        return ""
    colour = "#cf222e" if b.get("new_blockers") else "#1a7f37"
    return (f"<div class='rb-since' style='border-left:4px solid {colour};padding:4px 10px;margin:4px 0'>"
            f"<b>Since the {'last GO' if b['baseline'].get('verdict') == 'GO' else 'baseline run'}</b>: {esc(b.get('line', ''))} <small>(details: <code>runbook diff</code> "
            f"{esc(b['baseline'].get('path', ''))} and this run)</small></div>")


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _phase_badge(vp: dict[str, Any]) -> str:
    c = vp["counts"]
    if vp["blockers"] or c.get("ERROR") or c.get("FAIL"):
        return "ERROR" if c.get("ERROR") else "FAIL"
    if c.get("WARN"):
        return "WARN"
    if c.get("PASS") or c.get("WAIVED"):
        return "PASS"
    return "SKIP" if c.get("SKIP") else "INFO"


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


def verify_run(run_dir: Path, key: Path | None = None) -> list[str]:
    """Why a run directory cannot be trusted as archived: files changed, added or removed since the
    manifest, a bad signature (against ``key`` when given), or a verdict file that does not follow from
    the records. [] when it verifies. Raises InputError when ``run_dir`` is not a run directory. Every
    reader of a run (``runbook report``, ``runbook verify``, ``runbook diff``) calls this first."""
    from . import signing, verdict as verdicts
    from .errors import InputError
    from .params import load_params

    if not (run_dir / MANIFEST).is_file():
        raise InputError(f"{run_dir} has no {MANIFEST}; is it a run directory?")
    diff = verify_manifest(run_dir)
    problems = [f"{kind}: {name}" for kind in ("changed", "added", "removed") for name in diff[kind]]
    sig_ok, sig_words = signing.verify_file(run_dir / MANIFEST, key)
    if not sig_ok:
        problems.append(f"signature FAILED: {sig_words}")
    if not problems and (run_dir / verdicts.VERDICT_FILE).is_file():
        stored = verdicts.read(run_dir)
        again = verdicts.judge(run_dir, load_params(run_dir / "params.yaml"))
        differ = verdicts.same_judgement(stored, again)
        if differ:
            problems.append(f"changed: {verdicts.VERDICT_FILE} does not follow from the records "
                            f"(re-judged, these differ: {', '.join(differ)})")
    return problems
