"""Where `make test`'s wall time goes, and the order to hand files to pytest-xdist's workers.

    PYTEST_ADDOPTS=--junitxml=/tmp/junit.xml make test     # any whole run, with per-test times
    .venv/bin/python benchmarks/schedule.py /tmp/junit.xml [--workers 3] [--top 30]

Prints each test file's summed time (the unit `--dist loadfile` hands a worker), the run's total in
worker-seconds and its ideal wall time (total / workers), and a replay of xdist's loadfile schedule for
`tests/conftest.py`'s current ``LONGEST_FIRST`` order and for the order by measured time, ending with the
``LONGEST_FIRST`` tuple to paste. The replay is xdist's own rule (a worker is handed the next file when it has
at most 2 tests pending, and two files at the start), with each test taking its measured time: it ignores
that a test's time depends on what the others run beside it, so it ranks orders, it does not predict.
"""
from __future__ import annotations

import argparse
import collections
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def per_file(junit: Path) -> dict[str, list[float]]:
    """Each test file (path under tests/) with its tests' times, in the order the XML lists them."""
    files: dict[str, list[float]] = collections.OrderedDict()
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        files.setdefault(path.removeprefix("tests/"), []).append(float(case.get("time") or 0))
    return files


def replay(order: list[str], files: dict[str, list[float]], workers: int) -> list[float]:
    """Each worker's busy time when files are handed out in ``order`` by xdist's loadfile rule."""
    queue = [list(files[f]) for f in order]
    pending: list[list[float]] = [[] for _ in range(workers)]
    clock = [0.0] * workers

    def hand(w: int) -> None:
        if queue:
            pending[w].extend(queue.pop(0))

    for w in range(workers):
        hand(w)
    for w in range(workers):
        if len(pending[w]) <= 2:
            hand(w)
    while any(pending):
        w = min((i for i in range(workers) if pending[i]), key=lambda i: clock[i])
        clock[w] += pending[w].pop(0)
        if len(pending[w]) <= 2:
            hand(w)
    return clock


def current_order(files: dict[str, list[float]]) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import LONGEST_FIRST  # noqa: E402  (the suite's own list)

    first = [f for f in LONGEST_FIRST if f in files]
    return first + sorted(f for f in files if f not in first)  # the rest in collection (path) order


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("junit", type=Path, help="a pytest --junitxml file of a whole run")
    ap.add_argument("--workers", type=int, default=3, help="pytest-xdist workers (make test: 3)")
    ap.add_argument("--top", type=int, default=30, help="how many files the suggested LONGEST_FIRST names")
    args = ap.parse_args(argv)
    if not args.junit.is_file():
        ap.error(f"{args.junit}: no such file (run `PYTEST_ADDOPTS=--junitxml={args.junit} make test` first)")
    files = per_file(args.junit)
    ranked = sorted(files, key=lambda f: -sum(files[f]))
    total = sum(map(sum, files.values()))
    print(f"{'seconds':>8} {'tests':>5}  file")
    for f in ranked[:args.top]:
        print(f"{sum(files[f]):8.0f} {len(files[f]):5d}  {f}")
    print(f"\n{len(files)} files, {sum(map(len, files.values()))} tests, {total:.0f} worker-seconds; "
          f"ideal wall time with {args.workers} workers: {total / args.workers:.0f} s")
    for name, order in (("conftest.LONGEST_FIRST now", current_order(files)), ("by measured time", ranked)):
        clock = replay(order, files, args.workers)
        print(f"replayed, {name}: {max(clock):.0f} s (workers busy {', '.join(f'{c:.0f}' for c in clock)} s)")
    print("\nLONGEST_FIRST = (\n" + "".join(f'    "{f}",\n' for f in ranked[:args.top]) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
