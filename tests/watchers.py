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


class SocketProxy:
    """A Unix socket the test controls, passing every byte to the real engine's socket: DOCKER_HOST pointed at it
    is an engine the test can take away (``stop``: the socket gone, open connections cut, as when dockerd exits)
    and bring back (``start``), without touching the shared engine."""

    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.path, self.upstream = Path(path), upstream
        self._server = None
        self._conns: list = []

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> None:
        import socket

        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(64)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server) -> None:
        import socket

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                engine.connect(self.upstream)
            except OSError:
                client.close()
                continue
            self._conns += [client, engine]
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        import socket

        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        import socket

        if self._server:
            try:  # wakes the thread blocked in accept()
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self._conns = []
        self.path.unlink(missing_ok=True)
