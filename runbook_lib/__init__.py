"""runbook_lib: deployment verification for Docker Compose, as evidence-backed runbook notebooks.

The notebooks call :func:`open_phase` and then run the check functions of the phase's module in
``runbook_lib.phases``; the ``runbook`` CLI (cli.py) drives the same notebooks headless.
"""
from runbook_lib.errors import RunbookError

__all__ = ["RunbookError", "open_phase", "__version__"]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("runbook-lib")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0+local"


def __getattr__(name: str):
    """``open_phase`` and ``__version__`` are computed on first use: `runbook lint` and the CLI's other
    light commands then never load the engine client (docker, requests), pydantic's models of every
    phase, matplotlib, or importlib.metadata (about 0.1 s of start-up: it reads every installed
    distribution's metadata only when the version is asked for)."""
    if name == "open_phase":
        from runbook_lib.run.phase import open_phase

        return open_phase
    if name == "__version__":
        value = _package_version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'runbook_lib' has no attribute {name!r}")
