"""The runner's own status per phase, and the notebooks as committed and as papermill runs them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from runbook_lib.package_data import NOTEBOOKS as NOTEBOOK_DIR
from runbook_lib.run import kernels, runner

from conftest import track

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs_and_have_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "params_file" in params[0].source and "run_dir" in params[0].source
    assert nb.metadata.kernelspec.name == "python3"


def test_the_default_kernel_is_the_python_running_runbook_whatever_kernelspec_jupyter_would_find(tmp_path, monkeypatch):
    """A ``python3`` kernelspec on Jupyter's path (here $JUPYTER_PATH; as well the user's directory after an
    ``ipykernel install --user`` from another environment) must not run the notebooks with another Python."""
    elsewhere = tmp_path / "kernels" / "python3"
    elsewhere.mkdir(parents=True)
    (elsewhere / "kernel.json").write_text(json.dumps({"argv": ["/nonexistent/python", "-m", "ipykernel_launcher",
                                                               "-f", "{connection_file}"],
                                                      "display_name": "another Python", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == "/nonexistent/python", "Jupyter alone takes it"
    for km in (kernels.TrackedKernelManager(kernel_name=kernels.KERNEL),
               kernels.OwnPythonKernelManager(kernel_name="python3")):
        assert km.kernel_spec.argv[:3] == [sys.executable, "-m", "ipykernel_launcher"]
    kernels.TrackedKernelManager.live.clear()


def _fixture_notebook(dir_: Path, phase: str, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('params_file = ""\nrun_dir = ""')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, dir_ / f"{phase}.ipynb")


@pytest.mark.docker
@pytest.mark.parametrize("source, detail", [
    ("import time\ntime.sleep(60)", "Timeout"),
    ("import os\nos._exit(1)", "Kernel"),
    ("raise RuntimeError('boom')", "RuntimeError: boom"),
], ids=["cell-timeout", "dead-kernel", "exception"])
def test_a_phase_that_does_not_complete_is_error_and_no_go(demo_stack, write_params, tmp_path, source, detail):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _fixture_notebook(nbdir, "00_preflight", source)
    params = write_params({"phases": ["00_preflight"], "cell_timeout_s": 3})
    result = runner.run(params, output=tmp_path / "out", notebooks=nbdir, progress=lambda s: None)
    assert result.verdict["verdict"] == "NO-GO" and result.exit_code == 1
    phase = result.summary["phases"][0]
    assert phase["status"] == "error" and detail.lower() in phase["detail"].lower()
    recs = json.loads((result.run_dir / "results" / "00_preflight.json").read_text())
    assert recs[-1]["id"] == "runner.phase" and recs[-1]["status"] == "ERROR"
    assert (result.run_dir / "notebooks" / "00_preflight.ipynb").exists(), "the failed notebook is kept"


@pytest.mark.docker
def test_a_failed_preflight_skips_the_destructive_phase(demo_stack, engine, write_params, tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _fixture_notebook(nbdir, "00_preflight", "import runbook_lib as rb\nphase = rb.open_phase('00_preflight', params_file, run_dir)\n"
                      "from runbook_lib.results.records import Check\n"
                      "phase.add([Check('preflight.x', 'x', phase='00_preflight', severity='critical')"
                      ".record('t', 'FAIL', expected='e', actual='a')])")
    _fixture_notebook(nbdir, "01_controlled_redeployment", "raise SystemExit('must not run')")
    before = {v.name: v.id for v in engine.project_containers(demo_stack.project)}
    params = write_params({"phases": ["00_preflight", "01_controlled_redeployment"]})
    result = runner.run(params, output=tmp_path / "out", notebooks=nbdir, progress=lambda s: None)
    assert result.verdict["verdict"] == "NO-GO"
    assert [p["status"] for p in result.summary["phases"]] == ["completed", "skipped"]
    assert "runner.phase@01_controlled_redeployment" in result.summary["blockers"]
    assert {v.name: v.id for v in engine.project_containers(demo_stack.project)} == before


@pytest.mark.docker
def test_the_preflight_notebook_runs_directly_with_papermill(demo_stack, demo_params, tmp_path):
    out = tmp_path / "00.ipynb"
    argv = [sys.executable, "-m", "papermill", str(NOTEBOOK_DIR / "00_preflight.ipynb"), str(out),
            "-p", "params_file", str(demo_params), "--cwd", str(tmp_path)]
    proc = track(argv, subprocess.run(argv, capture_output=True, text=True, timeout=300))
    assert proc.returncode == 0, proc.stderr[-2000:]
    nb = nbformat.read(out, as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "preflight.engine" in html and "PASS" in html


@pytest.mark.docker
def test_each_phase_runs_in_a_fresh_kernel_warmed_up_for_it_and_none_outlives_the_run(write_params, tmp_path):
    """Kernels are started two phases ahead and warmed up by importing what their phase imports (matplotlib for
    phase 4's drill timelines): the notebook's namespace is still empty of it, no state crosses phases, every kernel is gone when
    the run returns (a finished phase's kernel is shut down while the next phase runs)."""
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    phases = ["00_preflight", "02_secrets_security", "04_smoke_tests"]  # fixture notebooks: nothing is touched
    for phase in phases:
        _fixture_notebook(nbdir, phase, (
            "import json, os, sys\nfrom pathlib import Path\n"
            f"Path(run_dir, 'kernel-{phase}.json').write_text(json.dumps({{'pid': os.getpid(), "
            "'matplotlib': 'matplotlib.figure' in sys.modules, 'phase_module': sorted(m for m in sys.modules "
            "if m.startswith('runbook_lib.phases.') and m.count('.') == 2), "
            "'names': sorted(n for n in globals() if not n.startswith('_') and n not in ('In', 'Out', 'exit', 'quit', "
            "'get_ipython', 'open', 'params_file', 'run_dir', 'json', 'os', 'sys', 'Path')), "
            "'seen': sorted(p.name for p in Path(run_dir).glob('kernel-*.json'))}))\n"
            f"Path(run_dir, 'results', '{phase}.json').write_text('[]')"))
    params = write_params({"phases": phases})
    result = runner.run(params, output=tmp_path / "out", notebooks=nbdir, progress=lambda s: None)
    assert [p["status"] for p in result.summary["phases"]] == ["completed"] * 3, result.summary["phases"]
    seen = {p: json.loads((result.run_dir / f"kernel-{p}.json").read_text()) for p in phases}
    pids = [seen[p]["pid"] for p in phases]
    assert len(set(pids)) == 3, "a fresh kernel per phase"
    assert seen["04_smoke_tests"]["matplotlib"] and not seen["02_secrets_security"]["matplotlib"]
    assert "runbook_lib.phases.smoke" in seen["04_smoke_tests"]["phase_module"]
    assert "runbook_lib.phases.security" in seen["02_secrets_security"]["phase_module"]
    assert all(seen[p]["names"] == [] for p in phases), {p: seen[p]["names"] for p in phases}  # warm-up binds nothing
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), \
            f"kernel {pid} outlived the run"


@pytest.mark.docker
def test_a_sigint_while_validating_still_writes_the_run_directory_with_every_phase_skipped(write_params, tmp_path):
    """The runner's signal handler is in place before validation (a fleet's target interrupted for its time
    budget as it starts): validation ends, every phase is recorded SKIP, the run directory is written, NO-GO."""
    import signal
    import time

    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _fixture_notebook(nbdir, "00_preflight", "raise SystemExit('must not run')")
    params = write_params({"phases": ["00_preflight"]})
    child = tmp_path / "child.py"
    child.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom runbook_lib.run import runner\n"
        "real = runner.validate\n"
        "def slow(*a, **k):\n    print('validating', flush=True)\n    time.sleep(3)\n    return real(*a, **k)\n"
        "runner.validate = slow\n"
        f"r = runner.run({str(params)!r}, output={str(tmp_path / 'out')!r}, notebooks=Path({str(nbdir)!r}), "
        "progress=lambda s: None)\n"
        "print('RESULT', r.run_dir, r.interrupted, r.verdict['verdict'], flush=True)\n")
    proc = subprocess.Popen([sys.executable, str(child)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "validating"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    track([sys.executable, str(child)], subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert proc.returncode == 0, err[-2000:]
    [line] = [l for l in out.splitlines() if l.startswith("RESULT")]
    _, run_dir, interrupted, verdict = line.split()
    assert interrupted == "SIGINT" and verdict == "NO-GO"
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    assert [(p["phase"], p["status"]) for p in summary["phases"]] == [("00_preflight", "skipped")]
    assert "interrupted (SIGINT)" in summary["phases"][0]["detail"]
