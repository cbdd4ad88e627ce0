"""docs/architecture.md lists the layout as it is: every package and module of runbook_lib/ on a line of its
own, every top-level folder the design names, every test folder; nothing listed that is not there. Read from
the file system, so a module added, moved or removed fails here until the page says so."""
from __future__ import annotations

import re

from conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"
TOP_LEVEL = {"notebooks/", "runbook_lib/", "parameters/", "outputs/", "tests/", "demo/", "benchmarks/"}


def listed(prefix: str = "") -> set[str]:
    """The paths that open a list item of the page (``- `runbook_lib/run/runner.py`: ...``)."""
    return {m.group(1) for m in re.finditer(r"^- `([^`]+)`", DOC.read_text(encoding="utf-8"), re.M)
            if m.group(1).startswith(prefix)}


def packages_and_modules() -> set[str]:
    """Every package (a folder with __init__.py, as ``runbook_lib/run/``) and module (``.py`` other than
    ``__init__.py``) of runbook_lib/, relative to the checkout."""
    out = set()
    for path in (ROOT / "runbook_lib").rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        out.add(rel.rsplit("/", 1)[0] + "/" if path.name == "__init__.py" else rel)
    return out


def test_every_package_and_module_of_runbook_lib_has_its_line():
    missing = sorted(packages_and_modules() - listed("runbook_lib/"))
    assert not missing, f"docs/architecture.md does not list: {missing}"


def test_every_runbook_lib_path_the_page_lists_exists():
    gone = sorted(p for p in listed("runbook_lib/") if not (ROOT / p).exists())
    assert not gone, f"docs/architecture.md lists what is not there: {gone}"


def test_the_top_level_folders_of_the_design_are_listed_and_exist():
    tops = {p for p in listed() if p.count("/") == 1 and p.endswith("/")}
    assert TOP_LEVEL <= tops, sorted(TOP_LEVEL - tops)
    assert all((ROOT / p).is_dir() for p in tops), [p for p in tops if not (ROOT / p).is_dir()]


def test_every_test_folder_is_named_on_the_page():
    text = DOC.read_text(encoding="utf-8")
    folders = sorted(p.name for p in (ROOT / "tests").iterdir()
                     if p.is_dir() and any(p.glob("test_*.py")))
    assert folders, "no test folder found"
    missing = [f for f in folders if f"`{f}/`" not in text]
    assert not missing, f"docs/architecture.md does not name the test folders {missing}"
