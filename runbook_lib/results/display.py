"""HTML for check records: the tables shown in the notebooks and carried into the report.

Static HTML only (no widgets, no JavaScript), so the archived report renders offline. Every value is
HTML-escaped; evidence has already been redacted by the phase.

Records are grouped: one row per check id, its targets as chips (coloured by status, each an anchor
``#<check id>--<target>``), the problems spelled out under them, and the per-target evidence folded
below, as key/value tables a person can read. A record's evidence appears once. Styling is by class:
:data:`CSS` is the whole style sheet; a notebook output carries it in a ``<style class="rb-css">`` block
(Jupyter has no other), which the report strips because its template holds the same sheet once. Table cells
are left-aligned with a doubled class (``table.rb-table.rb-table td``): JupyterLab right-aligns every cell of
an output with a selector one class stronger than ``table.rb-table td``.
"""
from __future__ import annotations

import html
import json
import re
from collections import Counter
from typing import Any, Iterable

from runbook_lib.results.records import HEADLINE_ORDER, CheckRecord, headline, mix, plural

FOLD_CHARS = 160        # a string longer than this is folded (<details>), never cut
MAX_EVIDENCE_CHARS = 20000  # per record, as JSON; beyond that the results file holds the rest
CSS = """
.rb-badge{display:inline-block;color:#fff;padding:0 6px;border-radius:3px;font-weight:600;font-size:85%;line-height:1.5;
 white-space:nowrap}
.st-PASS{background:#1a7f37}.st-FAIL{background:#cf222e}.st-ERROR{background:#8250df}.st-WARN{background:#9a6700}
.st-SKIP{background:#57606a}.st-INFO{background:#6e7781}.st-WAIVED{background:#0969da}.st-NOT{background:#57606a}
table.rb-table{border-collapse:collapse;width:100%;font-size:90%;margin:4px 0;table-layout:auto}
table.rb-table.rb-table th,table.rb-table.rb-table td{border:1px solid #d0d7de;padding:3px 6px;vertical-align:top;
 text-align:left}
.rb-id{overflow-wrap:normal;word-break:normal}
table.rb-table thead th{background:#f6f8fa}
table.rb-table td{overflow-wrap:break-word}
.rb-prob,.rb-ev{overflow-wrap:anywhere}
.rb-chip{display:inline-block;margin:1px 2px;padding:0 6px;border-radius:9px;font-size:85%;color:#fff;text-decoration:none}
.rb-prob{margin:2px 0;font-size:92%}
.rb-ev{border-top:1px solid #d0d7de;padding:4px 0;margin-top:4px}
table.rb-kv{border-collapse:collapse;width:100%;font-size:92%}
table.rb-kv.rb-kv th,table.rb-kv.rb-kv td{border:1px solid #eaeef2;padding:1px 5px;vertical-align:top;text-align:left}
table.rb-kv th{width:14em;font-weight:600;background:#f6f8fa;overflow-wrap:anywhere}
table.rb-rows th{width:auto}
table.rb-kv td{overflow-wrap:anywhere}
pre.rb-cmd{background:#f6f8fa;color:#24292f;border:1px solid #d0d7de;border-radius:4px;padding:4px 8px;
 white-space:pre-wrap;overflow-wrap:anywhere;font-size:90%;margin:4px 0}
pre.rb-val{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:95%}
details.rb-fold>summary{cursor:pointer;color:#0969da}
.rb-fix{margin:3px 0}
"""
STYLE_BLOCK = f'<style class="rb-css">{CSS}</style>'


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def md(text: Any, limit: int = 200) -> str:
    """``text`` as one cell of a Markdown table (summary.md): pipes escaped, on one line, at most ``limit``
    characters."""
    return str(text).replace("|", "\\|").replace("\n", " ")[:limit]


def badge(status: str) -> str:
    return f'<span class="rb-badge st-{esc(status.split()[0])}">{esc(status)}</span>'


def id_html(check_id: str) -> str:
    """A check id as ``<code>``, breakable at its dots only (``prod.<wbr>restart_policy``), never mid-word."""
    return f'<code class="rb-id">{esc(check_id).replace(".", ".<wbr>")}</code>'


#: Evidence keys whose integer values are nanoseconds, as the engine stores a healthcheck's (interval,
#: timeout, start_period, start_interval) and a swarm service's restart and update policies (delay, window,
#: monitor). Shown as a duration (``3s``); the record keeps the engine's number.
NS_KEYS = frozenset({"interval", "timeout", "start_period", "start_interval", "delay", "window", "monitor"})


def human_duration(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``7m 3s``, ``12s``, ``1.5s``, ``250ms``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:.3g}s"
    s = int(max(seconds, 0))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def _snake(key: Any) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(key)).lower()  # the engine's StartPeriod: start_period


def shown(key: Any, value: Any) -> Any:
    """An evidence value as a person reads it: a nanosecond duration (:data:`NS_KEYS`, in the engine's spelling
    too: ``Interval``, ``StartPeriod``) as ``3s``, inside dicts and lists as well; anything else as it is."""
    if isinstance(value, dict):
        return {k: shown(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown("", v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1_000_000 and _snake(key) in NS_KEYS:
        return human_duration(value / 1e9)
    return value


def worst(statuses: Iterable[str]) -> str:
    """The headline status: the worst judged one (:func:`~runbook_lib.results.records.headline`)."""
    return headline(statuses)


def png(fig: Any) -> bytes:
    """A matplotlib figure as a small PNG for the report: rendered, then reduced to a 64-colour palette
    (charts are flat colours; this keeps them sharp at about a third of the bytes)."""
    import io

    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png")
    raw.seek(0)
    out = io.BytesIO()
    Image.open(raw).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


# -- evidence, readable --------------------------------------------------------------------------------
def _fold(text: str) -> str:
    if len(text) <= FOLD_CHARS and "\n" not in text:
        return esc(text)
    head = text.splitlines()[0][:60] if text.strip() else "(blank)"
    return (f'<details class="rb-fold"><summary>{esc(head)}… ({plural(len(text), "character")})</summary>'
            f'<pre class="rb-val">{esc(text)}</pre></details>')


def _value(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "<i>empty</i>"
        flat = "; ".join(f"{k}: {shown(k, v)}" for k, v in value.items()) if all(
            not isinstance(v, (dict, list, tuple)) for v in value.values()) else ""
        return esc(flat) if flat and len(flat) <= FOLD_CHARS else kv_table(value, depth + 1)
    if isinstance(value, (list, tuple)):
        if not value:
            return "<i>none</i>"
        if all(not isinstance(x, (dict, list, tuple)) for x in value):
            return _fold(", ".join(str(x) for x in value))
        if all(isinstance(x, dict) for x in value):
            return _rows_table(value, depth)
        return _fold(json.dumps(value, indent=1, default=str, ensure_ascii=False))
    if value is None:
        return "<i>null</i>"
    return _fold(str(value))


def _rows_table(items: list[dict[str, Any]], depth: int) -> str:
    """A list of dicts (probes, containers, findings) as one table: a column per key, a row per item;
    many rows fold."""
    keys: list[str] = []
    for x in items:
        keys.extend(k for k in x if k not in keys)
    if len(keys) > 10 or depth > 2:
        return _fold(json.dumps(items, indent=1, default=str, ensure_ascii=False))

    def cell(v: Any) -> str:
        if isinstance(v, (dict, list, tuple)):
            return _fold(json.dumps(v, default=str, ensure_ascii=False))
        return "" if v is None else _fold(str(v))

    head = "".join(f"<th>{esc(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{cell(shown(k, x.get(k)))}</td>" for k in keys) + "</tr>" for x in items)
    table = f'<table class="rb-kv rb-rows"><tr>{head}</tr>{body}</table>'
    if len(items) <= 12:
        return table
    return f'<details class="rb-fold"><summary>{plural(len(items), "row")}</summary>{table}</details>'


def kv_table(data: dict[str, Any], depth: int = 0) -> str:
    """A dict as a key/value table (nested dicts nest; long values fold)."""
    if depth > 3:
        return _fold(json.dumps(data, indent=1, default=str, ensure_ascii=False))
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{_value(shown(k, v), depth)}</td></tr>" for k, v in data.items())
    return f'<table class="rb-kv">{rows}</table>'


def _evidence(r: CheckRecord, note: str = "", common: dict[str, Any] | None = None, expected: str = "",
              severity: str = "") -> str:
    """One target's evidence: status, what was seen (and expected, when it differs from the check's),
    the command, the remediation, and the evidence entries not common to every target."""
    ev = {k: v for k, v in r.evidence.items() if not common or k not in common}
    text = json.dumps(ev, default=str, ensure_ascii=False)
    if len(text) > MAX_EVIDENCE_CHARS:
        ev = {"(evidence)": f"{len(text)} characters: too long to show; it is in results/{r.phase}.json"}
    cmd = f'<pre class="rb-cmd">$ {esc(r.command)}</pre>' if r.command else ""
    fix = f'<div class="rb-fix"><b>Remediation:</b> {esc(r.remediation)}</div>' if r.remediation else ""
    sev = f" <small>{esc(r.severity)}</small>" if r.severity != severity else ""
    exp = f"<br>expected: {_fold(r.expected)}" if r.expected != expected else ""
    return (f'<div class="rb-ev"><b>{esc(r.target)}</b> {badge(r.status)}'
            f"{' — ' + esc(note) if note else ''}{sev}{exp}<br>actual: {_fold(r.actual)}{cmd}{fix}"
            f"{kv_table(ev) if ev else ''}</div>")


def _common(rs: list[CheckRecord]) -> dict[str, Any]:
    """Evidence entries with the same value in every record of a check (shown once, not per target)."""
    if len(rs) < 2:
        return {}
    first = rs[0].evidence
    return {k: v for k, v in first.items() if all(k in r.evidence and r.evidence[k] == v for r in rs[1:])}


# -- records, grouped by check --------------------------------------------------------------------------
def _group_row(rs: list[CheckRecord], notes: dict[str, str]) -> str:
    first = rs[0]
    shown = [("WAIVED" if f"{r.id}@{r.target}" in notes else r.status) for r in rs]
    summary = mix(shown)
    # A chip is an anchor (#<check>--<target>) only where something links to it: a problem (blockers,
    # remediation); a passing target needs none, and 400 of those ids are 15 KB of a demo report.
    chips = "".join(f'<span class="rb-chip st-{s}"' + (f' id="{esc(r.id)}--{esc(r.target)}"' if s != "PASS" else "")
                    + f">{esc(r.target)}</span>" for r, s in zip(rs, shown))
    problems = "".join(
        f'<div class="rb-prob">{badge(r.status)} <b>{esc(r.target)}</b>: {esc(r.actual)}'
        + (f" <i>— {esc(notes[f'{r.id}@{r.target}'])}</i>" if f"{r.id}@{r.target}" in notes else "") + "</div>"
        for r in rs if r.status not in ("PASS", "INFO"))
    if not problems and len(rs) == 1:
        problems = f'<div class="rb-prob">{esc(first.actual)}</div>'
    common = _common(rs)
    expected = first.expected if all(r.expected == first.expected for r in rs) else ""
    shared = (f'<div class="rb-ev"><b>every target</b> <small>{esc(first.severity)}</small>'
              + (f"<br>expected: {_fold(expected)}" if expected else "") + (kv_table(common) if common else "") + "</div>")
    columns = _columns(rs, common)
    if columns is not None:  # many targets with the same kind of evidence: one table, a row per target
        evidence = shared + _evidence_columns(rs, notes, common, columns)
    else:
        evidence = shared + "".join(_evidence(r, notes.get(f"{r.id}@{r.target}", ""), common, expected, first.severity)
                                    for r in rs)
    fold = (f'<details class="rb-fold"><summary>evidence of {plural(len(rs), "target")}</summary>{evidence}</details>')
    return (f'<tr id="check-{esc(first.id)}"><td>{id_html(first.id)}<br><small>{esc(first.title)}</small></td>'
            f"<td>{badge(worst(shown))}<br><small>{esc(summary)}</small></td><td>{chips}{problems}{fold}</td></tr>")


def _columns(rs: list[CheckRecord], common: dict[str, Any]) -> list[str] | None:
    """The evidence keys of a check whose targets share them (at most 8 beyond the common ones), so the
    evidence reads as one table; None when there are few targets or the evidence differs in shape."""
    if len(rs) < 4:
        return None
    keys: list[str] = []
    for r in rs:
        keys.extend(k for k in r.evidence if k not in common and k not in keys)
    return keys if len(keys) <= 8 else None


def _evidence_columns(rs: list[CheckRecord], notes: dict[str, str], common: dict[str, Any], keys: list[str]) -> str:
    """Per-target evidence as one table: target (anchor), status, actual, command, then each evidence key."""
    same_cmd = all(r.command == rs[0].command for r in rs)
    head = ["target", "status", "actual", *([] if same_cmd else ["command"]), *keys]

    def cell(v: Any) -> str:
        if isinstance(v, (dict, list, tuple)):
            return _fold(json.dumps(v, default=str, ensure_ascii=False)) if v else ""
        return "" if v is None else _fold(str(v))

    rows = []
    for r in rs:
        note = notes.get(f"{r.id}@{r.target}", "")
        cells = [f"<b>{esc(r.target)}</b>", esc(r.status + (f" — {note}" if note else "")),
                 _fold(r.actual), *([] if same_cmd else [f"<code>{esc(r.command)}</code>"]),
                 *(cell(shown(k, r.evidence.get(k))) for k in keys)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    cmd = f'<pre class="rb-cmd">$ {esc(rs[0].command)}</pre>' if same_cmd and rs[0].command else ""
    fix = next((r.remediation for r in rs if r.remediation), "")
    fix_html = f'<div class="rb-fix"><b>Remediation:</b> {esc(fix)}</div>' if fix else ""
    return (cmd + fix_html + '<table class="rb-kv rb-rows"><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head)
            + "</tr>" + "".join(rows) + "</table>")


def records_table(records: Iterable[CheckRecord], caption: str = "", notes: dict[str, str] | None = None,
                  *, style: bool = True) -> str:
    """One row per check id: its worst status and tally, its targets as chips, what is wrong with which
    target, and every target's evidence folded below. ``notes``: ``check.id@target`` -> what the policy
    says of the record ("waived by W-1 until ..."), shown beside its status (the record is unchanged)."""
    notes = notes or {}
    rows = list(records)
    if not rows:
        return f"<p class='rb-empty'><i>{esc(caption) + ': ' if caption else ''}no records.</i></p>"
    groups: dict[str, list[CheckRecord]] = {}
    for r in rows:
        groups.setdefault(r.id, []).append(r)
    tally = Counter(r.status for r in rows)
    head = (f"<caption style='text-align:left'>{esc(caption)} "
            + " · ".join(f"{badge(s)} {tally[s]}" for s in HEADLINE_ORDER if tally.get(s)) + "</caption>")
    body = "".join(_group_row(rs, notes) for rs in groups.values())
    return ((STYLE_BLOCK if style else "") + f"<table class='rb-table'>{head}<thead><tr><th style='width:22%'>Check</th>"
            f"<th style='width:12%'>Status</th><th>Targets</th></tr></thead><tbody>{body}</tbody></table>")


def summary_table(records: Iterable[CheckRecord], caption: str = "", notes: dict[str, str] | None = None) -> str:
    """The short table a phase ends with: one line per check, its headline status with the mix beside it and
    the targets that are not PASS or INFO (a person reads it without scrolling the evidence; each id links to
    its row in the records above)."""
    notes = notes or {}
    groups: dict[str, list[CheckRecord]] = {}
    for r in records:
        groups.setdefault(r.id, []).append(r)
    if not groups:
        return f"<p class='rb-empty'><i>{esc(caption) + ': ' if caption else ''}no records.</i></p>"
    rows = []
    for cid, rs in groups.items():
        statuses = ["WAIVED" if f"{r.id}@{r.target}" in notes else r.status for r in rs]
        attention = ", ".join(esc(r.target) for r, st in zip(rs, statuses) if st not in ("PASS", "INFO"))
        rows.append([f"<a href='#check-{esc(cid)}'>{id_html(cid)}</a>", esc(rs[0].title),
                     f"{badge(headline(statuses))} <small>{esc(mix(statuses))}</small>", attention])
    cap = f"<p><b>{esc(caption)}</b></p>" if caption else ""
    return cap + simple_table(["Check", "What", "Status", "Not PASS"], rows, raw_columns=(0, 1, 2, 3))


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
    """The verdict, its counts and its blockers (grouped by check: ``prod.env ×80``)."""
    colour = "#1a7f37" if verdict == "GO" else "#cf222e"
    c = " · ".join(f"{esc(s)} {n}" for s, n in counts_.items() if n)
    if len(blockers) <= 12:
        chips = ", ".join(f"<code>{esc(b)}</code>" for b in blockers)
    else:  # the same problem on many targets is one entry: prod.env ×80
        chips = ", ".join(f"<code>{esc(cid)}</code> ×{n}" for cid, n in Counter(b.split("@", 1)[0] for b in blockers).items())
    why = f"<div><b>Blockers:</b> {chips}</div>" if blockers else ""
    return (f"<div class='rb-banner' style='border:3px solid {colour};padding:8px 14px;margin:6px 0'>"
            f"<div style='font-size:200%;font-weight:700;color:{colour}'>{esc(verdict)}</div>"
            f"<div>Project <b>{esc(project)}</b> · {esc(started)} → {esc(finished)}</div>"
            f"<div>{c}</div>{why}{extra}</div>")


class Html:
    """A piece of static HTML that Jupyter displays (and a plain-text form for terminals)."""

    def __init__(self, markup: str, text: str = "") -> None:
        self.markup = markup
        self.text = text

    def _repr_html_(self) -> str:
        return (STYLE_BLOCK if "rb-badge" in self.markup or "rb-table" in self.markup else "") + self.markup

    def __repr__(self) -> str:
        return self.text or self.markup


def simple_table(headers: list[str], rows: list[list[str]], *, raw_columns: tuple[int, ...] = ()) -> str:
    """A plain HTML table; cells are escaped except the columns listed in ``raw_columns`` (pre-built HTML).
    An empty header row is left out."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if i in raw_columns else esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f"<table class='rb-table'>{thead}<tbody>{body}</tbody></table>"
