"""The explorer (runbook_lib.run.explorer): its pure logic, the widget in a kernel-less session against the
real demo stack, and the helpers that drive a real JupyterLab in headless Chromium (used by test_lab.py)."""
from __future__ import annotations

import contextlib
import importlib
import os
import re
import secrets as pysecrets
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import nbformat
import pytest

from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.run import explorer
from runbook_lib.engine import ContainerView
from runbook_lib.engine.event_calls import engine_time
from runbook_lib.params import load_params
from runbook_lib.results.records import CheckRecord
from runbook_lib.results.redact import Redactor

from conftest import PARAMS, ROOT, stack_tree

NOTEBOOK = NOTEBOOKS / "explore.ipynb"
SECRETS_DIR = ROOT / "demo" / ".secrets"
SERVICE = "chat-service"
CONTAINER = "secureconnect-demo-chat-service-1"


def demo_secret_values() -> list[str]:
    """Every secret value of the demo stack, as the files in demo/.secrets/ hold them."""
    values = [p.read_text().strip() for p in sorted(SECRETS_DIR.iterdir()) if p.is_file()]
    assert values and all(len(v) >= 8 for v in values), "the demo secrets were not generated"
    return values


def assert_no_secret_in(text: str, where: str) -> None:
    leaked = [f"{v[:3]}… ({len(v)} chars)" for v in demo_secret_values() if v in text]
    assert not leaked, f"secret value(s) {leaked} visible in {where}"


def artifacts_dir() -> Path:
    d = Path(os.environ.get("RUNBOOK_TEST_ARTIFACTS") or ROOT / "outputs" / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _record(target: str, status: str = "FAIL") -> CheckRecord:
    return CheckRecord(id="x.y", phase="02_secrets_security", title="t", target=target, status=status,
                       severity="high", expected="e", actual="a")


# -- pure logic ------------------------------------------------------------------------------------------
def test_the_explorer_never_offers_the_redeployment_or_a_dependency_drill():
    phases = explorer.discover_phases()
    offered = [p.phase for p in phases]
    assert "01_controlled_redeployment" not in offered
    assert offered == sorted(offered) and "00_preflight" in offered
    for p in phases:
        assert p.problem or p.checks, f"{p.module} offers nothing"
        for fn in p.checks:
            assert not explorer.is_destructive(fn), f"{p.module}.{fn.__name__} is a drill"
            assert fn.__name__ not in ("compose_down", "compose_up"), "phase 1 steps must never be offered"


def test_a_drill_in_a_fault_injecting_module_is_destructive_but_the_drill_journal_check_is_not():
    from runbook_lib.phases import preflight

    def drill_redis(ctx):
        return []

    importlib.import_module("runbook_lib.phases.smoke.drills")  # the phase-4 drills module, which imports runbook_lib.drills.faults
    drill_redis.__module__ = "runbook_lib.phases.smoke.drills"

    assert explorer.is_destructive(drill_redis)
    if hasattr(preflight, "drill_journal"):
        assert not explorer.is_destructive(preflight.drill_journal)

    def stop_everything(ctx):
        return []

    stop_everything.destructive = True
    assert explorer.is_destructive(stop_everything)
    assert not explorer.is_destructive(preflight.engine_reachable)


def test_phase_modules_are_discovered_with_their_checks_and_the_broken_or_destructive_ones_said_or_left_out(
        tmp_path, monkeypatch):
    pkg = tmp_path / "fake_phases"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a_first.py").write_text("PHASE = '07_first'\ndef one(ctx): return []\nCHECKS = [one]\n")
    (pkg / "b_drills.py").write_text("from runbook_lib.drills import faults\nPHASE = '06_drills'\n"
                                     "def health(ctx): return []\ndef drill_db(ctx): return []\nCHECKS = [health, drill_db]\n")
    (pkg / "c_broken.py").write_text("PHASE = '08_broken'\nraise ImportError('half-written')\n")
    (pkg / "d_nochecks.py").write_text("PHASE = '09_nochecks'\n")
    (pkg / "e_destructive.py").write_text("PHASE = '10_wipe'\nDESTRUCTIVE = True\ndef wipe(ctx): return []\nCHECKS = [wipe]\n")
    (pkg / "f_helpers.py").write_text("def util(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = {p.phase: p for p in explorer.discover_phases("fake_phases")}
    assert list(found) == ["06_drills", "07_first", "09_nochecks", "c_broken"]
    assert [f.__name__ for f in found["06_drills"].checks] == ["health"] and found["06_drills"].left_out == ["drill_db"]
    assert [f.__name__ for f in found["07_first"].checks] == ["one"]
    assert "half-written" in found["c_broken"].problem and "no check that can run on its own" in found["09_nochecks"].problem


def test_uptime_comes_from_the_engine_start_time_and_a_stopped_container_says_so():
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    running = ContainerView({"Id": "a" * 64, "State": {"Status": "running", "StartedAt": "2025-01-02T01:02:03.123456789Z"}})
    assert explorer.uptime(running, now) == "2h 2m"
    stopped = ContainerView({"Id": "b" * 64, "State": {"Status": "exited", "StartedAt": "2025-01-01T00:00:00Z",
                                                       "FinishedAt": "2025-01-02T03:03:00.5Z"}})
    assert explorer.uptime(stopped, now) == "not running (stopped 1m 4s ago)"
    assert engine_time("0001-01-01T00:00:00Z") is None
    assert explorer.human_duration(3 * 86400 + 4 * 3600 + 59) == "3d 4h"


def test_environment_values_are_redacted_and_credential_named_values_masked_but_file_pointers_shown():
    red = Redactor(["s3cr3t-value-known"])
    looks = load_params(PARAMS / "demo.yaml").security.looks_like_credential
    env = {"JWT_SECRET_FILE": "/run/secrets/jwt_secret", "DB_URL": "postgres://u:s3cr3t-value-known@db/x",
           "API_TOKEN": "never-learned-token-value", "PORT": "8080", "EMPTY_PASSWORD": ""}
    shown = dict(explorer.redacted_env(env, red, looks))
    assert shown["JWT_SECRET_FILE"] == "/run/secrets/jwt_secret" and shown["PORT"] == "8080"
    assert "s3cr3t-value-known" not in shown["DB_URL"] and "[REDACTED sha256:" in shown["DB_URL"]
    assert shown["API_TOKEN"].startswith("[REDACTED sha256:") and shown["EMPTY_PASSWORD"] == ""
    assert list(shown) == sorted(env)


def test_records_about_other_services_are_left_out_but_errors_about_the_run_itself_are_kept():
    records = [_record("chat-service"), _record("auth-service"), _record("chat-service-1-extra"),
               _record("secureconnect-demo-chat-service-2"), _record("engine", "ERROR"), _record("redis", "ERROR")]
    kept, other = explorer.records_for_service(records, "chat-service", ["secureconnect-demo-chat-service-2"],
                                               ["chat-service", "auth-service", "redis"])
    assert [r.target for r in kept] == ["chat-service", "secureconnect-demo-chat-service-2", "engine"]
    assert other == 3


def test_probe_endpoints_come_from_the_parameters_or_else_the_published_health_port():
    params = load_params(PARAMS / "demo.yaml")
    model = {"services": {"chat-service": {"ports": [{"host_ip": "127.0.0.1", "published": "8082", "target": 8082,
                                                      "protocol": "tcp"}]},
                          "redis": {}}}
    eps = explorer.service_endpoints(params, model, "chat-service")
    assert [e["url"] for e in eps] == ["http://127.0.0.1:8082/health", "http://127.0.0.1:8082/metrics"]
    assert explorer.service_endpoints(params, model, "redis") == []


def test_the_explore_notebook_is_thin_committed_without_outputs_and_takes_the_phase_parameters():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown"
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert 'params_file = ""' in params[0].source and 'run_dir = ""' in params[0].source
    assert len(code) == 2 and "explore(params_file)" in code[1].source
    assert nb.metadata.kernelspec.name == "python3"


def test_an_unreachable_engine_is_said_in_the_widget_instead_of_raised(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.chdir(NOTEBOOKS)  # what `make lab` opens: "" finds the checkout's parameters/demo.yaml
    monkeypatch.delenv("RUNBOOK_PARAMS", raising=False)
    ex = explorer.explore("").explorer
    assert "no Docker engine answers" in ex.status.value and "EngineUnavailable" not in ex.status.value
    assert SERVICE in [v for _, v in ex.picker.options], "the services still come from the compose model"
    ex.picker.value = SERVICE
    assert "no Docker engine answers" in ex.status.value and ex.containers.value == ""


# -- against the demo stack, without a browser -----------------------------------------------------------
@pytest.mark.docker
def test_the_explorer_shows_a_service_reruns_its_checks_and_probes_it_without_showing_a_secret(healthy_demo, monkeypatch,
                                                                                             tmp_path):
    monkeypatch.chdir(stack_tree(healthy_demo, tmp_path) / "notebooks")
    CONTAINER = f"{healthy_demo.project}-chat-service-1"
    widget = explorer.explore("../parameters/demo.yaml")
    ex = widget.explorer
    assert ex.status.value == "" and SERVICE in ex.overview.value
    ex.picker.value = SERVICE
    assert CONTAINER in ex.containers.value and "running" in ex.containers.value and "healthy" in ex.containers.value
    assert "REDIS_PASSWORD_FILE" in ex.environment.value
    assert "/run/secrets/redis_password" in ex.secrets.value and "0400" in ex.secrets.value
    assert "<pre" in ex.logs.value
    shown = [ex.containers.value, ex.environment.value, ex.secrets.value, ex.logs.value]
    for phase in ex.phases:
        if phase.problem:
            continue
        ex.run_phase(phase)
        shown.append(ex.checks_out.value)
        targets = set(re.findall(r"<tr id='[^']*--([^']*)'>", ex.checks_out.value))
        assert targets <= {SERVICE, CONTAINER, "engine", "compose", healthy_demo.project, "run"}, (phase.phase, targets)
    assert any("secrets." in s for s in shown), "phase 2's records for the service are shown"
    ex.probe()
    assert healthy_demo.url(SERVICE, "/health") in ex.probe_out.value and ">200<" in ex.probe_out.value
    shown.append(ex.probe_out.value)
    assert_no_secret_in("\n".join(shown), "the explorer's widgets")


# -- in JupyterLab, in headless Chromium ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions ``text`` (the kernels of our server name its runtime dir)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@contextlib.contextmanager
def jupyterlab(root: Path, work: Path, launcher: list[str] | None = None):
    """JupyterLab on 127.0.0.1 (random free port, random token) serving ``root``; yields (base url,
    token). ``launcher``: the command that starts it and chooses what it serves (``runbook lab --dir ...
    --``), instead of ``jupyter lab`` on ``root``. Stops the server (its API, then its process group) and
    any kernel it started, whatever happens; the kernels are found by the private runtime directory in
    their command line."""
    token = pysecrets.token_hex(24)
    port = _free_port()
    runtime = work / "runtime"
    settings = work / "settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    # No news or update checks: nothing leaves 127.0.0.1, and no toast covers the screenshot.
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_CONFIG_DIR": str(work / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(work / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
           "IPYTHONDIR": str(work / "ipython")}
    cmd = (launcher or [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={root}"]) + [
        "--no-browser", "--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.token={token}"]
    if os.geteuid() == 0 and not launcher:
        cmd.append("--allow-root")
    log = (work / "jupyterlab.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited ({proc.returncode}):\n{(work / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=2,
                             trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("JupyterLab did not answer /api/status within 90 s")
            with contextlib.suppress(subprocess.TimeoutExpired):  # also notices an early exit at once
                proc.wait(0.25)
        yield base, token
    finally:
        with contextlib.suppress(httpx.HTTPError):  # a clean shutdown also shuts its kernels down
            httpx.post(f"{base}/api/shutdown", headers={"Authorization": f"token {token}"}, timeout=5, trust_env=False)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue
        for pid in _processes_mentioning(str(runtime)):  # kernels run in their own session
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def wait_for_kernel(page, base: str, token: str, path: str, timeout_s: float = 300) -> None:
    """Until the notebook's kernel is settled: the server has one session for ``path`` whose kernel is
    idle with a client connected, the status bar says Idle, and no dialog is open, in three readings in
    a row. (Right after a notebook opens, JupyterLab may start a second kernel, ask which kernel to use
    or reconnect its websocket; a widget created during that churn renders as "model not found".) A
    "Select Kernel" dialog is answered with its preselected kernel, the notebook's python3.

    After a "File Load Error", or when the server's side has been settled for 20 s and the page still does
    not say Idle, the notebook's address is opened again, as a person would (at most twice); a plain reload
    is not enough, because after a failed load JupyterLab restores a workspace without the notebook (CI
    showed its Launcher). Both were seen in CI under load: "Failed to fetch" for a notebook the server had
    read, and a kernel idle and connected for 300 s while the status bar never said Idle."""
    accept = page.locator(".jp-Dialog button.jp-mod-accept")
    load_error = page.locator(".jp-Dialog", has_text="File Load Error")
    idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    status = page.locator(".jp-StatusBar-TextItem", has_text=" | ")
    deadline, settled, last, reloads = time.monotonic() + timeout_s, 0, "nothing read yet", 0
    server_settled_since = None
    while settled < 3:
        if time.monotonic() > deadline:  # what was seen last says which condition never held
            raise AssertionError(f"the kernel of {path} did not settle within {timeout_s:g} s; last reading: {last}")
        page_stuck = server_settled_since is not None and time.monotonic() - server_settled_since > 20
        if (load_error.count() or page_stuck) and reloads < 2:  # as a person would: open it again
            seen = load_error.first.inner_text() if load_error.count() else f"the page does not say Idle: {last}"
            print(f"{path}: {seen!r}; the notebook is opened again")
            reloads += 1
            page.goto(f"{base}/lab/tree/{path}?reset&token={token}", wait_until="load")
            settled, server_settled_since = 0, None
            continue
        if accept.count():
            accept.first.click()
            settled = 0
            continue
        sessions = httpx.get(f"{base}/api/sessions", headers={"Authorization": f"token {token}"}, timeout=5,
                             trust_env=False).json()
        kernels = [s["kernel"] for s in sessions if s.get("path") == path]
        shown = status.all_inner_texts()
        last = (f"{len(kernels)} kernel(s) for {path}: "
                f"{[(k.get('execution_state'), k.get('connections')) for k in kernels]}; status bar {shown}; "
                f"load average {os.getloadavg()[0]:.1f}")
        server_ok = (len(kernels) == 1 and kernels[0].get("execution_state") == "idle"
                     and kernels[0].get("connections", 0) >= 1)
        if not server_ok:
            server_settled_since = None
        elif server_settled_since is None:
            server_settled_since = time.monotonic()
        settled = settled + 1 if server_ok and idle.count() == 1 else 0
        page.wait_for_timeout(400)  # between readings of a condition, bounded by the deadline


def run_all_cells(page, timeout_s: float = 90) -> None:
    """JupyterLab's Run > Run All Cells, as a person would click it; clicked again until a cell shows
    it ran or is running (the menu item stays disabled until the notebook's session is ready)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ran = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    lost = page.locator(".jp-Dialog", has_text="Server Connection Error")
    deadline = time.monotonic() + timeout_s
    while True:
        if lost.count():  # JupyterLab reconnects by itself; its dialog covers the menu until dismissed
            print(f"JupyterLab lost its server connection for a moment: dismissed ({lost.first.inner_text()!r})")
            page.locator(".jp-Dialog button").first.click()
        item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells"))
        try:
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(timeout=10_000)
            item.first.click(timeout=2_000)
            ran.first.wait_for(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            if time.monotonic() > deadline:
                raise AssertionError(f"Run All Cells did not start within {timeout_s:g} s") from None


# The explorer in a real JupyterLab, served by `runbook lab`, in headless Chromium at two widths: tests/run/test_lab.py
# (one JupyterLab start-up for the workspace, the explorer and a phase notebook).
