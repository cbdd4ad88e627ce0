"""A command run in a container (`Engine.exec`, the swarm secret reads) returns all its output, even when the
output comes in the same packet as the engine's HTTP answer: the docker SDK's `exec_start` loses it then (exit
status 0, no output: docker/docker-py#2042), more often the busier the machine.

The engine here is a stand-in on a Unix socket that always sends the answer's headers and the output frames in
one write, the case a busy engine produces now and then. The real engine's side is covered by every test that
reads a swarm task's secrets or runs an init step's verification."""
from __future__ import annotations

import json
import socketserver
import struct
import threading

import docker
import pytest

from runbook_lib.engine.sdk import EngineError, exec_output

EXEC = "e" * 64


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class StandIn(socketserver.StreamRequestHandler):
    """Answers exec start (with or without the upgrade) and exec inspect, as the engine does; everything of an
    answer in one write."""

    output = frame(1, b"line one\n") + frame(2, b"a warning\n") + frame(1, b"line two\n")
    start_status = "200 OK"
    exit_code = 3
    #: when set, each exec start takes the next (exit code, stdout) from here instead
    answers: list[tuple[int, bytes]] = []

    def handle(self):
        request = self.rfile.readline().decode()
        headers = {}
        while (line := self.rfile.readline().decode().strip()):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.rfile.read(int(headers.get("content-length") or 0))
        method, path, _ = request.split(" ", 2)
        if path.endswith("/_ping") or path.endswith("/version"):
            body = b"OK" if path.endswith("/_ping") else json.dumps({"ApiVersion": "1.41", "Version": "20.10"}).encode()
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            return
        if method == "POST" and path.split("?")[0].endswith("/exec") and "/containers/" in path:
            body = json.dumps({"Id": EXEC}).encode()
            self.wfile.write(f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                             f"Connection: close\r\n\r\n".encode() + body)
            return
        if method == "POST" and path.endswith(f"/exec/{EXEC}/start") and StandIn.answers:
            code, out = StandIn.answers.pop(0)
            StandIn.exit_code = code
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
                             + (frame(1, out) if out else b""))
        elif method == "POST" and path.endswith(f"/exec/{EXEC}/start"):
            if self.start_status != "200 OK":
                body = b'{"message": "no such exec"}'
                self.wfile.write(f"HTTP/1.1 {self.start_status}\r\nContent-Type: application/json\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                return
            head = ("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n" if "upgrade" in headers
                    else "HTTP/1.1 200 OK\r\n") + "Content-Type: application/vnd.docker.raw-stream\r\n\r\n"
            self.wfile.write(head.encode() + self.output)  # one write: the headers and the output together
        elif method == "GET" and path.endswith(f"/exec/{EXEC}/json"):
            body = json.dumps({"ID": EXEC, "Running": False, "ExitCode": StandIn.exit_code}).encode()
            self.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                             f"Connection: close\r\n\r\n".encode() + body)


@pytest.fixture
def sock(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = socketserver.ThreadingUnixStreamServer(path, StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(sock):
    return docker.APIClient(base_url=f"unix://{sock}", version="1.41", timeout=10)


def test_output_sent_with_the_answers_headers_is_all_read_and_split_by_stream(api):
    assert exec_output(api, EXEC, 10) == (3, b"line one\nline two\n", b"a warning\n")
    assert exec_output(api, EXEC, 10, demux=False) == (3, b"line one\na warning\nline two\n", b"")


def test_an_output_cut_inside_a_frame_is_an_error_not_a_shorter_output(api, monkeypatch):
    monkeypatch.setattr(StandIn, "output", frame(1, b"complete\n") + frame(1, b"cut short")[:-3])
    with pytest.raises(EngineError, match=r"ended inside a frame"):
        exec_output(api, EXEC, 10)


def test_an_exec_the_engine_refuses_names_its_status_and_message(api, monkeypatch):
    monkeypatch.setattr(StandIn, "start_status", "404 Not Found")
    with pytest.raises(EngineError, match=r"HTTP 404: .*no such exec") as info:
        exec_output(api, EXEC, 10)
    assert info.value.status_code == 404


STAT = "/run/secrets/api_key|32|400|10001|10001|regular file\n/run/secrets/db|5|400|10001|10001|regular file\n"


@pytest.mark.parametrize("answers, error", [
    ([(0, STAT.encode()), (0, b"k" * 32), (0, b"abcde")], None),
    ([(0, STAT.splitlines()[0].encode() + b"\n"), (0, b"k" * 32)], r"exited 0 but described 1 of 2 paths"),
    ([(0, STAT.encode()), (0, b"k" * 32), (0, b"")], r"cat /run/secrets/db` in box gave 0 bytes of a 5-byte file"),
])
def test_a_swarm_secret_read_never_takes_a_lost_answer_for_a_missing_or_shorter_file(sock, monkeypatch, answers, error):
    """The reads a swarm task's secrets go through (stat, then cat per file): an answer with fewer files than
    `stat` exiting 0 says exist, or fewer bytes than it gave as the size, is an error, never a smaller truth."""
    from runbook_lib.engine import Engine

    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    monkeypatch.setattr(StandIn, "answers", list(answers))
    engine = Engine(timeout=10)
    paths = ["/run/secrets/api_key", "/run/secrets/db"]
    if error is None:
        entries = engine.read_mounted_files("box", paths)
        assert [(e.path, e.size, e.mode, len(e.content)) for e in entries] == [
            ("/run/secrets/api_key", 32, 0o400, 32), ("/run/secrets/db", 5, 0o400, 5)]
    else:
        with pytest.raises(EngineError, match=error):
            engine.read_mounted_files("box", paths)
