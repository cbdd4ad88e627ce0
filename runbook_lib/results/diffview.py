"""A :class:`~runbook_lib.results.compare.RunDiff` as text (terminal), Markdown (a pull request or a CI job
summary), JSON, and the static HTML sections compare.ipynb (notebooks/) shows. One list of sections feeds
every form, so they cannot disagree."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_lib.results.compare import RunDiff
from runbook_lib.results.display import Html, badge, esc, simple_table


@dataclass
class Section:
    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


def _short(digest: str | None, n: int = 19) -> str:
    return (digest or "-")[:n]


def _image(name: str | None, id_: str | None, digests: list[str]) -> str:
    return f"{name or '-'} {_short(id_)}" + (f" ({', '.join(d.split('@')[-1][:19] for d in digests)})" if digests else "")


def sections(d: RunDiff) -> list[Section]:
    """Every part of the comparison, in the order it is shown; a section with no row says "none"."""
    verdicts = [[side, run["run_id"], run["verdict"], str(run["blockers"]), ", ".join(f"{k} {n}" for k, n in run["counts"].items())]
                for side, run in (("old", d.old), ("new", d.new))]
    waivers = [[kind, w["id"], f"{w['check']}@{w['target'] or '*'}", str(w["expires"]), w["state"]]
               for kind in ("new", "expired", "removed") for w in d.waivers.get(kind, [])]
    extra = []
    if d.only_new:
        extra.append(f"{len(d.only_new)} check@target only in the new run: " + ", ".join(d.only_new[:12])
                     + (" …" if len(d.only_new) > 12 else ""))
    if d.only_old:
        extra.append(f"{len(d.only_old)} only in the old run: " + ", ".join(d.only_old[:12]) + (" …" if len(d.only_old) > 12 else ""))
    return [
        Section("verdicts", "Verdicts", ["run", "id", "verdict", "blockers", "counts"], verdicts),
        Section("blockers", "New blockers", ["check@target", "status", "severity", "actual"],
                [[b["ref"], b["status"], b["severity"], b["actual"][:200]] for b in d.new_blockers]),
        Section("resolved", "Resolved blockers", ["check@target", "was", "now"],
                [[b["ref"], b["status"], b["now"]] for b in d.resolved_blockers]),
        Section("statuses", "Status changes", ["check@target", "old", "new", "severity", "actual (new)"],
                [[c["ref"], c["old"], c["new"], c["severity"], c["actual"][:160]] for c in d.status_changes],
                "; ".join(extra)),
        Section("images", "Changed images", ["service", "old", "new", "digest changed"],
                [[i["service"], _image(i["old_image"], i["old_id"], i["old_digests"]),
                  _image(i["new_image"], i["new_id"], i["new_digests"]), "yes" if i["digest_changed"] else "no (tag only)"]
                 for i in d.images]),
        Section("files", "Compose and env files (SHA-256)", ["file", "old", "new"],
                [[f["file"], _short(f["old"], 16) if f["old"] else "(not used)", _short(f["new"], 16) if f["new"] else "(not used)"]
                 for f in d.compose_files]),
        Section("config", "Config hashes per service", ["service", "old", "new"],
                [[c["service"], _short(c["old"], 16), _short(c["new"], 16)] for c in d.config_hashes]),
        Section("waivers", "New, expired and removed waivers", ["change", "waiver", "covers", "expires", "state"], waivers),
        Section("drills", "Drill recovery times", ["drill@target", "old (s)", "new (s)", "ratio"],
                [[r["ref"], f"{r['old_s']:g}", f"{r['new_s']:g}", f"×{r['ratio']:g}" if r["ratio"] is not None else "-"]
                 for r in d.drills]),
        Section("services", "Services", ["change", "services"],
                [[k, ", ".join(v)] for k, v in d.services.items() if v]),
    ]


def headline(d: RunDiff) -> str:
    n = len(d.new_blockers)
    return (f"{d.old['run_id']} ({d.old['verdict']}) → {d.new['run_id']} ({d.new['verdict']}): "
            f"{n} new blocker{'s' * (n != 1)}, {len(d.resolved_blockers)} resolved, "
            f"{len(d.status_changes)} status change{'s' * (len(d.status_changes) != 1)}, {len(d.images)} image(s) changed")


def to_text(d: RunDiff) -> str:
    lines = [headline(d)]
    for s in sections(d):
        lines += ["", f"{s.title} ({len(s.rows)})" if s.key != "verdicts" else s.title]
        widths = [max(len(r[i]) for r in s.rows) for i in range(len(s.headers))] if s.rows else []
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in s.rows] or ["  none"]
        if s.note:
            lines.append(f"  ({s.note})")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(d: RunDiff) -> str:
    """For a pull request or a CI job summary ($GITHUB_STEP_SUMMARY)."""
    lines = [f"## runbook diff: {d.old['verdict']} → {d.new['verdict']}", "", _md_cell(headline(d))]
    for s in sections(d):
        lines += ["", f"### {s.title}", ""]
        if not s.rows:
            lines.append("None.")
        else:
            lines += ["| " + " | ".join(s.headers) + " |", "|" + "---|" * len(s.headers)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in s.rows]
        if s.note:
            lines += ["", _md_cell(s.note)]
    return "\n".join(lines) + "\n"


def to_json(d: RunDiff) -> str:
    return json.dumps(d.to_dict(), indent=1, default=str)


FORMATTERS = {"text": to_text, "md": to_markdown, "json": to_json}


def section(d: RunDiff, key: str) -> Html:
    """One section as static HTML for the compare notebook (statuses as badges)."""
    s = next(x for x in sections(d) if x.key == key)
    if not s.rows:
        return Html(f"<p class='rb-empty'>None.</p>{_note(s)}", f"{s.title}: none")
    status_cols = {"verdicts": (2,), "blockers": (1,), "resolved": (1,), "statuses": (1, 2)}.get(key, ())
    rows = [[(badge(_AS_STATUS.get(c, c)).replace(f">{_AS_STATUS[c]}<", f">{c}<") if c in _AS_STATUS else badge(c))
             if i in status_cols and c in _BADGES else esc(c) for i, c in enumerate(row)] for row in s.rows]
    return Html(simple_table(s.headers, rows, raw_columns=tuple(range(len(s.headers)))) + _note(s),
                "\n".join("  ".join(r) for r in s.rows))


_BADGES = {"PASS", "FAIL", "WARN", "ERROR", "SKIP", "INFO", "WAIVED", "GO", "NO-GO"}
_AS_STATUS = {"GO": "PASS", "NO-GO": "FAIL"}  # a verdict badge in the colour of the status


def _note(s: Section) -> str:
    return f"<p><small>{esc(s.note)}</small></p>" if s.note else ""


def banner(d: RunDiff) -> Html:
    colour = "#cf222e" if d.new_blockers else "#1a7f37"
    return Html(f"<div class='rb-banner' style='border:3px solid {colour};padding:12px 16px;margin:8px 0'>"
                f"<div style='font-size:160%;font-weight:700;color:{colour}'>"
                f"{esc(d.old['verdict'])} → {esc(d.new['verdict'])}</div><div>{esc(headline(d))}</div></div>", headline(d))


def write(d: RunDiff, fmt: str, out: Path | None = None) -> str:
    text = FORMATTERS[fmt](d)
    if out:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return text


def render_page(nb: Any, old: Path, new: Path, out: Path) -> Path:
    """The executed compare.ipynb (``nb``, comparing run ``old`` with run ``new``) as one offline HTML page with
    the report's template (no script, no external request; code hidden), written to ``out``. The notebook is
    executed headless by the comparison runner (run/comparison.py)."""
    from nbconvert import HTMLExporter

    from runbook_lib.package_data import TEMPLATES

    nb.metadata["title"] = f"runbook diff · {old.name} → {new.name}"
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    exporter = HTMLExporter(template_name="runbook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    out.write_text(body, encoding="utf-8")
    return out
