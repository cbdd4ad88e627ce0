"""Shared fixtures. Integration tests use the real Docker engine and a real demo stack; nothing about
Docker is mocked. Tests track what they create and remove it.

Tests own their stack: the session deploys the demo under a project name of its own (``rbtest-...``,
one per pytest-xdist worker) on free host ports (:meth:`runbook_demo.Stack.isolated`), and every
parameters file a test uses points at that stack. A user's ``make demo`` (``secureconnect-demo``) or
another checkout's stack is never brought up, down or redeployed by the suite.

Every child process a test starts through :func:`run_cli` / :func:`start_cli` is remembered; when the
test fails, its command, exit status, stdout and stderr are printed with the failure.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "parameters"
USER_PROJECT = "secureconnect-demo"

# (argv, CompletedProcess or Popen) of the child processes the running test started.
_CHILDREN: list[tuple[list[str], object]] = []


def track(argv: list[str], proc):
    """Remember a child process so a failing test prints its output."""
    _CHILDREN.append((list(argv), proc))
    return proc


def run_cli(*args: str, env: dict | None = None, timeout: float = 900, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the `runbook` CLI as a user would (a separate process) and capture its output."""
    argv = [sys.executable, "-m", "runbook_lib.cli", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        track(argv, subprocess.CompletedProcess(argv, "timeout", exc.stdout or "", exc.stderr or ""))
        raise
    return track(argv, proc)


def start_cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    """Start the `runbook` CLI in its own session (stdout and stderr merged, text); tracked like run_cli."""
    argv = [sys.executable, "-m", "runbook_lib.cli", *args]
    return track(argv, subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True, env={**os.environ, **(env or {})}))


def _child_output(argv: list[str], proc) -> str:
    if isinstance(proc, subprocess.Popen):
        if proc.poll() is None:
            proc.kill()
        try:
            out, err = proc.communicate(timeout=10)
        except (ValueError, OSError, subprocess.TimeoutExpired):  # already read by the test
            out, err = "(read by the test)", ""
        rc = proc.returncode
    else:
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    tail = lambda t: (t or "")[-6000:]  # noqa: E731
    return f"$ {' '.join(argv)}\nexit status: {rc}\n--- stdout ---\n{tail(out)}\n--- stderr ---\n{tail(err)}\n"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _CHILDREN:
        report.sections.append((f"child runbook processes ({call.when})",
                                "\n".join(_child_output(a, p) for a, p in _CHILDREN)))
    if call.when == "teardown":
        _CHILDREN.clear()


# -- the order files are handed to pytest-xdist's workers ------------------------------------------------
# `make test` runs whole files per worker (--dist loadfile) in collection order (--no-loadscope-reorder): a file
# takes a worker until it ends, so the longest files go first and the many short ones fill in around them; a
# long file handed out last would run alone at the end. The longest first, by each file's summed test time in a
# whole run (pytest --junitxml; benchmarks/schedule.py ranks them and simulates the schedule); a file not
# named here keeps its place in the collection, after these.
LONGEST_FIRST = (
    "run/test_run_demo.py",
    "phases/test_security.py",
    "phases/test_smoke.py",
    "swarm/test_swarm_demo.py",
    "run/test_rollback.py",
    "lint/test_lint_workflow.py",
    "phases/test_production_drift_orphans.py",
    "fleet/test_fleet.py",
    "run/test_read_only_run.py",
    "engine/test_engine_restart.py",
    "run/test_notebooks_interactive.py",
    "phases/test_production.py",
    "phases/test_security_scanner_rules.py",
    "phases/test_demo_planted_faults.py",
    "report/test_diff.py",
    "drills/test_drills_restore.py",
    "run/test_watch_alerts.py",
    "phases/test_redeploy_rolling.py",
    "swarm/test_swarm_phases.py",
    "fleet/test_fleet_one_engine.py",
    "run/test_lab.py",
    "phases/test_one_reading_per_phase.py",
    "init/test_init.py",
    "phases/test_signoff.py",
    "run/test_install.py",
    "init/test_init_classifies_services.py",
    "run/test_deploy_lock.py",
    "run/test_runner_notebooks.py",
    "phases/test_production_frameworks.py",
    "run/test_watch.py",
)


def pytest_collection_modifyitems(config, items):
    tests = ROOT / "tests"
    for name in LONGEST_FIRST:
        if not (tests / name).is_file():
            warnings.warn(pytest.PytestConfigWarning(f"conftest.LONGEST_FIRST names {name}, which is not a test file"))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def place(item) -> int:
        try:
            return rank.get(item.path.relative_to(tests).as_posix(), len(rank))
        except ValueError:  # a test outside tests/
            return len(rank)

    items.sort(key=place)  # stable: each file's tests keep their order, the other files theirs


# -- the user's demo (secureconnect-demo), compared over the whole session ---------------------------------
def pytest_addoption(parser):
    parser.addoption("--user-stack-must-stay", action="store_true",
                     help=f"fail the run when a container of {USER_PROJECT!r} changed (id or start time) during it")


def _user_snapshot() -> dict | None:
    try:
        from runbook_lib.engine import Engine

        return snapshot(Engine(timeout=10), USER_PROJECT)
    except Exception:  # noqa: BLE001 - no engine: nothing to compare
        return None


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist), once
        session.config._rb_user_before = _user_snapshot()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_rb_user_before", None)
    if not before:
        return
    after = _user_snapshot() or {}
    changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    session.config._rb_user_report = (
        f"{USER_PROJECT}: untouched ({len(before)} containers, ids and start times compared)" if not changed else
        f"{USER_PROJECT}: CHANGED during the run: {', '.join(changed)} (the suite never deploys it; was it "
        "redeployed by someone else?)")
    if changed and session.config.getoption("--user-stack-must-stay"):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, config):
    line = getattr(config, "_rb_user_report", None)
    if line:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def runbook_state(tmp_path_factory):
    """The deploy locks and the journals' copies (runbook_lib.run.lock) of this session go to a directory of its
    own, never the user's ~/.local/state/runbook; every runbook process a test starts inherits it."""
    if "RUNBOOK_STATE_DIR" not in os.environ:
        os.environ["RUNBOOK_STATE_DIR"] = str(tmp_path_factory.mktemp("runbook-state"))
    return Path(os.environ["RUNBOOK_STATE_DIR"])


@pytest.fixture(scope="session", autouse=True)
def demo_secrets():
    """The demo's generated secrets exist before any test (a fresh clone has none until a stack comes up):
    lint and preflight tests read them, and so do the redaction checks. Idempotent; values never printed."""
    import runbook_demo as demo

    return demo.ensure_secrets()


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def no_engine(tmp_path):
    """An environment whose DOCKER_HOST names no engine: what `runbook lint` must do without one."""
    return {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}


def write_compose(tmp_path: Path, text: str, name: str = "compose.yaml") -> Path:
    """``text`` (dedented) written to ``tmp_path/name``."""
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """This session's demo stack (not started): its own project name and free ports. One per xdist worker."""
    import runbook_demo as demo

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    return demo.Stack.isolated(tmp_path_factory.mktemp("stack"), prefix=f"rbtest-{worker}")


@pytest.fixture
def write_params(tmp_path, stack):
    """Write a parameters file for this session's stack, derived from demo.yaml (project name, ports and
    env files adjusted, paths made absolute) with changes applied (dotted keys; None removes one)."""

    def _write(changes: dict | None = None, name: str = "params.yaml", base: Path = PARAMS / "demo.yaml") -> Path:
        return stack.write_params(tmp_path / name, changes, base=base)

    return _write


@pytest.fixture(scope="session")
def demo_params(stack, tmp_path_factory) -> Path:
    """parameters/demo.yaml for this session's stack (what tests pass to `runbook run --params`)."""
    return stack.write_params(tmp_path_factory.mktemp("params") / "demo.yaml")


@pytest.fixture(scope="session")
def engine():
    """The real Docker engine. Missing here means the set-up did not run: that is a failure, not a skip."""
    from runbook_lib.engine import Engine

    return Engine()


@pytest.fixture(scope="session")
def demo_stack(engine, stack, demo_params):
    """This session's demo stack, up and healthy for the whole session, with the post-deploy steps of
    demo.yaml done (the media bucket: a fresh stack has fresh volumes, and phase 4's storage flow needs
    it); removed at the end with its volumes (it is the suite's own)."""
    from runbook_lib.params import load_params

    stack.up(progress=lambda s: None)
    for step in load_params(demo_params).redeploy.init_steps:
        [view] = engine.service_containers(stack.project, step.service)
        code, out = engine.exec(view.id, step.command, timeout=step.timeout_s)
        assert code == 0, f"init step {step.name!r} failed ({code}): {out[-2000:]}"
    yield stack
    stack.down(volumes=True)


@pytest.fixture
def healthy_demo(demo_stack):
    """The session's demo stack as compose.yaml says, healthy again if an earlier test changed it."""
    demo_stack.up(progress=lambda s: None)
    return demo_stack


def stack_tree(stack, root: Path) -> Path:
    """``root/parameters/demo.yaml`` written for ``stack`` and an empty ``root/notebooks/``: a notebook
    copied there finds, with its default ``params_file = ""``, ``parameters/demo.yaml`` upward from its
    directory, and so works on the test's own stack (and writes an interactive drill's journal under
    ``root/outputs/``)."""
    (root / "parameters").mkdir(parents=True, exist_ok=True)
    (root / "notebooks").mkdir(exist_ok=True)
    stack.write_params(root / "parameters" / "demo.yaml")
    return root


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll a condition until it holds or the deadline passes (returns its last truthy value); the failure
    says what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def service_container(engine, service: str, project: str):
    """The one container of ``service`` in ``project``."""
    [view] = engine.service_containers(project, service)
    return view


def snapshot(engine, project: str) -> dict[str, tuple[str, str]]:
    """{container name: (id, start time)} of a project: what "untouched" is compared on."""
    return {v.name: (v.id, v.started_at) for v in engine.project_containers(project)}


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [r for p in sorted((run_dir / "results").glob("*.json")) for r in json.loads(p.read_text())]
    return summary, records


def run_dir_from(stdout: str) -> Path:
    for line in stdout.splitlines():
        if line.startswith("report: "):
            return Path(line.split(": ", 1)[1]).parent
    raise AssertionError(f"no report line in output:\n{stdout}")


PHASE2_FAULTS = """services:
  chat-service:
    environment:
      JWT_SECRET: a-literal-jwt-signing-key
  video-service:
    secrets: [jwt_secret, redis_password, rb_test_world]
    environment:
{leak}      RB_TEST_WORLD_FILE: /run/secrets/rb_test_world
  storage-service:
    environment:
      LICENSE_FILE: /run/secrets/no_such_secret
  api-gateway:
    privileged: true
  auth-service:
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
  redis:
    ports:
      - "{redis_port}:6379"
secrets:
  rb_test_world:
    file: {world}
"""


def phase2_faults_override(tmp_path: Path, world_secret: Path, leak_value: str | None = None,
                           redis_port: int = 16379) -> Path:
    """A compose override of the demo planting phase 2's faults, one per service: a literal
    JWT_SECRET (chat), a world-writable secret file (video), a *_FILE variable naming a path no secret
    mounts (storage), privileged (gateway), the Docker socket mounted (auth), redis published on every
    interface on ``redis_port`` (a deployed override needs a free one). ``leak_value`` also copies a
    secret's value into an innocently named variable (video)."""
    leak = f'      GREETING_TEXT: "{leak_value}"\n' if leak_value else ""
    override = tmp_path / "faults.yaml"
    override.write_text(PHASE2_FAULTS.format(leak=leak, world=world_secret, redis_port=redis_port))
    return override
