"""Fleets: one run over several engines (``targets:`` in the parameters), one aggregate verdict.

Each target runs as a complete ordinary run (``runbook run``) in a subprocess of its own, with that target's
DOCKER_HOST and a parameters file derived from the fleet's (without ``targets``, loopback URLs pointed at the
target's ``address``); its run directory is ``targets/NAME/`` inside the fleet's. Why a subprocess per target
rather than threads in one process (a choice that is hard to undo, so written down): DOCKER_HOST is process
state that the docker SDK, the Compose CLI and every phase kernel read from the environment; one process per
target isolates it without threading an engine handle through every check, and reuses everything an ordinary
run already guarantees (fresh kernels, the secret broker, SIGINT restoring what a drill broke, the archive).

Order: with no destructive phase asked, every target runs at once. With one (redeploy, drills), the targets
are rolled one at a time in the order listed; after the first target that is NO-GO (or could not run), the
others still run their read-only phases but their destructive phases are recorded SKIP ("rollout stopped:
target X is NO-GO"), unless ``fleet.parallel_destructive: true``.

Before any target runs, each engine is reached once by a short subprocess (:func:`_learn_main`, bounded by
``engine.call_timeout_s``): a target whose engine does not answer is an ERROR (``fleet.target_reachable``) and
is not run; the others are. The same subprocess reads the target's secrets (the compose model's secret files
and the files of its containers' secrets mounts, through that target's engine) and hands the values back on
a pipe. Every target's run learns the union of all targets' values before it writes anything (through an
inherited pipe, :data:`SECRETS_FD_ENV`; never a file, an argument or an environment value), so a value of
target A that shows up in target B's output is redacted there too. After the runs, every text file of the
fleet directory is scrubbed again with the union (a backstop; what it changed is listed in run.json).

The fleet directory then gets its own records (results/fleet.json: reachability and each target's verdict),
verdict.json (NO-GO when any target is, listing which; every target's blockers with the target qualified:
``staging/auth-service``), summary.json/.md, junit.xml, report.html (the verification table with a column
per target) and ONE manifest.json (signed with the run's key) covering every file of every target, so
``runbook verify`` and ``runbook report`` work on the fleet directory as on any run.
"""
from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from runbook_lib import __version__
from runbook_lib.run.signals import SignalScope
from runbook_lib.errors import InputError
from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.results import report, signing
from runbook_lib.results import verdict as verdicts
from runbook_lib.results.records import Check, CheckRecord, read_records, utcnow, write_records
from runbook_lib.results.verdict import describe_group
from runbook_lib.results.redact import Redactor
from runbook_lib.results.registry import CheckSpec, declare
from runbook_lib.params import PHASES, Params, dump_resolved

TARGETS_DIR = "targets"
#: In a target run's environment: the number of an inherited pipe holding the fleet's secret values (JSON).
SECRETS_FD_ENV = "RUNBOOK_FLEET_SECRETS_FD"
FLEET_RESULTS = "fleet"  # results/fleet.json: the fleet runner's own records (phase "runner")
_ENGINE_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")

declare(CheckSpec("fleet.target_reachable", "The target's engine answers", "runner", "critical", "Run integrity",
                  remediation="Start the engine or fix the target's docker_host/context (ssh: the key, the user's "
                              "access to the engine); `DOCKER_HOST=... docker version` must answer.",
                  function="runbook_lib.run.fleet:run"))
declare(CheckSpec("fleet.target_verdict", "The target's own run is GO", "runner", "critical", "Run integrity",
                  remediation="Open the target's report (targets/NAME/report.html) and fix its blockers.",
                  function="runbook_lib.run.fleet:run"))

_LOOPBACK_URL = re.compile(r"(?i)\b(https?://)(?:127\.0\.0\.1|localhost|\[::1\])(?=[:/]|$)")


def is_fleet(run_dir: Path) -> bool:
    """Whether a run directory is a fleet's (run.json says so)."""
    try:
        return bool(json.loads((run_dir / verdicts.RUN_FILE).read_text(encoding="utf-8")).get("fleet"))
    except (OSError, ValueError):
        return False


# -- per-target parameters ---------------------------------------------------------------------------------

def resolve_endpoint(params: Params, index: int) -> str:
    """The DOCKER_HOST of ``params.targets[index]``: its docker_host, or its context's endpoint
    (``docker context inspect``). Raises InputError naming the key when the context does not exist."""
    t = params.targets[index]
    if t.docker_host:
        return t.docker_host
    env = {k: v for k, v in os.environ.items() if k not in _ENGINE_ENV}
    try:
        proc = subprocess.run(["docker", "context", "inspect", t.context, "--format", "{{json .Endpoints.docker.Host}}"],
                              capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"{params.source}: targets[{index}].context: cannot run `docker context inspect`: {exc}. "
                         "Nothing was touched.") from None
    host = ""
    if proc.returncode == 0:
        try:
            host = json.loads(proc.stdout.strip() or '""')
        except ValueError:
            host = ""
    if not host:
        raise InputError(f"{params.source}: targets[{index}].context: docker context {t.context!r} "
                         f"{'has no docker endpoint' if proc.returncode == 0 else 'does not exist'}"
                         f" ({proc.stderr.strip()[:200] or 'no endpoint'}); `docker context ls` lists them. "
                         "Nothing was touched.")
    return host


def _rewrite_urls(obj: Any, address: str) -> Any:
    if isinstance(obj, str):
        return _LOOPBACK_URL.sub(lambda m: m.group(1) + (f"[{address}]" if ":" in address and not address.startswith("[")
                                                          else address), obj)
    if isinstance(obj, dict):
        return {k: _rewrite_urls(v, address) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rewrite_urls(v, address) for v in obj]
    return obj


def target_params(params: Params, index: int) -> dict[str, Any]:
    """The parameters of one target's run: the fleet's (resolved, absolute paths) without ``targets`` and
    ``fleet``, with every loopback URL pointed at the target's ``address`` when it has one."""
    data = params.model_dump(mode="json", exclude={"source", "targets", "fleet"})
    address = params.targets[index].address
    return _rewrite_urls(data, address) if address else data


# -- one target --------------------------------------------------------------------------------------------

@dataclass
class TargetRun:
    name: str
    endpoint: str
    index: int
    reachable: bool | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    values: list[tuple[str, str]] = field(default_factory=list, repr=False)
    exit_code: int | None = None
    skipped: str = ""          # why the run was not started
    rollout_stopped: str = ""  # why its destructive phases were skipped
    duration_s: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = field(default=None, repr=False)


def _target_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENGINE_ENV and k != SECRETS_FD_ENV}
    env["DOCKER_HOST"] = endpoint
    return env


def _learn(t: TargetRun, params_file: Path, deadline_s: float) -> None:
    """Reach the target's engine once and read its secrets (a subprocess with the target's DOCKER_HOST,
    bounded by ``deadline_s``); fills ``t.reachable``, ``t.engine``/``t.error`` and ``t.values``."""
    argv = [sys.executable, "-m", "runbook_lib.run.fleet", "learn", str(params_file)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=deadline_s, env=_target_env(t.endpoint))
    except subprocess.TimeoutExpired:
        t.reachable, t.error = False, f"no answer from {t.endpoint} within {deadline_s:.0f} s"
        return
    try:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        t.reachable = False
        t.error = f"could not reach {t.endpoint}: the probe exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
        return
    t.reachable, t.engine, t.error = doc["ok"], doc.get("engine", {}), doc.get("error", "")
    t.values = [tuple(v) for v in doc.get("values", [])]


def _learn_main(params_file: str) -> int:
    """``python -m runbook_lib.run.fleet learn PARAMS`` (DOCKER_HOST: the target's): one JSON line on
    stdout, a pipe to the fleet runner: whether the engine answers, its version, and the secret values the
    target's run would learn (host secret files, its containers' secrets mounts). Never run by hand."""
    from runbook_lib.errors import RunbookError
    from runbook_lib.run.context import Context
    from runbook_lib.params import load_params

    params = load_params(params_file)
    ctx = Context(params=params, progress=lambda s: None)
    try:
        engine = ctx.engine
        v = engine.client.version()
        info = {"docker_host": os.environ.get("DOCKER_HOST", ""), "version": v.get("Version", ""),
                "api_version": v.get("ApiVersion", ""), "os": v.get("Os", ""), "arch": v.get("Arch", "")}
    except RunbookError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 0
    try:
        ctx.learn_secrets()
    except RunbookError:
        pass  # a compose model that does not resolve: the target's own run says so
    print(json.dumps({"ok": True, "engine": info, "values": list(ctx.secret_values.items())}))
    return 0


def learn_inherited(ctx: Any) -> int:
    """In a target's run: learn the fleet's secret values from the inherited pipe named by
    :data:`SECRETS_FD_ENV` (then closed and the variable removed, so no kernel inherits either). Returns
    how many values were learned; 0 outside a fleet."""
    fd = os.environ.pop(SECRETS_FD_ENV, "")
    if not fd.isdigit():
        return 0
    try:
        with os.fdopen(int(fd), "r", encoding="utf-8", errors="surrogateescape") as fh:
            values = json.loads(fh.read() or "[]")
    except (OSError, ValueError):
        return 0
    for value, source in values:
        ctx.learn_value(value, source)
    return len(values)


class _Signals(SignalScope):
    """SIGINT/SIGTERM while the fleet runs: forwarded as SIGINT to every target's run (each restores what
    it broke and writes its run directory); targets not started yet are not started. The fleet directory is
    still written. A second signal is forwarded as SIGTERM (each target's run then stops at once)."""

    def __init__(self, runs: list[TargetRun], progress: Callable[[str], None]) -> None:
        super().__init__()
        self.runs, self.progress = runs, progress

    def _on_signal(self, signum: int, _frame: Any) -> None:
        again = bool(self.signal)
        self.signal = self.signal or signal.Signals(signum).name
        self.progress(f"runbook: {signal.Signals(signum).name}: interrupting every target's run (each restores what it "
                      "broke); the fleet directory is still written." + ("" if again else " Send it again to stop at once."))
        for t in self.runs:
            if t.proc is not None and t.proc.poll() is None:
                try:
                    t.proc.send_signal(signal.SIGTERM if again else signal.SIGINT)
                except ProcessLookupError:
                    pass


def _run_target(t: TargetRun, params_file: Path, run_dir: Path, phases: list[str], union: list[tuple[str, str]],
                redactor: Redactor, *, kernel: str, show_code: bool, timeout_s: float,
                progress: Callable[[str], None], interrupted: Callable[[], str] = lambda: "") -> None:
    """One target's `runbook run` (its DOCKER_HOST; its run directory ``run_dir``), its stderr relayed
    line by line prefixed with the target's name (scrubbed with the fleet's union)."""
    argv = [sys.executable, "-m", "runbook_lib.cli", "run", "--params", str(params_file), "--run-dir", str(run_dir),
            "--kernel", kernel, "--format", "json", *[a for p in phases for a in ("--phase", p)]]
    if show_code:
        argv.append("--show-code")
    if t.rollout_stopped:
        argv += ["--skip-destructive", t.rollout_stopped]
    r, w = os.pipe()
    env = {**_target_env(t.endpoint), SECRETS_FD_ENV: str(r)}
    t0 = time.monotonic()
    try:
        t.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                  pass_fds=(r,), start_new_session=True)
    finally:
        os.close(r)
    if interrupted():  # a signal that arrived while it was being started was forwarded to nobody
        t.proc.send_signal(signal.SIGINT)

    def feed() -> None:
        with os.fdopen(w, "w", encoding="utf-8", errors="surrogateescape") as fh:
            try:
                fh.write(json.dumps(union))
            except BrokenPipeError:
                pass

    threading.Thread(target=feed, daemon=True).start()
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(t.proc.stdout.read()), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def overdue() -> None:  # SIGINT (restore, write the run directory), then SIGTERM, then SIGKILL
        timed_out.set()
        for sig, wait in ((signal.SIGINT, 120), (signal.SIGTERM, 30), (signal.SIGKILL, 0)):
            if t.proc.poll() is not None:
                return
            t.proc.send_signal(sig)
            try:
                t.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue

    timer = threading.Timer(timeout_s, overdue)
    timer.daemon = True
    timer.start()
    log_path = run_dir.parent.parent / "logs" / f"{t.name}.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w", encoding="utf-8", errors="surrogateescape") as log:  # its stderr, kept (scrubbed)
        for line in t.proc.stderr:
            line = redactor.scrub_text(line.rstrip("\n"))
            t.stderr_tail = (t.stderr_tail + [line])[-20:]
            log.write(line + "\n")
            log.flush()
            progress(f"{t.name}: {line}")
    t.exit_code = t.proc.wait()
    timer.cancel()
    reader.join(10)
    t.duration_s = round(time.monotonic() - t0, 1)
    if timed_out.is_set():
        t.error = f"interrupted after fleet.target_timeout_s ({timeout_s:.0f} s)"


# -- the fleet run -----------------------------------------------------------------------------------------

def asked_phases(params: Params, phases: list[str] | None, notebooks: Path = NOTEBOOKS) -> list[str]:
    chosen = list(phases or params.phases) or [p for p in PHASES if (notebooks / f"{p}.ipynb").exists()]
    return sorted(set(chosen), key=PHASES.index)


def run(params: Params, *, output: str | Path = "outputs", phases: list[str] | None = None, kernel: str = "python3",
        show_code: bool = False, progress: Callable[[str], None] = print, notebooks: Path = NOTEBOOKS,
        run_dir: Path | None = None) -> Any:
    """The runbook over every target of ``params.targets``; returns a runner.RunResult for the fleet directory."""
    from runbook_lib.run.runner import (_check_ids_known, check_services, destructive_phases, new_run_dir,
                                        refuse_unsupported_phases, unknown_phase)

    if phases and unknown_phase(phases):
        raise InputError(f"--phase: {unknown_phase(phases)}")
    chosen = asked_phases(params, phases, notebooks)
    if params.read_only:  # each target's run is read-only too (its parameters say so): nothing to roll
        from runbook_lib.run.runner import read_only_phases

        chosen = read_only_phases(chosen)
    # what every target's run would refuse, refused once, before any engine is touched (exit 2)
    refuse_unsupported_phases(params, chosen)
    params.ensure_safe()
    _check_ids_known(params)
    from runbook_lib.engine.compose import Compose

    model = Compose(params.compose_files, project=params.project, env_files=params.env_files).config()
    check_services(params, set(model.get("services") or {}))
    for p in chosen:
        if not (notebooks / f"{p}.ipynb").exists():
            raise InputError(f"{params.source}: phase {p!r} has no notebook in {notebooks}; remove it from `phases:`.")
    endpoints = [resolve_endpoint(params, i) for i in range(len(params.targets))]  # InputError: nothing touched
    key = signing.resolve_key(params.signoff.signing_key, generate_missing=params.signoff.generate_missing_key)
    destructive = [] if params.read_only else [p for p in chosen if p in destructive_phases()]
    rolling = bool(destructive) and not params.fleet.parallel_destructive
    if run_dir is None:
        run_dir = new_run_dir(Path(output).resolve(), f"{params.project}-fleet")
        (run_dir / "notebooks").rmdir()
    else:
        (run_dir / "results").mkdir(parents=True, exist_ok=False)
    started = utcnow()
    (run_dir / TARGETS_DIR).mkdir()
    runs = [TargetRun(t.name, endpoints[i], i) for i, t in enumerate(params.targets)]
    progress(f"runbook: fleet of {len(runs)} targets ({', '.join(f'{t.name} at {t.endpoint}' for t in runs)}); "
             f"phases {', '.join(chosen)}; " + (f"destructive phases ({', '.join(destructive)}) rolled one target at a "
                                                "time" if rolling else "every target at once"))
    progress(f"runbook: run directory {run_dir}")
    # each target's parameters, kept in the fleet directory (what its run was given; no secret values)
    (run_dir / "inputs").mkdir()
    files = {}
    for t in runs:
        files[t.name] = run_dir / "inputs" / f"{t.name}.yaml"
        files[t.name].write_text(f"# The parameters of target {t.name} ({t.endpoint}), derived from {params.source}\n"
                                 + yaml.safe_dump(target_params(params, t.index), sort_keys=False), encoding="utf-8")
    deadline = params.engine.call_timeout_s * 2 + 30
    probes = [threading.Thread(target=_learn, args=(t, files[t.name], deadline)) for t in runs]
    for th in probes:
        th.start()
    for th in probes:
        th.join()
    union: list[tuple[str, str]] = []
    seen: set[str] = set()
    for t in runs:
        progress(f"{t.name}: " + (f"engine {t.engine.get('version', '?')} answers at {t.endpoint}" if t.reachable
                                  else f"UNREACHABLE: {t.error}"))
        for value, source in t.values:
            if value not in seen:
                seen.add(value)
                union.append((value, f"target {t.name}: {source}"))
    redactor = Redactor(v for v, _ in union)
    if key:
        redactor.learn_files([key])

    def go(t: TargetRun) -> None:
        if signals.signal:  # interrupted before this target started: not started
            t.skipped = f"the fleet run was interrupted ({signals.signal})"
            return
        _run_target(t, files[t.name], run_dir / TARGETS_DIR / t.name, chosen, union, redactor, kernel=kernel,
                    show_code=show_code, timeout_s=params.fleet.target_timeout_s, progress=progress,
                    interrupted=lambda: signals.signal)

    signals = _Signals(runs, progress)
    with signals:
        if rolling:
            stop = ""
            for t in runs:
                if not t.reachable:
                    stop = stop or f"rollout stopped: target {t.name} is NO-GO (unreachable)"
                    continue
                t.rollout_stopped = stop
                go(t)
                if _target_verdict(run_dir, t.name) != "GO" and not stop:
                    stop = f"rollout stopped: target {t.name} is NO-GO"
                    progress(f"runbook: {stop}; the remaining targets run their read-only phases only")
        else:
            threads = [threading.Thread(target=go, args=(t,)) for t in runs if t.reachable]
            for th in threads:
                th.start()
            for th in threads:
                while th.is_alive():
                    th.join(0.5)  # the main thread stays responsive to signals
        interrupted = signals.signal
    changed = scrub_tree(run_dir, redactor, key)
    result = finish(run_dir, params, runs, started, chosen, rolling=rolling, show_code=show_code, key=key,
                    redacted=changed, progress=progress)
    result.interrupted = interrupted
    return result


def _target_verdict(run_dir: Path, name: str) -> str:
    try:
        return verdicts.read(run_dir / TARGETS_DIR / name)["verdict"]
    except (OSError, ValueError, KeyError):
        return ""


_TEXT_SUFFIXES = {".json", ".md", ".xml", ".html", ".ipynb", ".yaml", ".yml", ".txt", ".log", ".csv", ".svg"}


def scrub_tree(run_dir: Path, redactor: Redactor, key: Path | None) -> list[str]:
    """The backstop: scrub every text file of the fleet directory with the union of every target's secrets.
    A target whose files changed gets its verdict re-judged (only when a results file changed: redaction
    changes no status) and its manifest rewritten and re-signed. Returns the files changed (relative)."""
    from runbook_lib.params import load_params

    changed: list[str] = []
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file() or p.suffix not in _TEXT_SUFFIXES or p.name == report.MANIFEST:
            continue
        text = p.read_text(encoding="utf-8", errors="surrogateescape")
        clean = redactor.scrub_known(text)
        if clean != text and p.suffix in (".yaml", ".yml"):  # a marker starts with "[": re-dumped, not spliced
            header = "".join(ln for ln in text.splitlines(keepends=True) if ln.startswith("#"))
            clean = header + yaml.safe_dump(redactor.scrub(yaml.safe_load(text)), sort_keys=False)
        if clean != text:
            p.write_text(clean, encoding="utf-8", errors="surrogateescape")
            changed.append(str(p.relative_to(run_dir)))
    for sub in sorted((run_dir / TARGETS_DIR).iterdir()) if (run_dir / TARGETS_DIR).is_dir() else []:
        mine = [c for c in changed if c.startswith(f"{TARGETS_DIR}/{sub.name}/")]
        if not mine or not (sub / report.MANIFEST).exists():
            continue
        if any("/results/" in c for c in mine) and (sub / verdicts.VERDICT_FILE).exists():
            verdicts.write(sub, verdicts.judge(sub, load_params(sub / "params.yaml")))
        signing.sign_file(report.write_manifest(sub), key) if key else report.write_manifest(sub)
    return changed


def _fleet_records(runs: list[TargetRun], run_dir: Path) -> list[CheckRecord]:
    recs = []
    reach, verdict = Check("fleet.target_reachable"), Check("fleet.target_verdict")
    for t in runs:
        ev = {"docker_host": t.endpoint, "probe": "docker version through the target's DOCKER_HOST, bounded by "
                                                   "engine.call_timeout_s"}
        if t.reachable:
            recs.append(reach.record(t.name, "PASS", expected="the engine answers", evidence={**ev, "engine": t.engine},
                                     actual=f"Docker {t.engine.get('version', '?')} ({t.engine.get('os', '')}/"
                                            f"{t.engine.get('arch', '')}) answered at {t.endpoint}",
                                     command=f"DOCKER_HOST={t.endpoint} docker version"))
        else:
            recs.append(reach.record(t.name, "ERROR", expected="the engine answers", evidence={**ev, "error": t.error},
                                     actual=t.error or "not reached", command=f"DOCKER_HOST={t.endpoint} docker version"))
        sub = run_dir / TARGETS_DIR / t.name
        cmd = f"DOCKER_HOST={t.endpoint} runbook run --params <{t.name}'s parameters> --run-dir {TARGETS_DIR}/{t.name}"
        try:
            v = verdicts.read(sub)
        except (OSError, ValueError):
            v = None
        if v is None:
            why = (t.skipped or (f"not run: its engine is unreachable ({t.error})" if not t.reachable else "")
                   or f"the target's run exited {t.exit_code} without a verdict" + (f" ({t.error})" if t.error else "")
                   + (f": {t.stderr_tail[-1]}" if t.stderr_tail else ""))
            status = "SKIP" if t.skipped else "ERROR"
            recs.append(verdict.record(t.name, status, expected="GO", actual=why, command=cmd,
                                       evidence={"exit_code": t.exit_code, "stderr_tail": t.stderr_tail[-5:]}))
            continue
        ev = {"run_dir": f"{TARGETS_DIR}/{t.name}", "verdict": v["verdict"], "counts": v["counts"],
              "blockers": [b["ref"] for b in v["blockers"]], "exit_code": t.exit_code,
              "verdict_sha256": verdicts._sha256(sub / verdicts.VERDICT_FILE)}
        if t.rollout_stopped:
            ev["rollout_stopped"] = t.rollout_stopped
        if t.error:  # interrupted for overrunning fleet.target_timeout_s (its verdict says what was not run)
            ev["interrupted"] = t.error
        if v["verdict"] == "GO":
            recs.append(verdict.record(t.name, "PASS", expected="GO", actual=f"GO ({v['records']} records)",
                                       evidence=ev, command=cmd))
        else:
            recs.append(verdict.record(t.name, "FAIL", expected="GO", evidence=ev, command=cmd,
                                       actual=(f"{t.error}; " if t.error else "") + f"NO-GO: {len(v['blockers'])} blocker(s): "
                                              + ", ".join(b["ref"] for b in v["blockers"][:6])
                                              + (f" and {len(v['blockers']) - 6} more" if len(v["blockers"]) > 6 else "")))
    return recs


def fleet_view(run_dir: Path) -> dict[str, Any]:
    """What the fleet's verdict adds to an ordinary one, derived from the targets' verdict files: per target
    (verdict, counts, endpoint), the targets that are NO-GO or could not run, and every target's blockers
    with the target qualified (``staging/auth-service``) and the engine named."""
    own = read_records(run_dir / "results" / f"{FLEET_RESULTS}.json")
    recs = {r.target: r for r in own if r.id == "fleet.target_verdict"}
    hosts = {r.target: r.evidence.get("docker_host", "") for r in own if r.id == "fleet.target_reachable"}
    targets, blockers, no_go = [], [], []
    for name, r in recs.items():
        sub = run_dir / TARGETS_DIR / name
        try:
            v = verdicts.read(sub)
        except (OSError, ValueError):
            v = None
        info = json.loads((sub / verdicts.RUN_FILE).read_text()) if (sub / verdicts.RUN_FILE).exists() else {}
        targets.append({"name": name, "docker_host": hosts.get(name, ""),
                        "verdict": v["verdict"] if v else "NOT RUN", "status": r.status,
                        "counts": v["counts"] if v else {}, "run_dir": f"{TARGETS_DIR}/{name}" if v else "",
                        "engine_docker_host": info.get("docker_host", "")})
        if r.status != "PASS":
            no_go.append(name)
        for b in (v or {}).get("blockers", []):
            blockers.append({**b, "target": f"{name}/{b['target']}", "engine": name,
                             "ref": f"{b['id']}@{name}/{b['target']}"})
    return {"targets": targets, "no_go": no_go, "target_blockers": blockers}


def _categories(run_dir: Path, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verification table of the fleet: each category of the targets' verdicts, its status the worst over
    the targets (a target that did not run: NOT VERIFIED), with each target's status."""
    order = (*verdicts.WORST_FIRST, "NOT VERIFIED")
    rows: dict[str, dict[str, Any]] = {}
    for t in targets:
        try:
            tv = verdicts.read(run_dir / TARGETS_DIR / t["name"])
        except (OSError, ValueError):
            continue
        for c in tv.get("categories", []):
            row = rows.setdefault(c["name"], {"name": c["name"], "status": "PASS", "counts": {}, "checks": [],
                                              "info": 0, "targets": {}})
            row["targets"][t["name"]] = c["status"]
            for k, n in c["counts"].items():
                row["counts"][k] = row["counts"].get(k, 0) + n
            row["checks"] = sorted(set(row["checks"]) | set(c["checks"]))
            row["info"] += c.get("info", 0)
    for row in rows.values():
        statuses = [row["targets"].get(t["name"], "NOT VERIFIED") for t in targets]
        row["targets"] = {t["name"]: st for t, st in zip(targets, statuses)}
        row["status"] = min(statuses, key=lambda st: order.index(st) if st in order else 0)
    return list(rows.values())


def write_summary_md(run_dir: Path, v: dict[str, Any]) -> None:
    """summary.md of a fleet (CI job summary): the verdict, the targets, the verification table with a column
    per target, and every target's blockers with the target qualified."""
    names = [t["name"] for t in v["fleet"]["targets"]]
    lines = [f"## {v['verdict']}: {v['project']} (fleet of {len(names)})", "", v["rationale"], "",
             "| target | engine | verdict |", "|---|---|---|"]
    lines += [f"| {t['name']} | `{t['docker_host']}` | {t['verdict']} |" for t in v["fleet"]["targets"]]
    lines += ["", "### Verification", "", "| category | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {c['name']} | " + " | ".join(c.get("targets", {}).get(n, "—") for n in names) + " |"
              for c in v["categories"] if "targets" in c]
    lines += ["", "### Blockers", ""]
    lines += [f"- {report._md(describe_group(cid, rs, len(rs)), 400)}" for cid, rs, _ in verdicts.grouped(v["target_blockers"], {})]
    lines += [f"- {report._md(describe_group(cid, rs, n), 400)}" for cid, rs, n in verdicts.grouped(v["blockers"], v)
              if cid != "fleet.target_verdict"] or []
    if not v["blockers"]:
        lines.append("None.")
    lines += ["", f"Report: `{run_dir / 'report.html'}` · each target's own: `{run_dir / TARGETS_DIR}/NAME/report.html`"]
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def judge(run_dir: Path, params: Params) -> dict[str, Any]:
    """The fleet's verdict document: the policy over the fleet's own records (one GO/NO-GO record per
    target: any target NO-GO or not run is a blocker), plus :func:`fleet_view`."""
    v = verdicts.judge(run_dir, params)
    view = fleet_view(run_dir)
    v["fleet"] = {"targets": view["targets"], "no_go": view["no_go"]}
    v["categories"] = _categories(run_dir, view["targets"]) + [c for c in v["categories"] if c["counts"]]
    v["target_blockers"] = view["target_blockers"]
    if view["no_go"]:
        v["rationale"] = (f"NO-GO: target{'s' if len(view['no_go']) > 1 else ''} {', '.join(view['no_go'])} "
                          f"{'are' if len(view['no_go']) > 1 else 'is'} NO-GO or could not be verified. " + v["rationale"])
    return v


def finish(run_dir: Path, params: Params, runs: list[TargetRun], started: str, phases: list[str], *, rolling: bool,
           show_code: bool, key: Path | None, redacted: list[str], progress: Callable[[str], None]) -> Any:
    from runbook_lib.run.runner import RunResult

    write_records(run_dir / "results" / f"{FLEET_RESULTS}.json", _fleet_records(runs, run_dir))
    dump_resolved(params, run_dir / "params.yaml")
    (run_dir / verdicts.RUN_FILE).write_text(json.dumps({
        "schema": 1, "fleet": True, "project": params.project, "started": started, "toolkit_version": __version__,
        "params_source": str(params.source), "phases": phases, "show_code": show_code, "rolling": rolling,
        "targets": [{"name": t.name, "docker_host": t.endpoint, "duration_s": t.duration_s, "exit_code": t.exit_code}
                    for t in runs],
        "redacted_after_run": redacted,
    }, indent=1) + "\n", encoding="utf-8")
    v = judge(run_dir, params)
    verdicts.write(run_dir, v)
    entries = [{"phase": "runner", "status": "completed", "detail": "the fleet's own records (results/fleet.json)",
                "records": len(runs),
                "duration_s": max([t.duration_s for t in runs] or [0.0])}]
    summary = report.build_summary(v, entries)
    summary["targets"] = v["fleet"]["targets"]
    summary["target_blockers"] = [b["ref"] for b in v["target_blockers"]]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_summary_md(run_dir, v)
    report.write_junit(run_dir, v, entries)
    write_html(run_dir, v)
    manifest = report.write_manifest(run_dir)
    if key:
        signing.sign_file(manifest, key)
        progress(f"runbook: fleet manifest signed with {key}")
    for t in v["fleet"]["targets"]:
        progress(f"runbook: {t['name']}: {t['verdict']}")
    return RunResult(run_dir, v, summary)


# -- report.html -------------------------------------------------------------------------------------------

_COLOURS = {"PASS": "#1a7f37", "GO": "#1a7f37", "FAIL": "#cf222e", "NO-GO": "#cf222e", "ERROR": "#8250df",
            "WARN": "#9a6700", "SKIP": "#57606a", "WAIVED": "#0969da", "NOT VERIFIED": "#57606a", "NOT RUN": "#8250df",
            "INFO": "#57606a"}


def _badge(status: str) -> str:
    return (f'<span class="b" style="background:{_COLOURS.get(status, "#57606a")}">{html.escape(status)}</span>')


def render_html(run_dir: Path, v: dict[str, Any]) -> str:
    """The fleet's report: the verdict and the targets that are NO-GO, the verification table (one row per
    category, then per check id; one column per target), every target's blockers, links to each target's
    own report. Derived only from files of the run directory, so `runbook report` renders it again identically."""
    e = html.escape
    targets = v["fleet"]["targets"]
    per: dict[str, dict[str, Any]] = {}
    for t in targets:
        sub = run_dir / TARGETS_DIR / t["name"]
        tv = verdicts.read(sub) if (sub / verdicts.VERDICT_FILE).exists() else None
        checks: dict[str, str] = {}
        if tv is not None:
            bad = {b["ref"]: b["status"] for b in tv["blockers"]}
            for r in verdicts.load_records(sub):
                s = "WAIVED" if any(w["ref"] == f"{r.id}@{r.target}" for w in tv["waived"]) else r.status
                if f"{r.id}@{r.target}" in bad:
                    s = bad[f"{r.id}@{r.target}"]
                old = checks.get(r.id)
                order = ("ERROR", "FAIL", "WARN", "SKIP", "WAIVED", "PASS", "INFO")
                checks[r.id] = s if old is None or order.index(s) < order.index(old) else old
        per[t["name"]] = {"verdict": tv, "checks": checks,
                          "cats": {c["name"]: c["status"] for c in (tv or {}).get("categories", [])}}
    cats = []
    for t in targets:
        for c in (per[t["name"]]["verdict"] or {}).get("categories", []):
            if c["name"] not in cats:
                cats.append(c["name"])
    ids = sorted({cid for p in per.values() for cid in p["checks"]})
    head = "".join(f'<th><a href="{TARGETS_DIR}/{e(t["name"])}/report.html">{e(t["name"])}</a><br>'
                   f'<small>{e(t["docker_host"])}</small></th>' for t in targets)

    def row(label: str, cells: list[str], cls: str = "") -> str:
        return f'<tr class="{cls}"><td>{label}</td>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    def cells(cid: str) -> list[str]:
        return [per[t["name"]]["checks"].get(cid, "—") for t in targets]

    # check ids with anything but PASS/INFO on some target first; those fine everywhere they ran after them
    attention = [cid for cid in ids if any(c not in ("PASS", "INFO", "—") for c in cells(cid))]
    fine = [cid for cid in ids if cid not in attention]
    n = len(targets) + 1
    rows = [row("<b>verdict</b>", [_badge(t["verdict"]) for t in targets])]
    rows += [row(e(c), [_badge(per[t["name"]]["cats"].get(c, "NOT VERIFIED")) if per[t["name"]]["verdict"] else "—"
                        for t in targets]) for c in cats]
    for title, group in ((f"check ids not PASS on every target ({len(attention)})", attention),
                         (f"check ids PASS (or INFO) on every target that ran them ({len(fine)})", fine)):
        if group:
            rows.append(f'<tr><th colspan="{n}">{e(title)}</th></tr>')
            rows += [row(f"<code>{e(cid)}</code>", [c if c == "—" else _badge(c) for c in cells(cid)], "id")
                     for cid in group]
    fleet_rows = "".join(f"<li>{_badge(r.status)} <code>{e(r.id)}</code> <b>{e(r.target)}</b>: {e(r.actual)}</li>"
                         for r in read_records(run_dir / "results" / f"{FLEET_RESULTS}.json"))
    blockers = "".join(f"<li>{_badge(b['status'])} <code>{e(b['id'])}</code> on <b>{e(b['target'])}</b> "
                       f"({e(b['severity'])}): {e(b['actual'])}</li>" for b in v["target_blockers"]) or "<li>None.</li>"
    no_go = v["fleet"]["no_go"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(v['verdict'])}: {e(v['project'])} (fleet of {len(targets)})</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;vertical-align:top}}tr.id td{{font-size:.9em}}
.b{{color:#fff;border-radius:.3em;padding:0 .4em;font-size:.85em;font-weight:600}}h1 .b{{font-size:1em}}</style></head>
<body>
<h1>{_badge(v['verdict'])} {e(v['project'])}: fleet of {len(targets)} target{'s' if len(targets) != 1 else ''}</h1>
<p>{e(v['rationale'])}</p>
<p>Started {e(v['started'])}, decided {e(v['decided_at'])}. {'NO-GO targets: <b>' + e(', '.join(no_go)) + '</b>.' if no_go else 'Every target is GO.'}
Each target's own run, with its records, notebooks and report, is in <code>{TARGETS_DIR}/NAME/</code>; this directory's
<code>manifest.json</code> covers every file of every target.</p>
<h2>Targets</h2><ul>{fleet_rows}</ul>
<h2>Blockers, by target</h2><ul>{blockers}</ul>
<h2>Verification, per target</h2>
<table><tr><th>category / check</th>{head}</tr>
{''.join(rows)}
</table>
</body></html>
"""


def write_html(run_dir: Path, v: dict[str, Any], out: Path | None = None) -> Path:
    out = out or run_dir / "report.html"
    out.write_text(render_html(run_dir, v), encoding="utf-8")
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "learn":
        sys.exit(_learn_main(sys.argv[2]))
    print("usage: python -m runbook_lib.run.fleet learn PARAMS  (the fleet runner's probe; not for use by hand)",
          file=sys.stderr)
    sys.exit(2)
