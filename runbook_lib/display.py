"""HTML for check records: the tables shown in the notebooks and carried into the report.

Static HTML only (no widgets, no JavaScript), so the archived report renders offline. Every value is
HTML-escaped and long evidence is truncated; evidence has already been redacted by the phase.
"""
from __future__ import annotations

import html
import json
from typing import Iterable

from .records import CheckRecord, counts

STATUS_COLOURS = {
    "PASS": "#1a7f37", "FAIL": "#cf222e", "ERROR": "#8250df", "WARN": "#9a6700",
    "SKIP": "#57606a", "INFO": "#6e7781", "WAIVED": "#0969da",
}
MAX_EVIDENCE_CHARS = 4000


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#57606a")
    return (f'<span class="rb-badge" style="background:{colour};color:#fff;padding:1px 6px;'
            f'border-radius:3px;font-weight:600;font-size:85%">{esc(status)}</span>')


def _evidence(r: CheckRecord) -> str:
    text = json.dumps(r.evidence, indent=1, default=str, ensure_ascii=False)
    if len(text) > MAX_EVIDENCE_CHARS:
        text = text[:MAX_EVIDENCE_CHARS] + f"\n… ({len(text) - MAX_EVIDENCE_CHARS} more characters in results/{r.phase}.json)"
    cmd = f'<div class="rb-cmd"><code>$ {esc(r.command)}</code></div>' if r.command else ""
    fix = f'<div class="rb-fix"><b>Remediation:</b> {esc(r.remediation)}</div>' if r.remediation else ""
    return (f'<details><summary>evidence</summary>{cmd}{fix}'
            f'<pre style="white-space:pre-wrap;max-height:30em;overflow:auto">{esc(text)}</pre></details>')


def records_table(records: Iterable[CheckRecord], caption: str = "", notes: dict[str, str] | None = None) -> str:
    """The verification table: check, target, status, expected, actual, evidence (folded). ``notes``:
    ``check.id@target`` -> what the policy says of the record ("waived by W-1 until ...")."""
    notes = notes or {}
    seen: set[str] = set()

    def anchor(r: CheckRecord) -> str:
        first = r.id not in seen
        seen.add(r.id)
        return f"<a id='check-{esc(r.id)}'></a>" if first else ""

    rows = list(records)
    if not rows:
        return f"<p class='rb-empty'><i>{esc(caption) + ': ' if caption else ''}no records.</i></p>"
    c = counts(rows)
    summary = " · ".join(f"{badge(s)} {n}" for s, n in c.items() if n)
    head = f"<caption style='text-align:left'>{esc(caption)} {summary}</caption>" if caption or rows else ""
    body = "".join(
        f"<tr id='{esc(r.id)}--{esc(r.target)}'><td>{anchor(r)}<code>{esc(r.id)}</code><br><small>{esc(r.title)}</small></td>"
        f"<td>{esc(r.target)}</td><td>{badge(r.status)}<br><small>{esc(r.severity)}"
        + (f"<br>— {esc(notes[f'{r.id}@{r.target}'])}" if f"{r.id}@{r.target}" in notes else "") + "</small></td>"
        f"<td>{esc(r.expected)}</td><td>{esc(r.actual)}</td><td>{_evidence(r)}</td></tr>"
        for r in rows
    )
    return (
        "<table class='rb-table' style='border-collapse:collapse;width:100%;font-size:90%'>"
        f"{head}<thead><tr><th>Check</th><th>Target</th><th>Status</th><th>Expected</th><th>Actual</th>"
        f"<th>Evidence</th></tr></thead><tbody>{body}</tbody></table>"
    )


class RecordTable:
    """Records that render as the verification table in Jupyter (and as text elsewhere)."""

    def __init__(self, records: list[CheckRecord], caption: str = "", notes: dict[str, str] | None = None) -> None:
        self.records = records
        self.caption = caption
        self.notes = notes or {}

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def _repr_html_(self) -> str:
        return records_table(self.records, self.caption, self.notes)

    def __repr__(self) -> str:
        lines = [f"{r.status:6} {r.id:34} {r.target:24} {r.actual[:80]}"
                 + (f" ({self.notes[k]})" if (k := f"{r.id}@{r.target}") in self.notes else "") for r in self.records]
        return "\n".join(lines) or "(no records)"


def verdict_banner(verdict: str, project: str, counts_: dict[str, int], blockers: list[str],
                   started: str, finished: str, extra: str = "") -> str:
    colour = "#1a7f37" if verdict == "GO" else "#cf222e"
    c = " · ".join(f"{esc(s)} {n}" for s, n in counts_.items() if n)
    why = ("<div><b>Blockers:</b> " + ", ".join(f"<code>{esc(b)}</code>" for b in blockers) + "</div>") if blockers else ""
    return (f"<div class='rb-banner' style='border:3px solid {colour};padding:12px 16px;margin:8px 0'>"
            f"<div style='font-size:200%;font-weight:700;color:{colour}'>{esc(verdict)}</div>"
            f"<div>Project <b>{esc(project)}</b> · {esc(started)} → {esc(finished)}</div>"
            f"<div>{c}</div>{why}{extra}</div>")


class Html:
    """A piece of static HTML that Jupyter displays (and a plain-text form for terminals)."""

    def __init__(self, markup: str, text: str = "") -> None:
        self.markup = markup
        self.text = text

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.text or self.markup


def simple_table(headers: list[str], rows: list[list[str]], *, raw_columns: tuple[int, ...] = ()) -> str:
    """A plain HTML table; cells are escaped except the columns listed in ``raw_columns`` (pre-built HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if i in raw_columns else esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return (f"<table class='rb-table' style='border-collapse:collapse;width:100%;font-size:90%'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
