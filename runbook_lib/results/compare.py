"""What changed between two runs: ``runbook diff OLD NEW``, notebooks/compare.ipynb and the report's
"since the last GO" line all call :func:`diff_runs`.

Both runs are verified first (:func:`runbook_lib.results.frames.open_run`); an unverified one is refused. The
comparison reads only what the runs archived: the verdict files (verdicts, blockers, waivers), the
records (statuses per ``check.id@target``; drill recovery times in the ``smoke.drill.*`` evidence; the
config hash per service in the ``prod.drift`` evidence) and the sign-off block (image id and digests per
service, the compose files' SHA-256).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runbook_lib.results.frames import Run, frame, open_run

BASELINE_FILE = "baseline.json"


@dataclass
class RunDiff:
    """The differences between an old and a new run. Lists of plain dicts (JSON as they are)."""

    old: dict[str, Any]
    new: dict[str, Any]
    new_blockers: list[dict[str, Any]] = field(default_factory=list)
    resolved_blockers: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)    # check.id@target recorded only by the old run
    only_new: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    compose_files: list[dict[str, Any]] = field(default_factory=list)
    config_hashes: list[dict[str, Any]] = field(default_factory=list)
    waivers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    drills: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when the new run has blockers the old one did not, else 0."""
        return 1 if self.new_blockers else 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}


def _side(run: Run) -> dict[str, Any]:
    v = run.verdict
    return {"run_id": run.run_id, "path": str(run.path), "project": run.project, "engine": run.engine,
            "verdict": v.get("verdict"), "started": v.get("started"), "counts": {k: n for k, n in v.get("counts", {}).items() if n},
            "blockers": len(v.get("blockers", []))}


def _signoff_block(run: Run) -> dict[str, Any]:
    recs = [r for r in run.records if r.id == "signoff.block"]
    return recs[-1].evidence if recs else {}


def _blockers(old: Run, new: Run, statuses: dict[str, str]) -> tuple[list[dict], list[dict]]:
    before = {b["ref"]: b for b in old.verdict.get("blockers", [])}
    now = {b["ref"]: b for b in new.verdict.get("blockers", [])}
    waived = new.waived_by()
    added = [now[r] for r in now if r not in before]
    resolved = []
    for r, b in before.items():
        if r not in now:
            status = f"WAIVED ({waived[r]})" if r in waived else statuses.get(r, "not recorded")
            resolved.append({**b, "now": status})
    return added, resolved


def _statuses(old: Run, new: Run) -> tuple[list[dict], list[str], list[str], dict[str, str]]:
    """Status per check.id@target in each run (the last record of a ref wins), joined as frames."""
    def by_ref(run: Run):
        df = frame([run])
        df["ref"] = df["check_id"] + "@" + df["target"]
        return df.drop_duplicates("ref", keep="last").set_index("ref")

    a, b = by_ref(old), by_ref(new)
    both = a.join(b, how="inner", lsuffix="_old", rsuffix="_new")
    changed = both[both.status_old != both.status_new]
    rows = [{"ref": ref, "id": row.check_id_new, "target": row.target_new, "old": row.status_old,
             "new": row.status_new, "severity": row.severity_new, "actual": str(row.actual_new)[:300]}
            for ref, row in changed.iterrows()]
    return rows, sorted(set(a.index) - set(b.index)), sorted(set(b.index) - set(a.index)), b["status"].to_dict()


def _images(old_block: dict, new_block: dict) -> list[dict[str, Any]]:
    a, b = old_block.get("images") or {}, new_block.get("images") or {}
    out = []
    for svc in sorted(set(a) & set(b)):
        x, y = a[svc] or {}, b[svc] or {}
        if (x.get("id"), sorted(x.get("digests") or []), x.get("image")) != (y.get("id"), sorted(y.get("digests") or []), y.get("image")):
            out.append({"service": svc, "old_image": x.get("image"), "new_image": y.get("image"),
                        "old_id": x.get("id"), "new_id": y.get("id"),
                        "old_digests": x.get("digests") or [], "new_digests": y.get("digests") or [],
                        "digest_changed": (x.get("id"), sorted(x.get("digests") or [])) != (y.get("id"), sorted(y.get("digests") or []))})
    return out


def _files(old_block: dict, new_block: dict) -> list[dict[str, Any]]:
    out = []
    for kind in ("compose_files", "env_files"):
        a, b = old_block.get(kind) or {}, new_block.get(kind) or {}
        for f in sorted(set(a) | set(b)):
            if a.get(f) != b.get(f):
                out.append({"kind": kind[:-1], "file": f, "old": a.get(f), "new": b.get(f)})
    return out


def _config_hashes(old: Run, new: Run) -> list[dict[str, Any]]:
    def hashes(run: Run) -> dict[str, str]:
        out = {}
        for r in run.records:
            if r.id == "prod.drift" and isinstance(r.evidence.get("config_hash"), dict):
                h = r.evidence["config_hash"]
                out[r.target] = h.get("compose") or h.get("label") or ""
        return out

    a, b = hashes(old), hashes(new)
    return [{"service": s, "old": a[s], "new": b[s]} for s in sorted(set(a) & set(b)) if a[s] != b[s]]


def _waivers(old: Run, new: Run) -> dict[str, list[dict[str, Any]]]:
    def key(w: dict) -> tuple:
        return (w.get("id"), w.get("check"), w.get("target"))

    a = {key(w): w for w in old.verdict.get("waivers", [])}
    b = {key(w): w for w in new.verdict.get("waivers", [])}
    pick = ("id", "check", "target", "expires", "state", "owner")
    return {"new": [{k: w.get(k) for k in pick} for kk, w in b.items() if kk not in a],
            "expired": [{k: w.get(k) for k in pick} for kk, w in b.items()
                        if w.get("state") == "expired" and (kk not in a or a[kk].get("state") != "expired")],
            "removed": [{k: w.get(k) for k in pick} for kk, w in a.items() if kk not in b]}


def _drills(old: Run, new: Run) -> list[dict[str, Any]]:
    def times(run: Run) -> dict[str, float]:
        return {f"{r.id}@{r.target}": float(r.evidence["recovery_s"]) for r in run.records
                if r.id.startswith("smoke.drill.") and isinstance(r.evidence.get("recovery_s"), (int, float))}

    a, b = times(old), times(new)
    out = []
    for ref in sorted(set(a) & set(b)):
        if a[ref] != b[ref]:
            out.append({"ref": ref, "old_s": a[ref], "new_s": b[ref],
                        "ratio": round(b[ref] / a[ref], 2) if a[ref] > 0 else None})
    return out


def _services(old: Run, new: Run, images: list[dict], hashes: list[dict]) -> dict[str, list[str]]:
    def names(run: Run) -> set[str]:
        return set(_signoff_block(run).get("images") or {}) | {r.target for r in run.records if r.id == "prod.drift"}

    a, b = names(old), names(new)
    changed = {i["service"] for i in images} | {h["service"] for h in hashes}
    return {"new": sorted(b - a), "removed": sorted(a - b), "changed": sorted(changed & a & b)}


def diff_runs(old: Run, new: Run) -> RunDiff:
    """What changed from ``old`` to ``new`` (both already opened, and verified by whoever opened them)."""
    changes, only_old, only_new, statuses = _statuses(old, new)
    added, resolved = _blockers(old, new, statuses)
    ob, nb = _signoff_block(old), _signoff_block(new)
    images, hashes = _images(ob, nb), _config_hashes(old, new)
    return RunDiff(old=_side(old), new=_side(new), new_blockers=added, resolved_blockers=resolved,
                   status_changes=changes, only_old=only_old, only_new=only_new, images=images,
                   compose_files=_files(ob, nb), config_hashes=hashes, waivers=_waivers(old, new),
                   drills=_drills(old, new), services=_services(old, new, images, hashes))


def compare_runs(old_dir: str | Path, new_dir: str | Path, key: Path | None = None) -> RunDiff:
    """Verify both run directories (refusing one that does not verify), then :func:`diff_runs`."""
    return diff_runs(open_run(old_dir, key=key), open_run(new_dir, key=key))


def latest_pair(outputs: str | Path | None = None) -> tuple[Path, Path]:
    """For compare.ipynb opened without parameters: the newest run directory under ``outputs`` and the
    newest GO run before it (else the run just before it). Raises InputError with fewer than two runs.
    ``outputs`` empty: ``outputs/`` of the project of ``$RUNBOOK_PARAMS``, else of ``parameters/demo.yaml``
    found from the current directory upward (:func:`runbook_lib.params.core.default_outputs`)."""
    from runbook_lib.errors import InputError
    from runbook_lib.params import default_outputs

    outputs = outputs or default_outputs()
    runs = sorted(p for p in Path(outputs).glob("*") if (p / "manifest.json").is_file())
    if len(runs) < 2:
        raise InputError(f"fewer than two run directories under {outputs}: give old_run and new_run")
    new, earlier = runs[-1], runs[:-1]

    def verdict(p: Path) -> str | None:
        try:
            return json.loads((p / "verdict.json").read_text(encoding="utf-8")).get("verdict")
        except (OSError, ValueError):
            return None

    gos = [p for p in earlier if verdict(p) == "GO"]
    return (gos[-1] if gos else earlier[-1]), new


# -- the "since the last GO" line of a run made with --baseline ------------------------------------------
def since_line(d: RunDiff) -> str:
    n, m, k = len(d.new_blockers), len(d.resolved_blockers), len(d.images)
    return (f"{n} new blocker{'s' * (n != 1)}, {m} fixed, {k} image{'s' * (k != 1)} changed "
            f"(baseline: {d.old['verdict']} run {d.old['run_id']})")


def write_baseline(run_dir: Path, baseline: Run) -> Path:
    """``baseline.json`` in the run directory being finished: what changed since the baseline run (which
    the runner verified before the run started). Not part of the verdict: the verdict is the policy's
    judgement of this run alone; the manifest covers this file like any other."""
    d = diff_runs(baseline, open_run(run_dir, verify=False))
    data = {"schema": 1, "baseline": {k: d.old[k] for k in ("run_id", "path", "project", "verdict", "started")},
            "line": since_line(d), "new_blockers": [b["ref"] for b in d.new_blockers],
            "fixed": [b["ref"] for b in d.resolved_blockers], "images_changed": [i["service"] for i in d.images],
            "services": d.services}
    out = run_dir / BASELINE_FILE
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return out


def read_baseline(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / BASELINE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
