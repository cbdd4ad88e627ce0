"""``runbook watch``'s HTTP endpoint: ``/metrics`` (the Prometheus text format of
:class:`~runbook_lib.results.metrics.WatchMetrics`) and ``/healthz`` (200 while the watch loop is alive, 503
once it has stopped), served from a daemon thread beside the loop."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runbook_lib.errors import InputError
from runbook_lib.results.metrics import WatchMetrics
from runbook_lib.run.watch_cli import DEFAULT_LISTEN


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9469`` for IPv6) as (host, port); an input error names the value."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"--listen {value!r}: give HOST:PORT, e.g. {DEFAULT_LISTEN} (0 as the port: any free port)")
    return host, int(port)


class Exporter:
    """The endpoint, listening once entered, closed on exit. ``health()`` says what ``/healthz`` answers:
    (alive, one line of state)."""

    def __init__(self, listen: str, metrics: WatchMetrics, health: Callable[[], tuple[bool, str]]) -> None:
        self.host, self.port = parse_listen(listen)
        self.metrics = metrics
        self.health = health
        self._server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{host}:{self._server.server_address[1] if self._server else self.port}"

    def __enter__(self) -> "Exporter":
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, exporter.metrics.text(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    alive, line = exporter.health()
                    self._answer(200 if alive else 503, (line + "\n").encode(), "text/plain; charset=utf-8")
                else:
                    self._answer(404, b"runbook watch: /metrics or /healthz\n", "text/plain; charset=utf-8")

            def _answer(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # a scrape every few seconds is not news
                pass

        server = type("Server", (ThreadingHTTPServer,), {"address_family": _family(self.host), "daemon_threads": True})
        try:
            self._server = server((self.host, self.port), Handler)
        except OSError as exc:
            raise InputError(f"--listen {self.host}:{self.port}: cannot listen there ({exc.strerror or exc}); "
                             "give a free address") from None
        threading.Thread(target=self._server.serve_forever, name="runbook-exporter", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def _family(host: str):
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET
