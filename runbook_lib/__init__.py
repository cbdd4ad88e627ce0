"""runbook_lib: deployment verification for Docker Compose, as evidence-backed runbook notebooks.

The notebooks call :func:`open_phase` and then run the check functions of the phase's module in
``runbook_lib.phases``; the ``runbook`` CLI (cli.py) drives the same notebooks headless.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("runbook-lib")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+local"

from runbook_lib.errors import RunbookError  # noqa: E402

__all__ = ["RunbookError", "open_phase", "__version__"]


def __getattr__(name: str):
    """``open_phase`` is imported on first use: `runbook lint` and the CLI's other light commands then
    never load the engine client (docker, requests), pydantic's models of every phase, or matplotlib."""
    if name == "open_phase":
        from runbook_lib.run.phase import open_phase

        return open_phase
    raise AttributeError(f"module 'runbook_lib' has no attribute {name!r}")
