"""The STUN/TURN client of smoke.turn against a small in-process server that checks MESSAGE-INTEGRITY the way
RFC 8489 says (the real coturn: the demo's full run and its planted fault): a binding is answered, the
long-term credential dance is 401 then granted (and released), a wrong password is refused with the
server's reason, a stale nonce is answered once more, and silence is reported as data."""
from __future__ import annotations

import hashlib
import hmac
import socket
import struct
import threading

import pytest

from runbook_lib.drills import turn_client as t

REALM, USER, PASSWORD = b"example.org", "alice", "s3cret-password"


def _reply(txid: bytes, kind: int, attrs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(t._attr(k, v) for k, v in attrs)
    return struct.pack("!HHI", kind, len(body), t.MAGIC) + txid + body


def _error(code: int, reason: str) -> bytes:
    return bytes([0, 0, code // 100, code % 100]) + reason.encode()


def _integrity_ok(data: bytes, attrs: dict[int, bytes]) -> bool:
    """Recompute MESSAGE-INTEGRITY over the message up to it, its length field covering it."""
    pos = 20
    while pos < len(data):
        k, n = struct.unpack("!HH", data[pos:pos + 4])
        if k == t.MESSAGE_INTEGRITY:
            head = data[:2] + struct.pack("!H", pos - 20 + 24) + data[4:20]
            key = hashlib.md5(attrs[t.USERNAME] + b":" + REALM + b":" + PASSWORD.encode()).digest()
            return hmac.compare_digest(hmac.new(key, head + data[20:pos], hashlib.sha1).digest(), data[pos + 4:pos + 24])
        pos += 4 + n + (-n % 4)
    return False


@pytest.fixture
def server():
    """(host, port, log): answers binding, allocate (401 with realm and nonce first; one stale nonce), refresh."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    log: list[tuple[int, bool]] = []
    stop = threading.Event()
    nonces = iter([b"stale-nonce", b"fresh-nonce", b"fresh-nonce", b"fresh-nonce", b"fresh-nonce"])

    def serve():
        nonce = next(nonces)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except socket.timeout:
                continue
            kind, attrs = t.decode(data, data[8:20])
            txid, signed = data[8:20], t.USERNAME in attrs
            log.append((kind, signed))
            xor = struct.pack("!BBH", 0, 1, 40000 ^ (t.MAGIC >> 16)) + struct.pack("!I", 0x0A000001 ^ t.MAGIC)
            if kind == t.BINDING:
                out = _reply(txid, t.BINDING | t.SUCCESS, [(t.XOR_MAPPED_ADDRESS, xor)])
            elif not signed:
                out = _reply(txid, kind | t.ERROR, [(t.ERROR_CODE, _error(401, "Unauthorized")), (t.REALM, REALM),
                                                    (t.NONCE, nonce)])
            elif attrs[t.NONCE] != nonce or nonce == b"stale-nonce":
                nonce = next(nonces)
                out = _reply(txid, kind | t.ERROR, [(t.ERROR_CODE, _error(438, "Stale Nonce")), (t.REALM, REALM),
                                                    (t.NONCE, nonce)])
            elif not _integrity_ok(data, attrs):
                out = _reply(txid, kind | t.ERROR, [(t.ERROR_CODE, _error(401, "Unauthorized")), (t.REALM, REALM),
                                                    (t.NONCE, nonce)])
            else:
                out = _reply(txid, kind | t.SUCCESS, [(t.XOR_RELAYED_ADDRESS, xor)])
            sock.sendto(out, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[0], sock.getsockname()[1], log
    stop.set()
    thread.join()
    sock.close()


def test_a_binding_is_answered_with_the_reflexive_address(server):
    host, port, _ = server
    got = t.binding(host, port)
    assert got.ok and got.address == "10.0.0.1:40000" and got.rtt_ms is not None


def test_the_right_password_is_granted_after_a_stale_nonce_and_the_allocation_released(server):
    host, port, log = server
    got = t.allocate(host, port, USER, PASSWORD)
    assert got.ok and got.address == "10.0.0.1:40000", got
    assert log == [(t.ALLOCATE, False), (t.ALLOCATE, True), (t.ALLOCATE, True), (t.REFRESH, True)]
    assert PASSWORD not in repr(got) and PASSWORD not in got.describe()


def test_a_wrong_password_is_refused_with_the_servers_reason(server):
    host, port, log = server
    t.allocate(host, port, USER, PASSWORD)  # uses up the stale nonce
    got = t.allocate(host, port, USER, "wrong-password")
    assert not got.ok and (got.code, got.reason) == (401, "Unauthorized")
    assert got.describe() == "refused: 401 Unauthorized"


def test_silence_is_an_answer_saying_so_not_an_exception():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))  # bound and never read: no ICMP, no answer
        got = t.binding("127.0.0.1", quiet.getsockname()[1], timeout=0.3)
    assert not got.ok and got.code is None and "no answer" in got.error


def test_with_no_smoke_turn_a_model_running_a_turn_server_is_not_verified_and_one_without_is_a_fact():
    """smoke.turn names no server: SKIP naming the TURN server the compose model runs (nobody asked it), INFO
    when the model runs none (nothing to ask)."""
    from types import SimpleNamespace

    from runbook_lib.phases.smoke.turn import turn

    def ctx(services):
        return SimpleNamespace(params=SimpleNamespace(smoke=SimpleNamespace(turn=[])), model={"services": services})

    web = {"image": "nginx:1.25", "ports": [{"target": 80, "published": "8080"}]}
    [rec] = turn(ctx({"web": web, "relay": {"image": "coturn/coturn:4.6", "ports": [{"target": 3478, "protocol": "udp"}]}}))
    assert (rec.status, rec.evidence["turn_servers_in_the_model"].keys()) == ("SKIP", {"relay"})
    assert "relay" in rec.actual and "smoke.turn" in rec.actual
    [rec] = turn(ctx({"web": web}))
    assert rec.status == "INFO" and rec.evidence["turn_servers_in_the_model"] == {}
