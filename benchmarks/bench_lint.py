"""Time `runbook lint` and measure its peak memory, on generated compose files and hostile input.

    .venv/bin/python benchmarks/bench_lint.py [--services 20] [--runs 5] [--large 1000] [--compose-share]

Runs the CLI as a user would (a separate process: interpreter start, imports, the source pre-read,
`docker compose config`, every rule, the output), with no engine needed. Cases and budgets:

- the N-service file (default 20): median wall time under 2 s;
- a 1,000-service file, each service publishing a 10-port range: under 5 s and 400 MB, and the output
  grouped (one finding per range, not per port);
- a 415-byte YAML alias bomb: refused (exit 2) in under 10 s and 500 MB.

Every case runs ``--runs`` times (default 5); the verdict is on the median wall time, the table shows the
best and the median of wall and CPU time. Peak RSS is that of the whole process tree (lint and the Compose
binary it runs; the largest of the runs): each run is under a small parent that reads
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it. The CPU columns (user + system time of the process tree)
show what a case costs when the machine is shared: its wall time grows with the load average, printed
before and after. ``--compose-share`` adds a row per generated file for `docker compose config` alone (the
same Compose binary, arguments and environment lint uses), to tell Compose's share from lint's own. Exits 1 when a case
is over its wall-time or memory budget.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BUDGET_S = 2.0

# Runs one command and reports (exit code, seconds, peak RSS of the process tree in MB, stdout bytes,
# longest stdout line) as JSON: a fresh parent per case, so RUSAGE_CHILDREN is that case's alone.
_MEASURE = """
import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
secs = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
lines = p.stdout.splitlines() or [""]
print(json.dumps({"rc": p.returncode, "s": secs, "rss_mb": ru.ru_maxrss / 1024, "cpu": ru.ru_utime + ru.ru_stime, "out_bytes": len(p.stdout),
                  "longest_line": max(map(len, lines)), "last": lines[-1][:160], "err": p.stderr[:300]}))
"""


def compose_text(n: int, secret: Path, port_range: int = 1) -> str:
    """n services with the shapes lint judges: secrets, *_FILE variables, ports, limits, healthchecks."""
    lines = ["name: bench", "x-hardening: &hardening", "  read_only: true", "  cap_drop: [ALL]",
             "  security_opt: [\"no-new-privileges:true\"]", "  mem_limit: 128m", "  pids_limit: 128",
             "  restart: unless-stopped", "services:"]
    for i in range(n):
        base = 20000 + i * port_range
        ports = (f'      - "127.0.0.1:{base}:8080"' if port_range == 1 else
                 f'      - "0.0.0.0:{base}-{base + port_range - 1}:{base}-{base + port_range - 1}/udp"')
        lines += [f"  svc-{i:02d}:", "    <<: *hardening", f"    image: example/svc:1.{i}.0", '    user: "10001:10001"',
                  "    secrets: [app_secret]", "    environment:", f"      SERVICE_NAME: svc-{i:02d}",
                  "      APP_SECRET_FILE: /run/secrets/app_secret", "      LOG_LEVEL: info",
                  f"      DATABASE_URL: postgres://app@db-{i}:5432/app", "    ports:", ports, "    healthcheck:",
                  '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]',
                  "      interval: 10s"]
    lines += ["secrets:", "  app_secret:", f"    file: {secret}"]
    return "\n".join(lines) + "\n"


def bomb_text() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("services: {web: {image: nginx:1.25, command: *i}}")
    return "\n".join(lines) + "\n"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(cmd)], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout)


def repeat(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> dict:
    """``runs`` measurements of one command: best and median wall and CPU, the largest peak RSS, the last run."""
    ms = [measure(cmd, env) for _ in range(runs)]
    return {"best": min(m["s"] for m in ms), "med": statistics.median(m["s"] for m in ms),
            "cpu_best": min(m["cpu"] for m in ms), "cpu_med": statistics.median(m["cpu"] for m in ms),
            "rss": max(m["rss_mb"] for m in ms), "last": ms[-1], "all": ms}


def compose_config(path: Path) -> tuple[list[str], dict[str, str], str]:
    """`docker compose config` as lint runs it (same CLI, every profile, JSON, the environment lint adds)."""
    from runbook_lib.engine.compose import Compose

    try:
        from runbook_lib.lint.run import compose_env
    except ImportError:  # a runbook_lib from before it
        def compose_env(paths, env_files):
            return {}
    compose = Compose([path], profiles=["*"], env=compose_env([path], []))
    label = "  of which Compose config alone" + "".join(f" ({k}={v})" for k, v in compose.env.items())
    return compose.command("config", "--format", "json"), {**os.environ, **compose.env}, label


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5, help="runs per case (best and median; verdict on the median)")
    ap.add_argument("--large", type=int, default=1000, help="services in the large file (default 1000)")
    ap.add_argument("--compose-share", action="store_true", help="also time `docker compose config` alone")
    args = ap.parse_args()
    lint = [sys.executable, "-m", "runbook_lib.cli", "lint"]
    rows, ok = [], True
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        secret = Path(tmp) / "app_secret"
        secret.write_text("bench-secret-value-0123456789")
        os.chmod(secret, 0o400)
        small = Path(tmp) / "compose.yaml"
        small.write_text(compose_text(args.services, secret))
        r = repeat([*lint, str(small)], args.runs)
        if r["last"]["rc"] not in (0, 1):
            print(r["last"]["err"], file=sys.stderr)
            return 2
        for i, m in enumerate(r["all"]):
            print(f"run {i + 1}: {m['s']:.2f} s, {m['rss_mb']:.0f} MB (exit {m['rc']}; {m['last']})")
        rows.append((f"{args.services} services", r, BUDGET_S, None, "", r["med"] <= BUDGET_S))
        if args.compose_share:
            cmd, env, label = compose_config(small)
            rows.append((label, repeat(cmd, args.runs, env), None, None, "", True))

        large = Path(tmp) / "large.yaml"
        large.write_text(compose_text(args.large, secret, port_range=10))
        r = repeat([*lint, str(large)], args.runs)
        m = r["last"]
        grouped = all(x["rc"] in (0, 1) and x["longest_line"] < 400 and x["out_bytes"] < 40 * args.large * 30
                      for x in r["all"])
        note = (f"exit {m['rc']}, {m['out_bytes'] // 1024} KB out, longest line {m['longest_line']}"
                + ("" if grouped else " (NOT grouped)"))
        rows.append((f"{args.large} services, 10-port ranges ({large.stat().st_size // 1024} KB)", r, 5.0, 400.0, note,
                     grouped and r["med"] <= 5.0 and r["rss"] <= 400))
        if args.compose_share:
            cmd, env, label = compose_config(large)
            rows.append((label, repeat(cmd, args.runs, env), None, None, "", True))

        bomb = Path(tmp) / "bomb.yaml"
        bomb.write_text(bomb_text())
        r = repeat([*lint, str(bomb), "--format", "json"], args.runs)
        refused = all(x["rc"] == 2 and "alias bomb" in x["err"] for x in r["all"])
        rows.append((f"alias bomb ({bomb.stat().st_size} bytes)", r, 10.0, 500.0,
                     f"exit {r['last']['rc']}" + (": refused" if refused else " (NOT refused)"),
                     refused and r["med"] <= 10.0 and r["rss"] <= 500))
    print()
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) {' '.join(f'{x:.1f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.1f}' for x in load_after)} after, on {os.cpu_count()} CPUs (wall time grows with it; "
          "CPU time much less)")
    print(f"{args.runs} runs per case; wall and CPU (user + system of the process tree): best / median; peak RSS: "
          "the largest")
    print(f"{'case':48}  {'wall best/med':>15}  {'CPU best/med':>15}  {'budget':>6}  {'peak RSS':>9}  {'budget':>7}  "
          "verdict  notes")
    for name, r, t_budget, m_budget, note, good in rows:
        ok = ok and good
        mb = f"{m_budget:.0f} MB" if m_budget else "-"
        tb = f"{t_budget:5.1f}s" if t_budget else "     -"
        verdict = ("OK" if good else "OVER") if t_budget else ""
        print(f"{name:48}  {r['best']:6.2f}/{r['med']:6.2f}s  {r['cpu_best']:6.2f}/{r['cpu_med']:6.2f}s  {tb}  "
              f"{r['rss']:6.0f} MB  {mb:>7}  {verdict:7}  {note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
