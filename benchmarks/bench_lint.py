"""Time `runbook lint` on a generated 20-service compose file (the issue's budget: under 2 s here).

    .venv/bin/python benchmarks/bench_lint.py [--services 20] [--runs 5]

Runs the CLI as a user would (a separate process: interpreter start, imports, `docker compose config`,
every rule, the table), with no engine needed. Prints one line per run and the median; exits 1 when the
median exceeds the budget.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 2.0


def compose_text(n: int, secret: Path) -> str:
    """n services with the shapes lint judges: secrets, *_FILE variables, ports, limits, healthchecks."""
    lines = ["name: bench", "x-hardening: &hardening", "  read_only: true", "  cap_drop: [ALL]",
             "  security_opt: [\"no-new-privileges:true\"]", "  mem_limit: 128m", "  pids_limit: 128",
             "  restart: unless-stopped", "services:"]
    for i in range(n):
        lines += [f"  svc-{i:02d}:", "    <<: *hardening", f"    image: example/svc:1.{i}.0", '    user: "10001:10001"',
                  "    secrets: [app_secret]", "    environment:", f"      SERVICE_NAME: svc-{i:02d}",
                  "      APP_SECRET_FILE: /run/secrets/app_secret", "      LOG_LEVEL: info",
                  f"      DATABASE_URL: postgres://app@db-{i}:5432/app", "    ports:",
                  f'      - "127.0.0.1:{20000 + i}:8080"', "    healthcheck:",
                  '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]',
                  "      interval: 10s"]
    lines += ["secrets:", "  app_secret:", f"    file: {secret}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        secret = Path(tmp) / "app_secret"
        secret.write_text("bench-secret-value-0123456789")
        os.chmod(secret, 0o400)
        compose = Path(tmp) / "compose.yaml"
        compose.write_text(compose_text(args.services, secret))
        cmd = [sys.executable, "-m", "runbook_lib.cli", "lint", str(compose)]
        times = []
        for i in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode not in (0, 1):
                print(proc.stderr, file=sys.stderr)
                return 2
            print(f"run {i + 1}: {times[-1]:.2f} s (exit {proc.returncode}; {proc.stdout.strip().splitlines()[-1]})")
    median = statistics.median(times)
    print(f"runbook lint, {args.services} services: median {median:.2f} s over {args.runs} runs "
          f"(min {min(times):.2f}, max {max(times):.2f}); budget {BUDGET_S:.1f} s: {'OK' if median < BUDGET_S else 'OVER'}")
    return 0 if median < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
