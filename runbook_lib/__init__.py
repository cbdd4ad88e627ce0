"""runbook_lib: deployment verification for Docker Compose, as evidence-backed runbook notebooks.

The notebooks call :func:`open_phase` and then run the check functions of the phase's module in
``runbook_lib.phases``; the ``runbook`` CLI (cli.py) drives the same notebooks headless.
"""
import sys

from runbook_lib.errors import RunbookError

# nbformat (the runner, `runbook report`, `verify`, `diff`) loads jsonschema, and jsonschema loads the optional
# `rfc3987_syntax` whenever it is installed (JupyterLab's jupyter-events pulls it in, so the `lab` and `test`
# extras have it): importing it compiles a lark grammar, 1-2.5 s of CPU in every such process, for the
# `iri` string formats that nbformat's schemas never use and that nothing here validates. Marking it absent
# before jsonschema loads makes jsonschema skip those two format checkers (it treats the package as
# optional); an interpreter that loaded jsonschema already is left alone.
if "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]

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
