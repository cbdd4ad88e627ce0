"""`runbook lint` beside compose-lint on the project's real-world corpus and the demo.

    .venv/bin/python benchmarks/bench_lint_anchors.py [--runs 3] [--install]

compose-lint is a benchmark extra (``pip install -e '.[bench]'``), never a runtime dependency: without it
this script says how to install it and exits 2; ``--install`` installs the extra's requirements into the
running interpreter's environment with pip. semgrep is not run: its compose rules come from its online
rule registry, which this machine cannot reach (the anchors column of docs/lint.md's rule table names its rules).

Per project (a TURN relay with coturn's documented 16k-port UDP range, tests/fixtures/compose/realworld/*, the
Debian fixtures, demo/compose.yaml) it prints:
findings per tool (runbook: FAIL + WARN + ERROR, and images.pinned INFO; compose-lint: unsuppressed findings), the rules that fire
in one tool and not the other (per service, through :data:`CL_TO_RUNBOOK`), and the median (and best) wall time,
median (and best) CPU time (user + system of the whole process tree: lint and the Compose binary it runs, which the
wall time of a loaded machine hides) and peak RSS of each tool, run as a user runs it (a CLI process).
Target: runbook lint's wall time at most 1.5x compose-lint's on each file.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "compose"
TARGET_RATIO = 1.5

# One command under a fresh parent: (exit code, wall seconds, CPU seconds and peak RSS of the process tree,
# stdout) as JSON, so RUSAGE_CHILDREN is that command's alone.
_MEASURE = """
import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
secs = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "s": secs, "rss_mb": ru.ru_maxrss / 1024, "cpu": ru.ru_utime + ru.ru_stime,
                  "stdout": p.stdout, "err": p.stderr[-300:]}))
"""


def measure(cmd: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(cmd)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)

# compose-lint rule -> the runbook rules that judge the same thing (any of them firing on the service counts)
CL_TO_RUNBOOK: dict[str, tuple[str, ...]] = {
    "CL-0001": ("hardening.docker_socket",), "CL-0002": ("hardening.privileged",),
    "CL-0003": ("hardening.no_new_privileges",), "CL-0004": ("images.pinned",),
    "CL-0005": ("hardening.published_ports",), "CL-0006": ("hardening.cap_drop",),
    "CL-0007": ("hardening.read_only_rootfs",), "CL-0008": ("hardening.host_network",),
    "CL-0009": ("hardening.seccomp", "hardening.apparmor", "hardening.selinux"),
    "CL-0010": ("hardening.host_pid", "hardening.host_ipc"), "CL-0011": ("hardening.capabilities",),
    "CL-0013": ("hardening.sensitive_mounts", "hardening.docker_socket"), "CL-0014": (), "CL-0016": (),
    "CL-0017": ("hardening.mount_propagation",), "CL-0018": ("hardening.non_root",),
    "CL-0019": ("images.pinned",), "CL-0020": ("secrets.no_plaintext_env",),
    "CL-0021": ("secrets.no_plaintext_env", "secrets.no_plaintext_args"), "CL-0022": (),
    "CL-0024": ("hardening.capabilities",), "CL-0025": ("hardening.sensitive_mounts",),
    "CL-0026": ("hardening.memory_limit", "hardening.cpu_limit"), "CL-0027": ("hardening.capabilities",),
    "CL-0028": ("hardening.capabilities",), "CL-0029": ("hardening.capabilities",),
    "CL-0030": ("hardening.capabilities",),
}


def bench_requirements() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["optional-dependencies"]["bench"]


def compose_lint_bin() -> Path | None:
    exe = Path(sys.executable).parent / "compose-lint"
    return exe if exe.exists() else None


def corpus_files(d: Path) -> list[Path]:
    """A corpus project's compose files, as tests/lint/test_lint_corpus.py picks them: those `compose-files.txt`
    names, else the first of the usual names."""
    listed = d / "compose-files.txt"
    if listed.exists():
        return [d / ln.strip() for ln in listed.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [next(d / n for n in ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")
                 if (d / n).exists())]


# The TURN relay of coturn's documented `docker run` (-p 3478 -p 3478/udp -p 5349 -p 5349/udp
# -p 49152-65535:49152-65535/udp) as a compose service: Compose expands its range into 16,384 entries (the
# worst case), which lint groups before Compose sees it (runbook_lib/lint/ranges.py).
TURN_RELAY = """\
services:
  coturn:
    image: coturn/coturn:4.6
    restart: unless-stopped
    ports: ["3478:3478", "3478:3478/udp", "5349:5349", "5349:5349/udp", "49152-65535:49152-65535/udp"]
"""


def turn_relay() -> str:
    import atexit
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="bench-turn-relay-"))
    atexit.register(shutil.rmtree, d, True)
    (d / "compose.yaml").write_text(TURN_RELAY)
    return str(d / "compose.yaml")


def projects() -> list[tuple[str, list[str], list[str]]]:
    """(name, compose files, extra runbook lint arguments)."""
    out = [("turn-relay (coturn docs)", [turn_relay()], [])]
    for d in sorted(p for p in (FIXTURES / "realworld").iterdir() if p.is_dir()):
        out.append((d.name, [str(f) for f in corpus_files(d)], []))
    out += [(f.stem, [str(f)], []) for f in sorted(FIXTURES.glob("*.yaml"))]
    out.append(("demo", [str(ROOT / "demo" / "compose.yaml")], ["--env-file", str(ROOT / "demo" / "offline.env")]))
    return out


def runbook_findings(stdout: str) -> set[tuple[str, str]]:
    """FAIL, WARN and ERROR records, and the INFO of a tag without a digest (compose-lint's CL-0019 counterpart)."""
    data = json.loads(stdout)
    return {(r["id"], r["target"]) for r in data["records"] if r["status"] in ("FAIL", "WARN", "ERROR")
            or (r["id"] == "images.pinned" and r["status"] == "INFO")}


def compose_lint_findings(stdout: str) -> set[tuple[str, str]]:
    data = json.loads(stdout)
    return {(f["rule_id"], f.get("service") or "-") for f in data["findings"] if not f.get("suppressed")}


def run_tool(cmd: list[str], runs: int, parse, samples: list[dict] | None = None) -> dict:
    samples = samples if samples is not None else [measure(cmd) for _ in range(runs)]
    first = samples[0]
    try:
        found = parse(first["stdout"])
    except (ValueError, KeyError) as exc:
        raise SystemExit(f"{cmd[0]}: unreadable output (exit {first['rc']}): {exc}; {first['err']}")
    return {"findings": found, "wall": statistics.median(s["s"] for s in samples),
            "cpu": statistics.median(s["cpu"] for s in samples), "rss": max(s["rss_mb"] for s in samples),
            "wall_best": min(s["s"] for s in samples), "cpu_best": min(s["cpu"] for s in samples)}


def run_pair(rb_cmd: list[str], cl_cmd: list[str], runs: int) -> tuple[dict, dict]:
    """Both tools, run alternately (rb, cl, rb, cl...): a change of the machine's load hits both alike."""
    rb_samples, cl_samples = [], []
    for _ in range(runs):
        rb_samples.append(measure(rb_cmd))
        cl_samples.append(measure(cl_cmd))
    return (run_tool(rb_cmd, runs, runbook_findings, rb_samples),
            run_tool(cl_cmd, runs, compose_lint_findings, cl_samples))


def differences(rb: set[tuple[str, str]], cl: set[tuple[str, str]]) -> tuple[Counter, Counter]:
    """(compose-lint rules with no runbook counterpart on that service, runbook rules compose-lint lacks)."""
    only_cl: Counter = Counter()
    covered: set[tuple[str, str]] = set()
    for cl_id, svc in cl:
        mapped = CL_TO_RUNBOOK.get(cl_id, ())
        hits = {(m, svc) for m in mapped if (m, svc) in rb}
        covered |= hits
        if not hits:
            only_cl[cl_id] += 1
    only_rb = Counter(rid for rid, target in rb if (rid, target) not in covered
                      and not any(rid in CL_TO_RUNBOOK.get(c, ()) and s == target for c, s in cl))
    return only_cl, only_rb


def fmt(counter: Counter) -> str:
    return ", ".join(f"{k}" + (f" x{n}" if n > 1 else "") for k, n in sorted(counter.items())) or "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per tool and file, the two tools alternately (median "
                    "and best wall and CPU time)")
    ap.add_argument("--install", action="store_true", help="pip install the bench extra's requirements first")
    args = ap.parse_args()
    if args.install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *bench_requirements()], check=True)
    cl_bin = compose_lint_bin()
    if cl_bin is None:
        print(f"compose-lint is not installed: {sys.executable} -m pip install -e '.[bench]' "
              "(or rerun with --install)", file=sys.stderr)
        return 2
    # pip compiles an installed package's bytecode (compose-lint's is); an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would compile runbook_lib's ~60 modules on every run (~50 ms of CPU): compiled once
    import compileall

    compileall.compile_dir(str(ROOT / "runbook_lib"), quiet=1)
    rows = []
    load_before = os.getloadavg()
    for name, files, extra in projects():
        rb, cl = run_pair([sys.executable, "-m", "runbook_lib.cli", "lint", *files, *extra, "--format", "json"],
                          [str(cl_bin), "check", "--format", "json", "--allow-partial-coverage", "--no-pager", *files],
                          args.runs)
        only_cl, only_rb = differences(rb["findings"], cl["findings"])
        rows.append((name, rb, cl, only_cl, only_rb))
        print(f"{name}: runbook {len(rb['findings'])} findings {rb['wall']:.2f}s, compose-lint "
              f"{len(cl['findings'])} findings {cl['wall']:.2f}s", file=sys.stderr)
    print_table(rows, load_before)
    return 0 if all(r[1]["wall"] <= TARGET_RATIO * r[2]["wall"] for r in rows) else 1


def print_table(rows: list, load_before: tuple[float, float, float] | None = None) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    before = f"{' '.join(f'{x:.1f}' for x in load_before)} before, " if load_before else ""
    print(f"\nload average (1, 5, 15 min) {before}{load} after, on {os.cpu_count()} CPUs; times are medians (best "
          f"in the last columns), CPU = user + system of the process tree; target: runbook wall <= {TARGET_RATIO}x "
          "compose-lint's")
    print(f"{'project':28} {'findings rb/cl':>14} {'wall rb/cl (s)':>15} {'ratio':>6} {'CPU rb/cl (s)':>14} "
          f"{'RSS rb/cl (MB)':>15} {'best wall rb/cl':>16} {'ratio':>6} {'best CPU rb/cl':>15}")
    for name, rb, cl, _, _ in rows:
        ratio = rb["wall"] / cl["wall"] if cl["wall"] else float("inf")
        best = rb["wall_best"] / cl["wall_best"] if cl["wall_best"] else float("inf")
        print(f"{name:28} {len(rb['findings']):>6}/{len(cl['findings']):<7} {rb['wall']:>7.2f}/{cl['wall']:<7.2f}"
              f"{ratio:>5.1f}x {rb['cpu']:>6.2f}/{cl['cpu']:<7.2f} {rb['rss']:>6.0f}/{cl['rss']:<8.0f}"
              f" {rb['wall_best']:>7.2f}/{cl['wall_best']:<7.2f}{best:>6.1f}x {rb['cpu_best']:>6.2f}/{cl['cpu_best']:<7.2f}")
    print("\nrules that fire in one tool and not the other (per service; xN = on N services)")
    for name, _, _, only_cl, only_rb in rows:
        print(f"{name}:\n  only compose-lint: {fmt(only_cl)}\n  only runbook:      {fmt(only_rb)}")


if __name__ == "__main__":
    sys.exit(main())
