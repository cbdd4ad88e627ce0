"""Report size and render time: the demo's report and a synthetic 80-service run's, against their budgets.

    .venv/bin/python benchmarks/bench_report.py [RUN_DIR]

RUN_DIR: a run directory of the demo (default: the newest one under outputs/; `make demo` makes one).
Nothing in it is changed: the report is rendered into a temporary file.

The synthetic run is built from that run's read-only phases (00, 02, 03) and sign-off, as the issue's
80-service measurement ran them: each check judged per service gets 80 targets (svc-01 …
svc-80, cycling through the demo's records of that check), the other records are kept once; each phase gets a notebook with the
phase's markdown and one record table per check, made by the same display function the phase notebooks
use, and the verdict file is judged by the same function as a real run. Then report.write_html renders it.
Render time is the median of 3 renders, in this process (the kernel start-up of a real run is not part
of rendering).

Budgets: demo report <= 400 KB; 80-service report <= 1.5 MB, rendered in <= 3 s.
Before (measured before the report was slimmed): demo 1.1 MB; 80 services 4.6 MB.
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook_lib.results import report  # noqa: E402

from runbook_lib.results import verdict as verdicts  # noqa: E402
from runbook_lib.results.display import RecordTable  # noqa: E402
from runbook_lib.params import load_params  # noqa: E402
from runbook_lib.results.records import CheckRecord, read_records, write_records  # noqa: E402

N = 80
# The phases of the 80-service measurement: the read-only ones (`runbook run --phase 00_preflight
# --phase 02_secrets_security --phase 03_production_mode`) and the sign-off.
PHASES = ("00_preflight", "02_secrets_security", "03_production_mode", "05_signoff")
BUDGETS = {"demo": (400_000, None), f"synthetic {N} services": (1_500_000, 3.0)}
BEFORE = {"demo": "1.1 MB", f"synthetic {N} services": "4.6 MB"}


def newest_run() -> Path:
    runs = sorted(p for p in (ROOT / "outputs").glob("*-*") if (p / "verdict.json").is_file())
    if not runs:
        sys.exit("bench_report: no run directory with a verdict.json under outputs/: run `make demo` first, "
                 "or pass a run directory")
    return runs[-1]


def render(run_dir: Path, out: Path) -> tuple[int, float]:
    v = verdicts.read(run_dir)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        report.write_html(run_dir, v, out=out)
        times.append(time.perf_counter() - t0)
    return out.stat().st_size, statistics.median(times)


def synthetic(template: Path, work: Path) -> Path:
    """An N-service run directory made from the demo run ``template`` (see the module docstring)."""
    params = load_params(template / "params.yaml")
    services = {r.target for r in read_records(template / "results" / "03_production_mode.json") if r.id == "prod.restart_policy"}
    run = work / f"{template.name}-x{N}"
    (run / "results").mkdir(parents=True)
    (run / "notebooks").mkdir()
    for name in ("params.yaml", "run.json"):
        shutil.copy(template / name, run / name)
    for results in sorted((template / "results").glob("*.json")):
        phase = results.stem
        if phase not in PHASES:
            continue
        recs: list[CheckRecord] = []
        per_service: dict[str, list[CheckRecord]] = defaultdict(list)
        for r in read_records(results):
            if r.target in services:
                per_service[r.id].append(r)
            else:
                recs.append(r)
        for cid, rs in per_service.items():  # each check: 80 targets, cycling through the demo's records
            recs.extend(CheckRecord.from_dict({**rs[i % len(rs)].to_dict(), "target": f"svc-{i + 1:02d}"})
                        for i in range(N))
        write_records(run / "results" / f"{phase}.json", recs)
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_markdown_cell(f"# {phase}\n\nSynthetic: {len(recs)} records."))
        by_check: dict[str, list[CheckRecord]] = defaultdict(list)
        for r in recs:
            by_check[r.id].append(r)
        for rs in by_check.values():
            cell = nbformat.v4.new_code_cell("phase.run(...)")
            cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": RecordTable(rs)._repr_html_()})]
            nb.cells.append(cell)
        nbformat.write(nb, run / "notebooks" / f"{phase}.ipynb")
    verdicts.write(run, verdicts.judge(run, params))
    return run


def main() -> int:
    template = Path(sys.argv[1]) if len(sys.argv) > 1 else newest_run()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        results = {"demo": render(template, tmp_path / "demo.html")}
        big = synthetic(template, tmp_path)
        results[f"synthetic {N} services"] = render(big, tmp_path / "big.html")
        records = json.loads((big / "verdict.json").read_text())["records"]
    print(f"template run: {template}")
    print(f"{'report':24} {'size':>10} {'budget':>10} {'before':>8} {'render s':>9} {'budget':>7}  ok")
    ok_all = True
    for name, (size, secs) in results.items():
        size_budget, time_budget = BUDGETS[name]
        ok = size <= size_budget and (time_budget is None or secs <= time_budget)
        ok_all &= ok
        print(f"{name:24} {size / 1000:>8.0f}KB {size_budget / 1000:>8.0f}KB {BEFORE[name]:>8} {secs:>9.2f} "
              f"{'-' if time_budget is None else f'{time_budget:g}':>7}  {'yes' if ok else 'NO'}")
    print(f"(synthetic run: {records} records)")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
