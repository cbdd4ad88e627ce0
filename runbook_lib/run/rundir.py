"""The run directory a run writes (a new one under ``outputs/``, named for its UTC start and project), and what
a run returns: :class:`RunResult`, with the exit code its verdict means. Shared by an ordinary run and a fleet."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class RunResult:
    run_dir: Path
    verdict: dict     # verdict.json
    summary: dict     # summary.json (derived from the verdict)
    interrupted: str = ""  # the signal that stopped the run, if one did

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return exit_code(self.verdict)


def exit_code(verdict: dict) -> int:
    """The exit code a verdict means: 0 GO, 1 NO-GO."""
    return 0 if verdict["verdict"] == "GO" else 1


def new_run_dir(output: Path, project: str) -> Path:
    """A new run directory ``output/<UTC time>-<project>`` (``-2``, ``-3``... when taken) with its
    ``notebooks/`` and ``results/``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = output / f"{stamp}-{project}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = output / f"{stamp}-{project}-{n}"
    (run_dir / "notebooks").mkdir(parents=True)
    (run_dir / "results").mkdir()
    return run_dir
