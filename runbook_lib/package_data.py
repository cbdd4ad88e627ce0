"""What ships inside the package besides code: the notebooks (``runbook_lib/notebooks``) and the
nbconvert template (``runbook_lib/templates``).

Found with :mod:`importlib.resources`, never by walking up from a source file, so the same code works in a
checkout (editable install) and in an installed wheel. The wheel installs them as plain files (papermill
and nbconvert take real paths), so each is returned as a :class:`pathlib.Path`; a package imported some
other way (from a zip) is refused with one clear message.
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


#: The phase notebooks, compare.ipynb and explore.ipynb.
NOTEBOOKS = package_path("notebooks")
#: nbconvert templates (``runbook``: the offline report).
TEMPLATES = package_path("templates")
