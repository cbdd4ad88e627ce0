"""`runbook lab` (and `make lab`): JupyterLab on a workspace of one's own, never on the runbook's notebooks.

JupyterLab saves what it opens (autosave, outputs, kernel metadata, checkpoints). Served the runbook's own
notebooks (the package data :data:`~runbook_lib.package_data.NOTEBOOKS`, the files ``runbook run`` executes),
every exploration would become a change to the runbook itself, which the next headless run would execute.
So JupyterLab serves a working directory of copies instead, ``outputs/lab/`` of the project by default
(git-ignored, as all of ``outputs/``): each notebook of the runbook is copied there when its copy is missing,
and a copy that exists is left as the person left it (delete it to get a fresh one). The runbook's notebooks
are outside the served directory, so nothing in JupyterLab can write them; changing the runbook itself is done
in its source, reviewed like code.

An exploration kept as evidence is a run directory: the explorer's "Save as evidence" writes one (records,
verdict, report, manifest, signed like any run: :mod:`runbook_lib.run.explorer_session`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from runbook_lib.errors import EnvironmentProblem, InputError

#: The workspace below a project's ``outputs/``.
LAB_DIR = "lab"
README = """This directory is your JupyterLab workspace (`runbook lab`, `make lab`): copies of the runbook's
notebooks, yours to change and run. It is git-ignored. A notebook deleted here is copied fresh from the runbook
the next time `runbook lab` starts. The runbook's own notebooks are not served: change them in the source,
reviewed like code. To keep an exploration as evidence, use the explorer's "Save as evidence" button: it writes
a run directory under outputs/ (records, verdict, report.html, manifest, signed like any run).
"""


def default_workspace(params_file: str | Path | None = None) -> Path:
    """``outputs/lab`` of the project of ``params_file`` (:func:`~runbook_lib.params.core.default_outputs`:
    the checkout's ``outputs/`` for the demo, ``./outputs`` when no parameters file is found)."""
    from runbook_lib.params.core import default_outputs

    return default_outputs(params_file or None) / LAB_DIR


def prepare_workspace(workspace: Path, source: Path | None = None) -> list[Path]:
    """Make ``workspace`` a working directory of copies of the notebooks in ``source`` (default: the runbook's,
    :data:`~runbook_lib.package_data.NOTEBOOKS`): each ``*.ipynb`` whose copy is missing is copied (a copy that
    exists is the person's and is left alone). Returns the copies made. Refuses a workspace that is, or is
    inside, the runbook's notebooks."""
    if source is None:
        from runbook_lib.package_data import NOTEBOOKS as source
    workspace, source = Path(workspace).resolve(), Path(source).resolve()
    if workspace == source or source in workspace.parents:
        raise InputError(f"the lab workspace {workspace} is the runbook's own notebooks directory (or inside it): "
                         "JupyterLab would write into the runbook. Choose another directory (--dir).")
    workspace.mkdir(parents=True, exist_ok=True)
    made = []
    for nb in sorted(source.glob("*.ipynb")):
        copy = workspace / nb.name
        if not copy.exists():
            shutil.copyfile(nb, copy)
            made.append(copy)
    readme = workspace / "README.md"
    if not readme.exists():
        readme.write_text(README, encoding="utf-8")
    return made


def jupyter_executable() -> str:
    """The ``jupyter`` beside this Python (the virtual environment's), else on PATH; an environment problem
    (exit 3) naming the extra to install when JupyterLab is missing."""
    here = Path(sys.executable).parent / "jupyter"
    found = str(here) if here.is_file() else shutil.which("jupyter")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        found = None
    if not found:
        raise EnvironmentProblem("JupyterLab is not installed: install the lab extra (pip install 'runbook-lib[lab]', "
                                 "or `make lab` in a checkout)")
    return found


def lab_command(workspace: Path, jupyter_args: list[str] = ()) -> list[str]:
    """The command that serves ``workspace`` (and nothing above it) in JupyterLab; ``jupyter_args`` are passed
    on (``--port``, ``--no-browser``...). Root needs ``--allow-root``."""
    cmd = [jupyter_executable(), "lab", f"--ServerApp.root_dir={Path(workspace).resolve()}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in jupyter_args:
        cmd.append("--allow-root")
    return cmd + list(jupyter_args)


def open_lab(workspace: Path | None = None, params_file: str | Path | None = None, jupyter_args: list[str] = (),
             progress=print) -> None:
    """Prepare the workspace and replace this process with JupyterLab serving it. ``params_file``: the
    parameters the notebooks use when their ``params_file`` is empty (``$RUNBOOK_PARAMS`` for the kernels)."""
    if params_file:
        p = Path(params_file).expanduser().resolve()
        if not p.is_file():
            raise InputError(f"--params {params_file}: no such file")
        os.environ["RUNBOOK_PARAMS"] = str(p)
    workspace = Path(workspace) if workspace else default_workspace(params_file)
    made = prepare_workspace(workspace)
    cmd = lab_command(workspace, list(jupyter_args))
    progress(f"runbook lab: workspace {workspace} (copies of the runbook's notebooks"
             + (f"; {len(made)} copied fresh" if made else "") + "). The runbook's own notebooks are not served.")
    progress("runbook lab: the explorer is explore.ipynb; its \"Save as evidence\" writes a signed run directory "
             "under outputs/.")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


def cmd_lab(args: argparse.Namespace) -> int:
    extra = list(args.jupyter_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    open_lab(Path(args.dir) if args.dir else None, args.params, extra, progress=_stderr)
    return 0  # not reached: open_lab replaces this process


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_lab_parser(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="open JupyterLab on a workspace of your own (copies of the notebooks)",
                         description="Copies each of the runbook's notebooks into the workspace when its copy is missing "
                         "(default: outputs/lab/ of the project, git-ignored), then starts JupyterLab serving only "
                         "the workspace: the runbook's own notebooks are never served, so nothing saved there changes "
                         "the runbook. Arguments after -- go to JupyterLab (e.g. -- --port 8890 --no-browser).")
    lab.add_argument("--dir", metavar="DIR", help="the workspace (default: outputs/lab of the parameters' project)")
    lab.add_argument("--params", metavar="FILE", help="the parameters the notebooks use when theirs is empty "
                     "(default: $RUNBOOK_PARAMS, else parameters/demo.yaml found upward)")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    lab.set_defaults(func=cmd_lab)
