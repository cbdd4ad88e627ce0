"""The wheel of this working tree, built as a user's pip would build it (tests of the installed toolkit)."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, track


def build_wheel(tmp: Path) -> Path:
    """The wheel of this working tree (committed or not), built under ``tmp`` from a copy of the files git
    would keep (tracked, and untracked but not ignored), so no stale build/ directory of the checkout leaks
    in and nothing is written into the checkout."""
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp / "wheelhouse"
    out.mkdir(parents=True)
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(out),
        str(src)]
    proc = track(argv, subprocess.run(argv, cwd=out, capture_output=True, text=True, timeout=600))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [whl] = out.glob("runbook_lib-*.whl")
    return whl


def session_wheel(basetemp: Path) -> Path:
    """:func:`build_wheel`, once per test session: the first test to ask builds it (under a lock), the others,
    on any pytest-xdist worker, get the same file. ``basetemp`` is the session's base temporary directory
    (``tmp_path_factory.getbasetemp()``, the parent of a test's ``tmp_path``); pytest-xdist's workers share its
    parent, a directory of this session alone."""
    base = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    with open(base / "wheel.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        built = sorted((base / "wheel" / "wheelhouse").glob("runbook_lib-*.whl"))
        if built:
            return built[0]
        shutil.rmtree(base / "wheel", ignore_errors=True)  # what a failed build left
        return build_wheel(base / "wheel")
