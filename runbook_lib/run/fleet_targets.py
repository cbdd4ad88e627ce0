"""A fleet's targets, one by one (the fleet run: :mod:`runbook_lib.run.fleet`).

- per-target parameters: the DOCKER_HOST of a target (:func:`resolve_endpoint`) and the parameters its run is
  given (:func:`target_params`: the fleet's, loopback URLs pointed at the target's ``address``);
- reaching a target (:func:`learn`): a short subprocess with the target's DOCKER_HOST (this module run as
  ``python -m runbook_lib.run.fleet_targets learn PARAMS``) answers whether the engine does, and the secret
  values the target's run would learn;
- the secret pipe (:data:`SECRETS_FD_ENV`, :func:`learn_inherited`): every target's run learns the union of
  all targets' values through an inherited pipe, never a file, an argument or an environment value;
- one target's run (:func:`run_target`): an ordinary ``runbook run`` in a subprocess, its stderr relayed line by
  line, interrupted when it overruns ``fleet.target_timeout_s``.
"""
from __future__ import annotations

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

from runbook_lib.errors import InputError
from runbook_lib.params import Params
from runbook_lib.results.redact import Redactor

#: In a target run's environment: the number of an inherited pipe holding the fleet's secret values (JSON).
SECRETS_FD_ENV = "RUNBOOK_FLEET_SECRETS_FD"
_ENGINE_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
_LOOPBACK_URL = re.compile(r"(?i)\b(https?://|turns?:)(?:127\.0\.0\.1|localhost|\[::1\])(?=[:/]|$)")


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


def learn(t: TargetRun, params_file: Path, deadline_s: float) -> None:
    """Reach the target's engine once and read its secrets (a subprocess with the target's DOCKER_HOST,
    bounded by ``deadline_s``); fills ``t.reachable``, ``t.engine``/``t.error`` and ``t.values``."""
    argv = [sys.executable, "-m", "runbook_lib.run.fleet_targets", "learn", str(params_file)]
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
    """``python -m runbook_lib.run.fleet_targets learn PARAMS`` (DOCKER_HOST: the target's): one JSON line on
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


def run_target(t: TargetRun, params_file: Path, run_dir: Path, phases: list[str], union: list[tuple[str, str]],
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


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "learn":
        sys.exit(_learn_main(sys.argv[2]))
    print("usage: python -m runbook_lib.run.fleet_targets learn PARAMS  (the fleet runner's probe; not for use by hand)",
          file=sys.stderr)
    sys.exit(2)
