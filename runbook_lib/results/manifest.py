"""manifest.json: the SHA-256 of every file of a run directory, written last (and signed, :mod:`.signing`), and
the one check every reader of a run makes first (:func:`verify_run`: the files, the signature, and a verdict that
follows from the records; a fleet's directory with every target's too).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from runbook_lib.results.records import SCHEMA

MANIFEST = "manifest.json"


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
    from runbook_lib.results import signing
    from runbook_lib.results import verdict as verdicts
    from runbook_lib.errors import InputError, RunbookError
    from runbook_lib.params import load_params

    if not (run_dir / MANIFEST).is_file():
        raise InputError(f"{run_dir} has no {MANIFEST}; is it a run directory?")
    diff = verify_manifest(run_dir)
    problems = [f"{kind}: {name}" for kind in ("changed", "added", "removed") for name in diff[kind]]
    sig_ok, sig_words = signing.verify_file(run_dir / MANIFEST, key)
    if not sig_ok:
        problems.append(f"signature FAILED: {sig_words}")
    if not problems and (run_dir / verdicts.VERDICT_FILE).is_file():
        from runbook_lib.results import fleet_verdict as fleet

        # a fleet's directory: its own verdict (over its per-target records) and every target's, each re-judged
        dirs = [run_dir]
        if fleet.is_fleet(run_dir):
            dirs += sorted(p.parent for p in (run_dir / fleet.TARGETS_DIR).glob(f"*/{verdicts.VERDICT_FILE}"))
            for d in dirs[1:]:  # each target's own manifest and signature too (the fleet's lists neither)
                sub = str(d.relative_to(run_dir))
                if not (d / MANIFEST).is_file():
                    problems.append(f"removed: {sub}/{MANIFEST}")
                    continue
                own = verify_manifest(d)
                problems += [line for kind in ("changed", "added", "removed") for name in own[kind]
                             for line in [f"{kind}: {sub}/{name}"] if line not in problems]
                ok, words = signing.verify_file(d / MANIFEST, key)
                if not ok:
                    problems.append(f"signature FAILED: {sub}/{MANIFEST}: {words}")
            if problems:
                return problems
        for d in dirs:
            name = str((d / verdicts.VERDICT_FILE).relative_to(run_dir))
            try:
                stored = verdicts.read(d)
                judge = fleet.judge if d == run_dir and fleet.is_fleet(run_dir) else verdicts.judge
                again = judge(d, load_params(d / "params.yaml"))
            except (OSError, ValueError, RunbookError) as exc:  # listed in a forged manifest, but unreadable
                return problems + [f"changed: {name} cannot be re-judged ({type(exc).__name__}: {exc})"]
            differ = verdicts.same_judgement(stored, again)
            if d == run_dir and fleet.is_fleet(run_dir):
                differ += [k for k in ("fleet", "target_blockers") if stored.get(k) != again.get(k)]
            if differ:
                problems.append(f"changed: {name} does not follow from the records "
                                f"(re-judged, these differ: {', '.join(differ)})")
    return problems
