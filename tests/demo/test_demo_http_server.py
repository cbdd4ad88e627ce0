"""The demo's HTTP server (demo/app/http_server.py): a client that hangs up before its answer is written is one
log line, never a traceback on stderr (phase 3 counts tracebacks in a container's log as runtime errors)."""
from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from conftest import ROOT, wait_for

sys.path.insert(0, str(ROOT / "demo" / "app"))
from http_server import Server  # noqa: E402


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the standard library's name
        self.send_response(200)
        self.end_headers()
        for _ in range(200):  # a large answer, written after the client is gone
            self.wfile.write(b"x" * 65536)
            time.sleep(0.005)

    def log_message(self, *args):  # no access log in this test
        pass


def test_a_client_hanging_up_is_one_log_line_and_no_traceback(capsys):
    logged = []
    server = Server(("127.0.0.1", 0), _Slow, lambda event, **f: logged.append((event, f)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            client.recv(1024)
        wait_for(lambda: logged, 10, "the server's log line about the client that hung up")
    finally:
        server.shutdown()
        server.server_close()
    [(event, fields)] = logged
    assert event == "client_gone" and fields["error"] in ("BrokenPipeError", "ConnectionResetError")
    assert "Traceback" not in capsys.readouterr().err
