"""What idle demo stacks cost this machine, and the floor that puts under `make test`'s wall time.

    .venv/bin/python benchmarks/idle_stacks.py [--stacks 3] [--seconds 60] [--work CORE_SECONDS]

Samples the machine's busy CPU (``/proc/stat``) for ``--seconds`` with what runs now (the baseline: the user's
demo stack, if up), then brings up ``--stacks`` demo stacks of its own beside it (``rbidle<i>-...`` on free
ports, as the test suite's workers do), lets them settle, and samples again with them idle: nothing but their
health probes, Prometheus's scrapes and the services' own timers. It removes its stacks with their volumes
whatever happens. Prints the baseline, the cost per stack, the engine's share (dockerd, containerd and the
shims with the runc and probe processes they reap) and the cores left for work with the suite's stacks up.

``--work`` is the test suite's own CPU (core-seconds spent beyond its idle stacks: a sampled run's busy
core-seconds minus the stacks' cost over its wall time). With it, the script prints the floor: the wall time
under which the suite cannot finish on this machine however its files are scheduled, ``work / cores left``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demo"))

import runbook_demo as demo  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
ENGINE = ("dockerd", "containerd")


def busy() -> float:
    """Core-seconds the machine has been busy (everything but idle and iowait) since boot."""
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return (sum(v) - v[3] - v[4]) / HZ


def engine_cpu() -> float:
    """Core-seconds of the engine's processes: dockerd, containerd, and each shim with the children it reaped
    (runc, the health probes' processes)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            comm = Path(f"/proc/{d}/comm").read_text().strip()
            f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if comm in ENGINE:
            total += (int(f[11]) + int(f[12])) / HZ
        elif comm.startswith("containerd-shim"):
            total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / HZ
    return total


def sample(seconds: float) -> tuple[float, float]:
    """(machine cores busy, engine cores busy) on average over ``seconds``. A shim that exits meanwhile takes
    its time with it: run this on a machine where no stack is being brought up or down."""
    b0, e0, t0 = busy(), engine_cpu(), time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return (busy() - b0) / wall, max(0.0, engine_cpu() - e0) / wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--stacks", type=int, default=3, help="demo stacks to bring up beside what runs (default 3: make test's workers)")
    ap.add_argument("--seconds", type=float, default=60, help="length of each sample (default 60)")
    ap.add_argument("--settle", type=float, default=20, help="seconds to wait after the stacks are healthy (default 20)")
    ap.add_argument("--work", type=float, help="the suite's CPU beyond its idle stacks, in core-seconds: prints the floor")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1

    print(f"baseline: {args.seconds:.0f} s with what runs now ...", flush=True)
    base, base_engine = sample(args.seconds)
    stacks = [demo.Stack.isolated(tempfile.mkdtemp(prefix="rbidle-"), prefix=f"rbidle{i}") for i in range(args.stacks)]
    try:
        for s in stacks:
            t0 = time.monotonic()
            s.up(progress=lambda _m: None)
            print(f"  {s.project} up and healthy in {time.monotonic() - t0:.1f} s", flush=True)
        time.sleep(args.settle)
        print(f"with {args.stacks} idle stack(s) more: {args.seconds:.0f} s ...", flush=True)
        loaded, loaded_engine = sample(args.seconds)
    finally:
        for s in stacks:
            s.down(volumes=True)
    per_stack = (loaded - base) / max(args.stacks, 1)
    print(f"machine: {cores} cores")
    print(f"baseline: {base:.2f} cores busy (engine {base_engine:.2f})")
    print(f"with {args.stacks} more idle demo stacks: {loaded:.2f} cores busy (engine {loaded_engine:.2f})")
    print(f"one idle demo stack: {per_stack:.2f} cores ({(loaded_engine - base_engine) / max(args.stacks, 1):.2f} of them the engine's)")
    left = cores - loaded
    print(f"left for work with these stacks up: {left:.2f} cores")
    if args.work:
        floor = args.work / left if left > 0 else float("inf")
        print(f"floor for {args.work:.0f} core-s of work: {floor:.0f} s ({floor / 60:.1f} min), however it is scheduled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
