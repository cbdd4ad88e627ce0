"""The run directory's outputs: summary.json, summary.md, junit.xml and report.html (manifest.json:
:mod:`runbook_lib.results.manifest`).

report.html is one self-contained HTML file made by nbconvert from the executed phase notebooks, with
a verdict banner and a table of contents on top. Code is hidden unless asked for; the template
(templates/runbook) removes every CDN script so the report opens with no network.
"""
from __future__ import annotations

import functools
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


from runbook_lib.results.records import plural
from runbook_lib.results.display import CSS, badge, esc, md, simple_table, verdict_banner, worst
from runbook_lib.results.policy import ref
from runbook_lib.results.verdict import describe_group, grouped
from runbook_lib.results.records import SCHEMA, CheckRecord, headline, read_records
from runbook_lib.package_data import TEMPLATES  # re-exported: report.TEMPLATES
from runbook_lib.results.manifest import MANIFEST, verify_manifest, verify_run, write_manifest  # noqa: F401  (re-exported)

_STYLE_RE = re.compile(r'<style class="rb-css">.*?</style>', re.S)
_IMG_NO_ALT = re.compile(r"<img (?![^>]*\balt=)")


def _html_cell(markup: str, tags: list[str] | None = None) -> "nbformat.NotebookNode":
    import nbformat

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
    Every number here is the verdict file's (contract: docs/design.md, "the verdict file")."""
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
        "waivers": v["waivers"], "categories": v["categories"], "verdict_file": "verdict.json", "report": "report.html",
    }


def write_summary_md(run_dir: Path, summary: dict[str, Any], v: dict[str, Any]) -> None:
    """summary.md, ready for a CI job summary or a pull-request comment: the verdict, the final
    verification table, the blockers (grouped by check), the accepted risks, what was not verified, the
    phases and the path of the report."""
    c = v["counts"]
    lines = [f"## {v['verdict']}: {v['project']}", "",
             f"{v['started']} → {v['decided_at']} · " + " · ".join(f"{s} {n}" for s, n in c.items() if n), "",
             *[f"**{md(d['line'], 300)}**" for d in v.get("degraded") or []],
             v["rationale"], "", "### Verification", "", "| category | status | records |", "|---|---|---|"]
    lines += [f"| {cat['name']} | {cat['status']} | " + (" · ".join(f"{s} {n}" for s, n in cat["counts"].items())
                                                       or "no judged record") + " |" for cat in v["categories"]]
    lines += ["", "### Blockers", ""]
    lines += [f"- {md(describe_group(cid, rs, n), 400)}" for cid, rs, n in grouped(v["blockers"], v)] or ["None."]
    lines += ["", "### Accepted risks", ""]
    if v["waivers"]:
        lines += ["| waiver | state | covers | owner | approver | expires |", "|---|---|---|---|---|---|"]
        lines += [f"| {w['id']} | {w['state']} | {md(', '.join(w['refs']) or w['check'])} | {md(w['owner'])} | "
                  f"{md(w['approver'])} | {w['expires']} |" for w in v["waivers"]]
    else:
        lines.append("None.")
    nv = grouped(v["not_verified"], v)
    lines += ["", "### Not verified", ""] + ([f"- {md(describe_group(cid, rs, n), 400)}" for cid, rs, n in nv] or ["None."])
    lines += ["", "| phase | status | records | blockers | wall time |", "|---|---|---|---|---|"]
    lines += [f"| {ph['phase']} | {ph['status']} | {ph['records']} | {ph['blockers']} | {ph.get('duration_s', 0)} s |"
              for ph in summary["phases"]]
    lines += ["", f"Report: `{run_dir / 'report.html'}` · verdict file: `{run_dir / 'verdict.json'}`"]
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
               unverified: str = "", signer: str = "") -> Path:
    """report.html: first the cover, from the verdict file (verdict, the final verification table, the
    blockers, the accepted risks, what was not verified, who signed); then each phase's executed
    notebook (its records grouped by check, evidence folded); the sign-off section last. ``signer``: the
    signing key's fingerprint ("" unsigned). ``unverified``: why the run did not verify; the page then
    says so on top and goes to ``out``, never into the run directory."""
    import nbformat  # here, not at the top: `runbook verify` and the sign-off notebook never render

    records = phase_records(run_dir)
    combined = nbformat.v4.new_notebook()
    combined.metadata["title"] = f"{v['verdict']} · {v['project']} · runbook report"
    warn = (f"<div class='rb-unverified' style='border:3px solid #8250df;padding:8px 12px;margin:8px 0'>"
            f"<b>UNVERIFIED</b>: this run directory does not match its manifest ({esc(unverified)}). "
            "Nothing below can be trusted as the archived evidence.</div>") if unverified else ""
    combined.cells.append(_html_cell(warn + cover(v, records, signer=signer, since=_since_baseline(run_dir))))
    for ph in sorted(v["phases"]):
        vp = v["phases"][ph]
        combined.cells.append(_html_cell(
            f"<div id='phase-{esc(ph)}' class='rb-phase'>{badge(_phase_badge(vp))} <b>{esc(ph)}</b> · "
            f"{plural(vp['records'], 'record')}, {plural(vp['blockers'], 'blocker')}</div>"))
        nb_path = run_dir / "notebooks" / f"{ph}.ipynb"
        if nb_path.exists():
            combined.cells.extend(_report_cells(nbformat.read(nb_path, as_version=4), show_code))
    exporter = _exporter_class()(template_name="runbook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    resources = {"rb_css": CSS, "rb_code_css": _code_css() if show_code else ""}
    body, _ = exporter.from_notebook_node(combined, resources=resources)
    target = out or (run_dir / "report.html")
    target.write_text(body, encoding="utf-8")
    return target


@functools.lru_cache(maxsize=1)
def _exporter_class() -> type:
    """The report's HTML exporter class (nbconvert loads only when a report is rendered)."""
    from nbconvert import HTMLExporter

    class _Exporter(HTMLExporter):
        """nbconvert's HTML exporter without its last pass: HTMLExporter.from_notebook_node re-parses the whole
        page with BeautifulSoup to add image alt text and tabindex attributes, the slowest step of rendering a
        large run's report. The template is rendered exactly as nbconvert does;
        images get their alt text from the template filter below instead."""

        def from_notebook_node(self, nb, resources=None, **kw):  # noqa: ANN001 - nbconvert's signature
            from nbconvert.exporters.templateexporter import TemplateExporter
            from nbconvert.filters.highlight import Highlight2HTML
            from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

            lang = nb.metadata.get("language_info", {})
            lexer = lang.get("pygments_lexer", lang.get("name", None))
            self.register_filter("highlight_code", self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                                                           resources=resources))
            html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            return _IMG_NO_ALT.sub(r'<img alt="chart" ', html), resources

    return _Exporter


def _report_cells(nb: "nbformat.NotebookNode", show_code: bool) -> list["nbformat.NotebookNode"]:
    """A phase notebook's cells as the report shows them: no parameters cell (unless code is shown), no
    cell tagged ``report-skip`` (the phase summaries, which repeat the records), and no per-output style
    blocks (the report's template carries the style sheet once)."""
    out = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "report-skip" in tags or ("injected-parameters" in tags and not show_code):
            continue
        if cell.cell_type == "code":  # progress lines on stderr are for the person running it, not the archive
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        for o in cell.get("outputs", []):
            html = o.get("data", {}).get("text/html")
            if html:
                o["data"]["text/html"] = _STYLE_RE.sub("", html if isinstance(html, str) else "".join(html))
        out.append(cell)
    return out


def _code_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


def cover(v: dict[str, Any], records: dict[str, list[CheckRecord]], *, signer: str = "", since: str = "") -> str:
    """The report's first screen, from the verdict file: the verdict; the final verification table
    (each row linking to its checks); the blockers, grouped by check; the accepted risks; what was not
    verified; who signed, and what."""
    all_recs = [r for recs in records.values() for r in recs]
    degraded = "".join(f"<div class='rb-degraded' style='font-weight:700;color:#cf222e'>{esc(d['line'])}</div>"
                       for d in v.get("degraded") or [])
    banner = verdict_banner(v["verdict"], v["project"], v["counts"], [b["ref"] for b in v["blockers"]],
                            v["started"], v["decided_at"],
                            extra=degraded + f"<div style='margin-top:4px'>{esc(v['rationale'])}</div>")
    nav = " · ".join(f"<a href='#phase-{esc(ph)}'>{esc(ph)}</a> {badge(_phase_badge(vp))}" for ph, vp in sorted(v["phases"].items()))
    rows = []
    for cat in v["categories"]:
        status = "NOT VERIFIED" if cat["status"] == "NOT VERIFIED" else cat["status"]
        tally = " · ".join(f"{s} {n}" for s, n in cat["counts"].items()) or "no judged record"
        link = f"<a href='#check-{esc(cat['checks'][0])}'>{esc(cat['name'])}</a>" if cat["checks"] else esc(cat["name"])
        rows.append([link, badge(status), esc(tally) + (f" · {cat['info']} INFO" if cat["info"] else "")])
    table = simple_table(["Category", "Status", "Records"], rows, raw_columns=(0, 1, 2))
    right = (_cover_blockers(v) + _cover_risks(v) + _cover_not_verified(v) + _cover_signed(all_recs, signer))
    return (f"<div class='rb-cover-top'>{banner}{since}<div class='rb-nav'>{nav}</div><div class='rb-cover'>"
            f"<div><h2 id='verification-table'>Final verification table</h2>{table}</div><div>{right}</div></div></div>")


def _targets(rs: list[dict[str, Any]], limit: int = 6) -> str:
    names = ", ".join(esc(r["target"]) for r in rs[:limit])
    return names + (f" and {len(rs) - limit} more" if len(rs) > limit else "")


def _cover_blockers(v: dict[str, Any]) -> str:
    if not v["blockers"]:
        return "<h2 id='blockers'>Blockers</h2><p>None.</p>"
    items = "".join(
        f"<li><a href='#check-{esc(cid)}'><code>{esc(cid)}</code></a>: {esc(worst(r['status'] for r in rs))} on "
        f"{len(rs)} of {plural(n, 'target')} ({esc(rs[0]['severity'])}): {_targets(rs)}"
        + (f" — {esc(rs[0]['actual'][:140])}" if len(rs) == 1 else "") + "</li>"
        for cid, rs, n in grouped(v["blockers"], v))
    return f"<h2 id='blockers'>Blockers</h2><ul>{items}</ul>"


def _cover_risks(v: dict[str, Any]) -> str:
    if not v["waivers"]:
        return "<h2 id='accepted-risks'>Accepted risks</h2><p>None: no waiver.</p>"
    rows = [[w["id"] + ("" if w["state"] == "applied" else f" ({w['state']})"),
             f"{w['check']}@{w['target'] or '*'}" + (f" ({plural(len(w['refs']), 'record')})" if w["refs"] else ""),
             w["owner"], w["approver"], w["expires"]] for w in v["waivers"]]
    return ("<h2 id='accepted-risks'>Accepted risks</h2>"
            + simple_table(["Waiver", "Covers", "Owner", "Approver", "Expires"], rows))


def _cover_not_verified(v: dict[str, Any]) -> str:
    cats = [c["name"] for c in v["categories"] if c["status"] == "NOT VERIFIED"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for n in v["not_verified"]:
        groups.setdefault(n["id"], []).append(n)
    items = "".join(f"<li><code>{esc(cid)}</code> {esc(worst(r['status'] for r in rs))}: {_targets(rs)}</li>"
                    for cid, rs in groups.items())
    body = (f"<p>Categories with no judged record: {esc(', '.join(cats) or 'none')}.</p>"
            + (f"<ul>{items}</ul>" if items else "<p>Every check looked.</p>"))
    return f"<h2 id='not-verified'>Not verified</h2>{body}"


def _cover_signed(all_recs: list[CheckRecord], signer: str) -> str:
    block = next((r for r in all_recs if r.id == "signoff.block"), None)
    sig = f"manifest signed, key <code>{esc(signer)}</code>" if signer else "manifest <b>not signed</b>"
    if block is None:
        return f"<h2 id='signed'>Signed</h2><p>No sign-off phase in this run; {sig}.</p>"
    ev = block.evidence
    images = len(ev.get("images") or {})
    approver = ev.get("approver") or ""
    approver = "no approver named" if approver in ("", "(not named)") else f"approved by {approver}"
    return (f"<h2 id='signed'>Signed</h2><p>{esc(ev.get('operator'))} ({esc(approver)}), "
            f"{esc(ev.get('signed_at'))}, runbook {esc(ev.get('toolkit_version'))}: "
            f"{plural(len(ev.get('compose_files') or {}), 'compose file')} and {plural(images, 'image')} recorded by "
            f"hash; {sig}." + (f" <b>{esc(block.status)}</b>: {esc(block.actual)}" if block.status != "INFO" else "")
            + "</p>")

def _since_baseline(run_dir: Path) -> str:
    """The "since the last GO" line of a run made with ``--baseline`` (its baseline.json), else ""."""
    from runbook_lib.results.compare import read_baseline

    b = read_baseline(run_dir)
    if not b or not isinstance(b.get("baseline"), dict):
        return ""
    colour = "#cf222e" if b.get("new_blockers") else "#1a7f37"
    return (f"<div class='rb-since' style='border-left:4px solid {colour};padding:4px 10px;margin:4px 0'>"
            f"<b>Since the {'last GO' if b['baseline'].get('verdict') == 'GO' else 'baseline run'}</b>: "
            f"{esc(b.get('line', ''))} <small>(details: <code>runbook diff</code> "
            f"{esc(b['baseline'].get('path', ''))} and this run)</small></div>")




def _phase_badge(vp: dict[str, Any]) -> str:
    """A phase's headline in the report: its records' (:func:`~runbook_lib.results.records.headline`), FAIL when
    it holds a blocker that is not already ERROR or FAIL (a blocking SKIP), a waived problem as PASS."""
    status = headline(s for s, n in vp["counts"].items() if n)
    if vp["blockers"] and status not in ("ERROR", "FAIL"):
        return "FAIL"
    return "PASS" if status == "WAIVED" else status


# -- manifest ----------------------------------------------------------------------------------------
