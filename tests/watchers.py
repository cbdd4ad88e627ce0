"""A `runbook watch` process for tests: started like a user starts it (its own session), its output read line by
line in a thread (so a test waits on a line, never a fixed sleep), its metrics read through prometheus_client's
text parser, stopped by SIGTERM and, whatever happened, killed at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import start_cli, wait_for


class Watcher:
    def __init__(self, *args: str, listen: str, env: dict | None = None) -> None:
        self.listen = listen
        self.proc = start_cli("watch", *args, "--listen", listen, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, needle: str, timeout: float, after: int = 0) -> str:
        """The first line from index ``after`` on that contains ``needle``."""
        def found():
            return next((ln for ln in self.lines[after:] if needle in ln), None)
        try:
            return wait_for(found, timeout, f"a watcher line with {needle!r}", interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the watcher said:\n{self.text[-4000:]}") from None

    def published(self, timeout: float, mark: int | None = None) -> str:
        """The next run's published line (GO/NO-GO) from line ``mark`` (default: from now)."""
        mark = len(self.lines) if mark is None else mark

        def found():
            return next((ln for ln in self.lines[mark:] if ln.startswith(("runbook watch: GO", "runbook watch: NO-GO"))), None)
        try:
            return wait_for(found, timeout, "the next published run", interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the watcher said:\n{self.text[-4000:]}") from None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://{self.listen}{path}", timeout=5)

    def metrics(self) -> dict[tuple, float]:
        """{(sample name, sorted labels): value} of /metrics."""
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(self.get("/metrics").text) for s in f.samples}

    def metric(self, name: str) -> float | None:
        return next((v for (n, _), v in self.metrics().items() if n == name), None)

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds until it exited)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def runs_in(output: Path) -> list[Path]:
    return sorted(p for p in output.iterdir() if p.is_dir() and not p.is_symlink() and (p / "run.json").is_file())


def free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def bridge_gateway() -> str | None:
    """The address of the engine's default bridge on this host (what `host-gateway` resolves to in a container),
    when the engine is local and it is one of this host's addresses."""
    proc = subprocess.run(["docker", "network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}"],
                          capture_output=True, text=True, timeout=30)
    gateway = proc.stdout.strip()
    if proc.returncode or not gateway:
        return None
    try:
        free_port(gateway)
    except OSError:
        return None
    return gateway

