"""The demo's HTTP server (the app services and the MinIO stand-in): the standard library's threading server,
where a client that hangs up before its answer is written is one JSON log line, as a real server logs it, not
an "Exception occurred during processing of request" traceback on stderr (which phase 3's log check rightly
counts as an error)."""
from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Callable


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler, log: Callable[..., None]) -> None:
        super().__init__(address, handler)
        self.log = log

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):  # BrokenPipeError, ConnectionResetError: the client went away
            self.log("client_gone", client=client_address[0], error=type(exc).__name__)
            return
        super().handle_error(request, client_address)
