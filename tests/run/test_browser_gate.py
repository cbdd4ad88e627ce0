"""The test browser's host gate (tests/browser.py): with ``allow_hosts``, a request to any other host
fails in Chromium's resolver and is recorded, while the allowed host is served as usual. The other host
is this machine's own name, which resolves to a loopback address: without the gate the same request is
answered, so the failure is the gate's doing, not a missing network."""
from __future__ import annotations

import http.server
import socket
import threading

import pytest


@pytest.fixture
def site():
    other = socket.gethostname()
    try:
        reachable = socket.gethostbyname(other).startswith("127.")
    except OSError:
        reachable = False
    if not reachable or other == "127.0.0.1":
        pytest.skip(f"this machine's name {other!r} does not resolve to a loopback address")
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), None)
    port = server.server_address[1]
    page = ("<html><body><p id=out>waiting</p><p id=ok></p><script>"
            "fetch('/ok').then(r => r.text()).then(t => { document.getElementById('ok').textContent = t; });"
            f"fetch('http://{other}:{port}/ok', {{mode: 'no-cors'}}).then(() => 'reached', e => 'failed: ' + e.message)"
            ".then(t => { document.getElementById('out').textContent = t; });"
            "</script></body></html>").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            body = b"served" if self.path == "/ok" else page
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/", f"http://{other}:{port}/ok"
    finally:
        server.shutdown()
        server.server_close()


def _outcome(url: str, **gate) -> tuple[str, str, object]:
    from browser import open_page

    with open_page(url, offline=False, **gate) as (page, log):
        page.wait_for_function("document.getElementById('out').textContent !== 'waiting'", timeout=30_000)
        page.wait_for_function("document.getElementById('ok').textContent !== ''", timeout=30_000)
        return page.inner_text("#out"), page.inner_text("#ok"), log


def test_a_request_to_a_host_not_allowed_fails_and_is_recorded_and_the_allowed_host_is_served(site):
    url, other = site
    out, ok, log = _outcome(url)
    assert (out, ok) == ("reached", "served"), "without the gate the other name must be reachable"
    assert log.blocked == []
    out, ok, log = _outcome(url, allow_hosts=("127.0.0.1",))
    assert out.startswith("failed"), out
    assert ok == "served"
    assert log.blocked == [other], log.blocked
