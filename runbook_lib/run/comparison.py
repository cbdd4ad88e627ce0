"""The comparison page (``runbook diff --html``): compare.ipynb (notebooks/) executed headless on two run
directories through :mod:`runbook_lib.run.kernels`, then rendered by :func:`runbook_lib.results.diffview.render_page`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from runbook_lib.run.kernels import KERNEL


def render_html(old_dir: str | Path, new_dir: str | Path, out: Path, *, key: Path | None = None,
                kernel: str = KERNEL) -> Path:
    """Run compare.ipynb on two run directories and render it to one offline HTML page at ``out``.
    The notebook verifies both runs (:func:`~runbook_lib.results.compare.compare_runs`); its refusal is raised
    here as :class:`~runbook_lib.results.frames.UnverifiedRun` (exit 1), any other failure as InputError."""
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    from runbook_lib.errors import InputError
    from runbook_lib.package_data import NOTEBOOKS
    from runbook_lib.results.diffview import render_page
    from runbook_lib.results.frames import UnverifiedRun
    from runbook_lib.run import kernels

    old, new = Path(old_dir).resolve(), Path(new_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="runbook-compare-") as tmp:
        executed = Path(tmp) / "compare.ipynb"
        try:
            kernels.execute(NOTEBOOKS / "compare.ipynb", executed,
                            {"old_run": str(old), "new_run": str(new), "key": str(key) if key else ""},
                            cwd=Path(tmp), kernel=kernel)
        except PapermillExecutionError as exc:
            cls = UnverifiedRun if exc.ename == "UnverifiedRun" else InputError
            raise cls(f"compare.ipynb: {exc.ename}: {exc.evalue}") from None
        nb = nbformat.read(executed, as_version=4)
    return render_page(nb, old, new, out)
