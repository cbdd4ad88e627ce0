"""A small STUN/TURN client over UDP for the smoke tests: a STUN binding request (RFC 8489) and a TURN
allocation with long-term credentials (RFC 8656: the first request is answered 401 with a realm and a nonce,
the second carries USERNAME, REALM, NONCE and a MESSAGE-INTEGRITY keyed with MD5(user:realm:password)).

Every answer, refusal and silence comes back as a :class:`StunAnswer` (data, never an exception); a
successful allocation is released at once (a Refresh with LIFETIME 0), so a check leaves nothing behind.
The password is used to key the integrity check only: it is never in an answer or its evidence.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

MAGIC = 0x2112A442
BINDING, ALLOCATE, REFRESH = 0x0001, 0x0003, 0x0004
SUCCESS, ERROR = 0x0100, 0x0110  # class bits added to a method
MAPPED_ADDRESS, USERNAME, MESSAGE_INTEGRITY, ERROR_CODE = 0x0001, 0x0006, 0x0008, 0x0009
LIFETIME, REALM, NONCE, XOR_RELAYED_ADDRESS = 0x000D, 0x0014, 0x0015, 0x0016
REQUESTED_TRANSPORT, XOR_MAPPED_ADDRESS, FINGERPRINT = 0x0019, 0x0020, 0x8028
UDP = 17


@dataclass
class StunAnswer:
    """What one exchange came to: ``ok`` (a success response), else the server's error code and reason,
    or ``error`` when no valid answer came (timeout, refused...)."""

    ok: bool
    code: int | None = None
    reason: str = ""
    error: str = ""
    address: str = ""            # the mapped (binding) or relayed (allocation) address, "ip:port"
    rtt_ms: float | None = None
    attrs: dict[int, bytes] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        if self.ok:
            return f"answered in {self.rtt_ms:.0f} ms" + (f", address {self.address}" if self.address else "")
        if self.code is not None:
            return f"refused: {self.code} {self.reason}".rstrip()
        return self.error


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def encode(method: int, txid: bytes, attrs: list[tuple[int, bytes]], key: bytes | None = None) -> bytes:
    """A request: header, attributes, then MESSAGE-INTEGRITY (with ``key``) and FINGERPRINT."""
    body = b"".join(_attr(k, v) for k, v in attrs)
    if key is not None:
        head = struct.pack("!HHI", method, len(body) + 24, MAGIC) + txid
        body += _attr(MESSAGE_INTEGRITY, hmac.new(key, head + body, hashlib.sha1).digest())
    head = struct.pack("!HHI", method, len(body) + 8, MAGIC) + txid
    crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
    return head + body + _attr(FINGERPRINT, struct.pack("!I", crc))


def decode(data: bytes, txid: bytes) -> tuple[int, dict[int, bytes]] | None:
    """(message type, attributes) of an answer to ``txid``, or None for anything else."""
    if len(data) < 20:
        return None
    kind, length, magic = struct.unpack("!HHI", data[:8])
    if magic != MAGIC or data[8:20] != txid or len(data) < 20 + length:
        return None
    attrs, pos = {}, 20
    while pos + 4 <= 20 + length:
        k, n = struct.unpack("!HH", data[pos:pos + 4])
        attrs.setdefault(k, data[pos + 4:pos + 4 + n])
        pos += 4 + n + (-n % 4)
    return kind, attrs


def xor_address(value: bytes) -> str:
    if len(value) < 8 or value[1] != 0x01:
        return ""
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC >> 16)
    ip = struct.unpack("!I", value[4:8])[0] ^ MAGIC
    return f"{socket.inet_ntoa(struct.pack('!I', ip))}:{port}"


def _answer(kind: int, attrs: dict[int, bytes], rtt_ms: float) -> StunAnswer:
    if kind & 0x0110 == SUCCESS:
        addr = xor_address(attrs.get(XOR_RELAYED_ADDRESS) or attrs.get(XOR_MAPPED_ADDRESS) or b"")
        return StunAnswer(True, address=addr, rtt_ms=rtt_ms, attrs=attrs)
    err = attrs.get(ERROR_CODE, b"")
    code = (err[2] & 0x07) * 100 + err[3] if len(err) >= 4 else None
    return StunAnswer(False, code, err[4:].decode(errors="replace").strip(), rtt_ms=rtt_ms, attrs=attrs)


def exchange(sock: socket.socket, addr: tuple[str, int], method: int, attrs: list[tuple[int, bytes]],
             key: bytes | None = None, timeout: float = 2.0, tries: int = 3) -> StunAnswer:
    """Send one request (retransmitted ``tries`` times over ``timeout`` seconds) and read its answer."""
    txid = os.urandom(12)
    packet = encode(method, txid, attrs, key)
    start = time.monotonic()
    for attempt in range(tries):
        try:
            sock.sendto(packet, addr)
        except OSError as exc:
            return StunAnswer(False, error=f"cannot send to {addr[0]}:{addr[1]}/udp: {exc.strerror or exc}")
        wait_until = start + timeout * (attempt + 1) / tries
        while (left := wait_until - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(2048)
            except socket.timeout:
                break
            except OSError as exc:  # ICMP port unreachable: nothing listens there
                return StunAnswer(False, error=f"{addr[0]}:{addr[1]}/udp: {exc.strerror or exc}")
            got = decode(data, txid)
            if got:
                return _answer(got[0], got[1], (time.monotonic() - start) * 1000)
    return StunAnswer(False, error=f"no answer from {addr[0]}:{addr[1]}/udp within {timeout:g}s")


def binding(host: str, port: int, timeout: float = 2.0) -> StunAnswer:
    """A STUN binding request; ``address`` is the reflexive address the server saw."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        return exchange(sock, (host, port), BINDING, [], timeout=timeout)


def allocate(host: str, port: int, username: str, password: str, timeout: float = 2.0) -> StunAnswer:
    """A TURN allocation (UDP relay) with long-term credentials; released again when it succeeds. ``address``
    is the relayed address. A 401 to the signed request is a refusal of the credentials."""
    transport = [(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        first = exchange(sock, (host, port), ALLOCATE, transport, timeout=timeout)
        for _ in range(2):  # a 438 (stale nonce) is answered once more with the new nonce
            if first.ok or first.code not in (401, 438) or REALM not in first.attrs or NONCE not in first.attrs:
                return first
            realm, nonce = first.attrs[REALM], first.attrs[NONCE]
            key = hashlib.md5(username.encode() + b":" + realm + b":" + password.encode()).digest()
            signed = [(USERNAME, username.encode()), (REALM, realm), (NONCE, nonce)]
            got = exchange(sock, (host, port), ALLOCATE, signed + transport, key, timeout)
            if got.ok:
                exchange(sock, (host, port), REFRESH, signed + [(LIFETIME, struct.pack("!I", 0))], key, timeout, 1)
            if got.code != 438:
                return got
            first = got
        return first
