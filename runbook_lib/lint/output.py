"""Output formats of `runbook lint`: a table for people, JSON (the check-record contract), SARIF 2.1.0."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook_lib.results.records import CheckRecord, counts, json_default
from runbook_lib.lint.baseline import fingerprint
from runbook_lib.lint.rules import RULES
from runbook_lib.lint.result import LintResult

# -- output ------------------------------------------------------------------------------------------

def _hidden(r: CheckRecord) -> bool:
    """A finding the people-facing formats leave out of their rows: suppressed inline, or in the baseline
    (JSON and SARIF keep them, marked)."""
    return bool(r.evidence.get("suppressed")) or r.evidence.get("baseline") == "unchanged"


def decision(result: LintResult) -> str:
    """One line: what decided the exit code, and what was left out of it."""
    deciding = [r for r in result.records if result.decides(r)]
    below = sum(1 for r in result.records if r.status == "FAIL" and not _hidden(r) and not result.decides(r))
    if result.baseline_written:
        parts = [f"exit {result.exit_code}: baseline written: {result.baseline_written[1]} finding(s) to "
                 f"{result.baseline_written[0]} (ERROR always fails)"]
    else:
        parts = [f"exit {result.exit_code}: " + (f"{len(deciding)} finding(s) fail" if deciding else "nothing fails")
                 + f" (--fail-on {result.fail_on}; ERROR always fails)"]
    if below:
        parts.append(f"{below} FAIL below {result.fail_on}")
    sup = sum(1 for r in result.records if r.evidence.get("suppressed"))
    if sup:
        parts.append(f"{sup} suppressed inline")
    if result.baseline:
        unchanged = sum(1 for r in result.records if r.evidence.get("baseline") == "unchanged")
        new = sum(1 for r in result.records if r.evidence.get("baseline") == "new")
        parts.append(f"baseline {result.baseline[0]}: {new} new, {unchanged} unchanged (not shown), "
                     f"{result.baseline[1]} gone")
    return "; ".join(parts)


def format_table(result: LintResult) -> str:
    """Findings (everything not PASS, less what is suppressed or in the baseline) as an aligned table, then
    one line: the counts and what decided the exit code."""
    rows = [r for r in result.records if r.status != "PASS" and not _hidden(r)]
    order = {"ERROR": 0, "FAIL": 1, "WARN": 2}
    rows.sort(key=lambda r: (order.get(r.status, 3), r.target, r.id))
    lines = []
    if rows:
        w_id = max(len(r.id) for r in rows)
        w_t = max(len(r.target) for r in rows)
        lines.append(f"{'STATUS':6}  {'SEVERITY':8}  {'CHECK':{w_id}}  {'TARGET':{w_t}}  FINDING")
        for r in rows:
            cis = f" [CIS {r.evidence['cis']}]" if r.evidence.get("cis") else ""
            lines.append(f"{r.status:6}  {r.severity:8}  {r.id:{w_id}}  {r.target:{w_t}}  {r.actual}{cis}")
    c = counts(result.records)
    lines.append(", ".join(f"{n} {s}" for s, n in c.items() if n) + f" ({len(result.records)} checks over "
                 f"{', '.join(p.name for p in result.files)}; {result.scope()}); {decision(result)}")
    return "\n".join(lines)


def format_json(result: LintResult) -> str:
    return json.dumps({"schema": 1, "files": [str(p) for p in result.files], "counts": counts(result.records),
                       "services": result.services, "profiles": result.profiles, "not_linted": result.skipped,
                       "summary": result.scope(),
                       "exit_code": result.exit_code, "fail_on": result.fail_on, "decision": decision(result),
                       "records": [r.fields() for r in result.records]},
                      indent=2, default=json_default)


_SARIF_LEVEL = {"FAIL": "error", "ERROR": "error", "WARN": "warning"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def location(result: LintResult, r: CheckRecord) -> tuple[Path, int | None]:
    """Where a finding is: the line the rule read (evidence["location"], from the source YAML), else
    the definition of its service or secret in the last file that defines it."""
    loc = r.evidence.get("location") or {}
    if loc.get("file"):
        return Path(loc["file"]), loc.get("line")
    section = "secrets" if r.id in _SECRET_TARGETS else "volumes" if r.id == "hardening.shared_volume" else "services"
    if result.source is None:
        return result.files[0], None
    return result.source.locate(section, r.target)


_SECRET_TARGETS = ("secrets.declared_unused", "secrets.external", "secrets.weak_value", "secrets.committed_file")


def format_sarif(result: LintResult) -> str:
    """SARIF 2.1.0: one result per finding (not PASS), located at the service's or secret's definition."""
    rule_ids = sorted({r.id for r in result.records})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    cwd = Path.cwd()
    rules = []
    for rid in rule_ids:
        rule = RULES.get(rid)
        title = rule.title if rule else rid
        props: dict[str, Any] = {"tags": ["security"] + ([f"CIS-{rule.cis}"] if rule and rule.cis else [])}
        if rule:
            props["security-severity"] = _SECURITY_SEVERITY[rule.severity]
        rules.append({"id": rid, "name": rid.replace(".", "_"), "shortDescription": {"text": title},
                      "help": {"text": rule.remediation if rule else title},
                      "defaultConfiguration": {"level": "error" if (rule and rule.severity in ("critical", "high")) else "warning"},
                      "properties": props})
    results = []
    for r in result.records:
        if r.status not in _SARIF_LEVEL:
            continue
        f, line = location(result, r)
        try:
            uri = f.relative_to(cwd).as_posix()
        except ValueError:
            uri = f.as_uri()
        loc: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if line:
            loc["region"] = {"startLine": line}
        extra: dict[str, Any] = {}
        if r.evidence.get("suppressed"):
            extra["suppressions"] = [{"kind": "inSource", "status": "accepted",
                                      "justification": r.evidence["suppressed"]["reason"]}]
        if r.evidence.get("baseline"):
            extra["baselineState"] = r.evidence["baseline"]
        results.append({**extra,
            "ruleId": r.id, "ruleIndex": index[r.id], "level": _SARIF_LEVEL[r.status],
            "message": {"text": f"{r.target}: {r.actual}" + (f" (remediation: {r.remediation})" if r.remediation else "")},
            "locations": [{"physicalLocation": loc}],
            "partialFingerprints": {"runbookCheck/v1": f"{r.id}@{r.target}",
                                    "runbookFinding/v1": fingerprint(r, result.files[0].parent)},
            "properties": {"target": r.target, "severity": r.severity, "status": r.status,
                           **({"cis": r.evidence["cis"]} if r.evidence.get("cis") else {}),
                           **({"profiles": r.evidence["profiles"]} if r.evidence.get("profiles") else {})},
        })
    from runbook_lib import __version__
    sarif = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
             "runs": [{"tool": {"driver": {"name": "runbook lint", "version": __version__, "rules": rules}},
                       "results": results, "columnKind": "unicodeCodePoints"}]}
    return json.dumps(sarif, indent=2)


def _relative(f: Path) -> str:
    try:
        return f.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return f.as_posix()


def _escape(text: str, prop: bool = False) -> str:
    """GitHub workflow-command escaping (data: %, CR, LF; a property value also : and ,)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def format_github(result: LintResult) -> str:
    """GitHub Actions workflow commands: each finding an annotation on its file and line (``error`` when it
    fails the lint, else ``warning``), then the decision line as a notice. Suppressed findings and those in
    the baseline are left out (JSON and SARIF keep them). Paths are relative to the current directory (run
    it from the repository's root, as a workflow step does)."""
    lines = []
    for r in result.records:
        if r.status not in ("FAIL", "WARN", "ERROR") or _hidden(r):
            continue
        f, line = location(result, r)
        level = "error" if result.decides(r) else "warning"
        props = f"file={_escape(_relative(f), True)}" + (f",line={line}" if line else "")
        title = _escape(f"{r.id} ({r.severity})", True)
        lines.append(f"::{level} {props},title={title}::{_escape(f'{r.target}: {r.actual}')}")
    lines.append(f"::notice title=runbook lint::{_escape(decision(result))}")
    return "\n".join(lines)


#: runbook severities onto GitLab Code Quality's five, in the same order.
_GITLAB_SEVERITY = {"critical": "blocker", "high": "critical", "medium": "major", "low": "minor", "info": "info"}


def format_gitlab(result: LintResult) -> str:
    """GitLab Code Quality report (a JSON array): one issue per finding, located at its file and line,
    fingerprinted as the baseline does (stable across line moves). Suppressed and baseline findings are left
    out, as in the table."""
    out = []
    for r in result.records:
        if r.status not in ("FAIL", "WARN", "ERROR") or _hidden(r):
            continue
        f, line = location(result, r)
        out.append({"description": f"{r.target}: {r.actual}", "check_name": r.id,
                    "fingerprint": fingerprint(r, result.files[0].parent),
                    "severity": _GITLAB_SEVERITY.get(r.severity, "major"),
                    "location": {"path": _relative(f), "lines": {"begin": line or 1}}})
    return json.dumps(out, indent=2)


FORMATTERS = {"table": format_table, "json": format_json, "sarif": format_sarif, "github": format_github,
              "gitlab": format_gitlab}


def format_error(fmt: str, message: str, exit_code: int) -> str | None:
    """The machine-readable error object for an input or environment error (json, sarif), or None for
    the table (stderr carries the error alone)."""
    if fmt == "json":
        return json.dumps({"schema": 1, "exit_code": exit_code, "records": [],
                           "error": {"message": message, "cause": message.splitlines()[0]}}, indent=2)
    if fmt == "github":
        return f"::error title=runbook lint::{_escape(message)}"
    if fmt == "gitlab":  # an empty report would read as "no issue": stdout stays empty, the exit code says it
        return None
    if fmt == "sarif":
        from runbook_lib import __version__
        return json.dumps({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "runbook lint", "version": __version__, "rules": []}}, "results": [],
                      "invocations": [{"executionSuccessful": False, "exitCode": exit_code,
                                       "toolExecutionNotifications": [{"level": "error",
                                                                       "message": {"text": message}}]}]}]}, indent=2)
    return None


# A bug in lint (an exception no rule meant to raise): not 1 (findings) nor 2 (input error).
INTERNAL_ERROR = 4


def internal_error(fmt: str, exc: BaseException) -> tuple[str, str | None]:
    """(the one-line message for stderr, the error object for stdout in json/sarif, None for the table) of
    an internal error. The message names the exception's type and where it was raised, never its text: that
    may quote a value of the files (a credential), which no output may show."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "runbook_lib" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name}" if ours else "unknown"
    message = (f"internal error in runbook lint: {type(exc).__name__} at {where}. This is a bug, not a finding: no "
               "record was made; please report it with the compose file that caused it")
    obj = format_error(fmt, message, INTERNAL_ERROR)
    if obj and fmt == "json":
        data = json.loads(obj)
        data["error"].update(cause="internal error", internal=True, type=type(exc).__name__, where=where)
        obj = json.dumps(data, indent=2)
    return message, obj
