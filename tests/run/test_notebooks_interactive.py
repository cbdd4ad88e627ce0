"""Every phase notebook, top to bottom, the way JupyterLab runs it: nbclient, the python3 kernel, the
working directory the notebook's, the default parameters (``params_file = ""``: ``$RUNBOOK_PARAMS``, else
``parameters/demo.yaml`` found from that directory upward; ``run_dir = ""``: nothing written). No
papermill, no runner: what a person gets from "Run All Cells".

Phase 1 redeploys the demo stack and phase 4 runs its dependency drills, so this module runs them in
order against the session's own stack (copies of the notebooks beside a ``parameters/demo.yaml``
written for it) and brings the stack back to compose.yaml, healthy, afterwards.
"""
from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from runbook_lib.package_data import NOTEBOOKS as NOTEBOOK_DIR

from conftest import ROOT, stack_tree

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SECRETS_DIR = ROOT / "demo" / ".secrets"
CELL_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def stack_restored_afterwards(demo_stack, tmp_path_factory):
    """The demo stack healthy before the first notebook, and again after the last one, whatever the
    notebooks (a redeployment, drills) or a failure left behind. Yields the directory the notebooks run
    in (the ``parameters/demo.yaml`` found upward from it is the session stack's)."""
    demo_stack.up(progress=lambda s: None)
    yield stack_tree(demo_stack, tmp_path_factory.mktemp("nbtree")) / "notebooks"
    demo_stack.up(progress=lambda s: None)


def _html_outputs(nb) -> list[str]:
    return ["".join(o.get("data", {}).get("text/html", "")) for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "text/html" in o.get("data", {})]


def test_phase_notebooks_are_found():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"], NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_phase_notebook_runs_top_to_bottom_with_its_default_parameters_as_jupyterlab_would(
        stack_restored_afterwards, path):
    committed = path.read_bytes()
    nb = nbformat.reads(committed.decode("utf-8"), as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'params_file = ""' in params[0].source and "RUNBOOK_PARAMS" in params[0].source
    assert 'run_dir = ""' in params[0].source

    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(stack_restored_afterwards)}})
    client.execute()  # raises CellExecutionError naming the cell and the exception

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell ran"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    # It reads as a runbook: a markdown cell first, and tables of check records (one row per check, its
    # status colour, its targets as chips, the evidence folded, with what was expected and seen) as output.
    assert nb.cells[0].cell_type == "markdown"
    tables = [h for h in _html_outputs(nb) if "rb-table" in h]
    assert tables, "no table in the notebook's output"
    if path.stem != "05_signoff":
        records = [h for h in tables if "<th style='width:22%'>Check</th>" in h and "<th>Targets</th>" in h]
        assert records and any("rb-badge" in h and "rb-chip" in h and "<summary>evidence of " in h
                               and "expected: " in h and "actual: " in h for h in records)
    shown = json.dumps([c.outputs for c in code])
    for secret in (p.read_text().strip() for p in SECRETS_DIR.iterdir() if p.is_file()):
        assert secret not in shown, f"a secret value of {SECRETS_DIR} appears in the output of {path.name}"
    assert path.read_bytes() == committed, "running the notebook must not change the committed file"
