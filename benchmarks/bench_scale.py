"""Cost as deployments grow: the read-only phases on N hardened services, and the full demo runbook
against its floor.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10 40 80 160] [--no-demo] [--pool N] [--no-procfs]

For each N it generates N services, each with a healthcheck, a file secret and limits (the offline
``runbook-demo/app:local`` image running busybox ``sleep``, so the containers themselves cost nothing),
deploys them with the project's Compose under a project name of its own (``rbbench-<N>-<random>``),
runs ``runbook run --phase 00_preflight --phase 02_secrets_security --phase 03_production_mode`` as a
user would (a separate process), and times validation, each phase, the rendering and the whole command
from the progress lines the command prints. Then the full demo runbook on a demo stack of its own
(free ports), against its floor: a fresh ``compose up --wait`` of the demo, measured here, plus the
drills' configured fault windows and the observation window. Before each timed command it waits until
the machine is quiet (CPU under 35 % for 3 s, at most 90 s: `compose up --wait` returns while the engine
still starts containers and runs their first healthchecks), and says how long. Everything it deploys is removed in a
``finally``, whatever happens. 160 runs only when the machine has 8 GiB of memory available.

Targets on the 2-core development machine: the whole read-only command on 80 containers <= 12 s; the
marginal cost (slope of a least-squares line through the whole-command times) <= 0.05 s per container;
the full demo runbook <= 1.3 x its floor. Exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "demo")]  # runbook_lib and runbook_demo (demo/) of this checkout

import runbook_demo as demo  # noqa: E402
from runbook_lib.engine.compose import Compose  # noqa: E402

READ_ONLY = ["00_preflight", "02_secrets_security", "03_production_mode"]
BEFORE = {10: (2.6, 2.2, 5.5, 14.2, "0.9 MB"), 40: (3.8, 4.0, 13.0, 29.1, "—"), 80: (7.6, 8.8, 22.3, 59.6, "4.6 MB")}
TARGET_80_S, TARGET_MARGINAL_S, TARGET_DEMO_RATIO = 12.0, 0.05, 1.3


def compose_text(n: int, secret: Path) -> str:
    """N hardened services: healthcheck, file secret (referenced by a *_FILE variable), limits."""
    services = {}
    for i in range(n):
        services[f"svc-{i:03d}"] = {
            "image": demo.APP_IMAGE, "entrypoint": ["/bin/sleep"], "command": ["2147483647"],
            "user": "10001:10001", "read_only": True, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"],
            "restart": "unless-stopped", "mem_limit": "32m", "cpus": 0.1, "pids_limit": 16,
            "environment": {"ENV": "production", "SERVICE_NAME": f"svc-{i:03d}", "APP_SECRET_FILE": "/run/secrets/app_secret"},
            "secrets": ["app_secret"],
            "healthcheck": {"test": ["CMD", "test", "-s", "/run/secrets/app_secret"], "interval": "10s",
                            "timeout": "3s", "retries": 3, "start_period": "1s"}}
    return yaml.safe_dump({"services": services, "secrets": {"app_secret": {"file": str(secret)}}}, sort_keys=False)


def make_project(n: int, work: Path) -> tuple[Compose, Path]:
    secret = work / "app_secret"
    secret.write_text(uuid.uuid4().hex)
    if os.geteuid() == 0:
        os.chown(secret, demo.CONTAINER_UID, demo.CONTAINER_GID)
        os.chmod(secret, 0o400)
    else:
        os.chmod(secret, 0o444)
    compose_file = work / "compose.yaml"
    compose_file.write_text(compose_text(n, secret))
    project = f"rbbench-{n}-{uuid.uuid4().hex[:6]}"
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump({
        "project": project, "compose_files": [str(compose_file)],
        "app_services": [f"svc-{i:03d}" for i in range(n)], "production": {"observe_s": 0}}, sort_keys=False))
    return Compose([compose_file], project=project), params


def run_timed(argv: list[str]) -> dict:
    """Run the CLI; time-stamp each progress line it prints, to split the whole into its parts."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks: list[tuple[float, str]] = []
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    for line in proc.stderr:
        marks.append((time.monotonic() - t0, line.rstrip()))
    proc.wait()
    reader.join()
    whole = time.monotonic() - t0
    at = lambda prefix: next((t for t, line in marks if line.startswith(prefix)), None)  # noqa: E731
    rendering = at("runbook: rendering report.html")
    report = next((line.split(": ", 1)[1].strip() for line in out if line.startswith("report: ")), None)
    return {"rc": proc.returncode, "whole": whole, "validated": at("runbook: run directory"),
            "render": None if rendering is None else whole - rendering, "report": report,
            "stdout": "".join(out), "stderr": "\n".join(line for _, line in marks)}


def phase_times(report: str | None) -> dict[str, float]:
    if not report:
        return {}
    summary = json.loads((Path(report).parent / "summary.json").read_text())
    return {p["phase"]: p["duration_s"] for p in summary["phases"]}


def cpu_busy(seconds: float = 1.0) -> float:
    """The machine's CPU use over ``seconds`` (0..1, all CPUs), from /proc/stat."""
    def read() -> tuple[int, int]:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(f), f[3] + f[4]  # total, idle + iowait
    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


def settle(limit_s: float = 90, quiet: float = 0.35, need: int = 3) -> float:
    """Wait until the machine is quiet after a deployment (CPU under ``quiet`` for ``need`` seconds in a row,
    at most ``limit_s``): `compose up --wait` returns while the engine still finishes starting N containers
    and their first healthchecks, which would be timed as the runbook's cost. Returns the seconds waited."""
    t0, calm = time.monotonic(), 0
    while time.monotonic() - t0 < limit_s and calm < need:
        calm = calm + 1 if cpu_busy() < quiet else 0
    return time.monotonic() - t0


def down(what: str, fn) -> None:
    """Remove what a benchmark deployed; the engine (20.10) sometimes refuses to remove a network whose last
    containers were just removed ("has active endpoints"): tried again, then reported, never raised over the
    benchmark's own result."""
    for attempt in range(3):
        try:
            fn()
            return
        except Exception as exc:  # noqa: BLE001
            err = exc
            time.sleep(2)
    print(f"warning: could not remove {what}: {str(err)[-300:]} (an engine restart clears a network left with "
          "stale endpoints; `docker network ls`)", file=sys.stderr, flush=True)


def bench_size(n: int, work: Path, engine: dict) -> dict:
    compose, params = make_project(n, work)
    if engine:
        data = yaml.safe_load(params.read_text())
        data["engine"] = engine
        params.write_text(yaml.safe_dump(data))
    try:
        t0 = time.monotonic()
        compose.up(wait=True, timeout=300)
        up_s = time.monotonic() - t0
        settled_s = settle()
        argv = [sys.executable, "-m", "runbook_lib.cli", "run", "--params", str(params), "--output", str(work / "out")]
        for phase in READ_ONLY:
            argv += ["--phase", phase]
        r = run_timed(argv)
        if r["rc"] not in (0, 1) or not r["report"]:
            raise SystemExit(f"runbook failed on N={n} (exit {r['rc']}):\n{r['stdout']}\n{r['stderr'][-3000:]}")
        size = sum(f.stat().st_size for f in Path(r["report"]).parent.rglob("*") if f.is_file())
        return {"n": n, "up": up_s, "settled": settled_s, **r, "phases": phase_times(r["report"]), "report_mb": Path(r["report"]).stat().st_size / 1e6,
                "run_dir_mb": size / 1e6, "verdict": r["stdout"].split(":", 1)[0]}
    finally:
        down(f"the N={n} project", lambda: compose.down(volumes=True))


def bench_demo(work: Path) -> dict:
    stack = demo.Stack.isolated(work, prefix="rbbench-demo")
    params = stack.write_params(work / "demo.yaml")
    try:
        stack.up(progress=lambda s: None)  # images and the first start, not timed
        stack.down()
        t0 = time.monotonic()
        stack.up(progress=lambda s: None)
        up_s = time.monotonic() - t0
        settle()
        r = run_timed([sys.executable, "-m", "runbook_lib.cli", "run", "--params", str(params), "--output", str(work / "out")])
        p = yaml.safe_load(params.read_text())
        windows = sum(d.get("duration_s", 0) for d in p["smoke"]["drills"]) + p["production"].get("observe_s", 0)
        return {**r, "up": up_s, "windows": windows, "floor": up_s + windows, "phases": phase_times(r["report"])}
    finally:
        down("the demo stack", lambda: stack.down(volumes=True))


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line t = floor + marginal * n."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    marginal = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - marginal * mx, marginal


def print_table(rows: list[dict], floor: float, marginal: float) -> None:
    print("| N | phases 00+02+03 (now) | whole (now) | render | report.html | before: phases / whole / report | "
          "above floor per container |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ph = r["phases"]
        parts = " + ".join(f"{ph.get(p, 0):.1f}" for p in READ_ONLY)
        b = BEFORE.get(r["n"])
        before = f"{b[0]} + {b[1]} + {b[2]} = {sum(b[:3]):.1f} s / {b[3]} s / {b[4]}" if b else "—"
        print(f"| {r['n']} | {parts} = {sum(ph.get(p, 0) for p in READ_ONLY):.1f} s | {r['whole']:.1f} s | "
              f"{r['render']:.1f} s | {r['report_mb']:.1f} MB | {before} | {(r['whole'] - floor) / r['n']:.3f} s |")
    print(f"\nfixed floor (intercept) {floor:.1f} s, marginal cost (slope) {marginal:.3f} s per container")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 40, 80, 160])
    ap.add_argument("--no-demo", action="store_true", help="skip the full demo runbook")
    ap.add_argument("--pool", type=int, default=None, help="engine.pool_size (default: the parameter's default)")
    ap.add_argument("--no-procfs", action="store_true",
                    help="engine.procfs_reads: false (container files through the archive API only, as before the /proc reads)")
    args = ap.parse_args()
    engine = {**({"pool_size": args.pool} if args.pool else {}), **({"procfs_reads": False} if args.no_procfs else {})}
    avail_gb = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    sizes = [n for n in args.sizes if n < 160 or avail_gb >= 8]
    print(f"machine: {os.cpu_count()} CPUs, {avail_gb:.1f} GiB available, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; sizes {sizes}; pool {args.pool or 'default'}; "
          f"procfs reads {'off' if args.no_procfs else 'on'}", flush=True)
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="rbbench-") as tmp:
        for n in sizes:
            work = Path(tmp) / f"n{n}"
            work.mkdir()
            r = bench_size(n, work, engine)
            print(f"N={n}: up {r['up']:.1f}s, settled {r['settled']:.0f}s, validation {r['validated']:.1f}s, phases {r['phases']}, render "
                  f"{r['render']:.1f}s, whole {r['whole']:.1f}s, report.html {r['report_mb']:.2f} MB, run dir "
                  f"{r['run_dir_mb']:.1f} MB, {r['verdict']}", flush=True)
            rows.append(r)
        floor, marginal = fit([(r["n"], r["whole"]) for r in rows])
        print()
        print_table(rows, floor, marginal)
        at80 = next((r["whole"] for r in rows if r["n"] == 80), None)
        checks = [("whole read-only command on 80 containers", at80, TARGET_80_S, "s"),
                  ("marginal cost per container", marginal, TARGET_MARGINAL_S, "s")]
        if not args.no_demo:
            work = Path(tmp) / "demo"
            work.mkdir()
            d = bench_demo(work)
            print(f"\nfull demo runbook: {d['whole']:.1f}s ({d['stdout'].split(':', 1)[0]}), phases {d['phases']}, "
                  f"render {d['render']:.1f}s; floor {d['floor']:.1f}s = compose up --wait {d['up']:.1f}s + "
                  f"drill and observation windows {d['windows']:g}s")
            checks.append(("full demo runbook / its floor", d["whole"] / d["floor"], TARGET_DEMO_RATIO, "x"))
        print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (other work on this "
              "machine inflates every number above)")
        for what, value, target, unit in checks:
            if value is None:
                print(f"target {what}: not measured")
                continue
            met = value <= target
            ok &= met
            print(f"target {what}: {value:.3f} {unit} (<= {target} {unit}) {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
