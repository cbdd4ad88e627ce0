"""What ships beside the code: the notebooks and the nbconvert template of the report.

The notebooks live at the top of the checkout, ``notebooks/``; a built wheel carries them as the package data
of ``runbook_lib.notebooks`` (pyproject.toml maps the folder with ``package-dir``). Installed, they are found
with :mod:`importlib.resources`; run from a checkout (an editable install), in the checkout's ``notebooks/``.
Templates are ``runbook_lib/templates`` in both. Each is returned as a :class:`pathlib.Path` (papermill and
nbconvert take real paths); a package imported some other way (from a zip) is refused with one clear message.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(name: str) -> Path:
    """``runbook_lib/<name>`` as a real path on the file system."""
    found = files("runbook_lib") / name
    if not isinstance(found, Path):
        raise RuntimeError(f"runbook_lib/{name} is not a directory on the file system ({found!r}): "
                           "install runbook-lib as files (pip install), not inside a zip")
    return found


def notebooks_path() -> Path:
    """The phase notebooks: the wheel's ``runbook_lib/notebooks``, else the checkout's ``notebooks/``."""
    installed = package_path("notebooks")
    if installed.is_dir():
        return installed
    checkout = package_path(".").resolve().parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        return checkout / "notebooks"
    raise RuntimeError(f"the phase notebooks are neither in {installed} (an installed wheel) nor in a checkout's "
                       "notebooks/: reinstall runbook-lib")


#: The phase notebooks, compare.ipynb and explore.ipynb.
NOTEBOOKS = notebooks_path()
#: nbconvert templates (``runbook``: the offline report).
TEMPLATES = package_path("templates")
