"""A minimal PostgreSQL client (protocol 3.0, standard library only): SCRAM-SHA-256 authentication and
parameterised queries (the extended query protocol, text format), one connection re-opened after any
failure, every call bounded by a deadline.

Why not psycopg2: the demo images carry Python's standard library and nothing else; a client of ~200 lines
keeps it so, and speaks to CockroachDB (which SecureConnect runs) the same way.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import socket
import struct
import threading

from network import DependencyDown, close_quietly, connect

PG_TIMEOUT = float(os.environ.get("DATABASE_TIMEOUT_SECONDS", "2"))
PROTOCOL_3 = 196608


class PgError(Exception):
    """The server answered with an error: ``code`` is its SQLSTATE (42P01: no such table, 23505: duplicate
    key, 28P01: wrong password...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} (SQLSTATE {code})")
        self.code, self.message = code, message


def _msg(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def scram_client_final(password: str, client_first_bare: str, server_first: str) -> tuple[str, bytes]:
    """SCRAM-SHA-256 (RFC 5802/7677): the client-final message for ``server_first`` and the server
    signature the server must prove in its final message."""
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
    if not nonce.startswith(client_first_bare.split("r=", 1)[1]):
        raise PgError("08P01", "SCRAM: the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    without_proof = f"c=biws,r={nonce}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return f"{without_proof},p={base64.b64encode(proof).decode()}", server_signature


class Postgres:
    """A thread-safe client on one connection. ``query`` returns the rows (tuples of str or None).

    Raises DependencyDown when the server cannot be reached or the connection breaks (then reconnects on the
    next call), PgError when the server refuses the login or a statement."""

    def __init__(self, host: str, port: int, user: str, password: str, database: str, timeout: float = PG_TIMEOUT):
        self.host, self.port, self.user, self.database, self.timeout = host, port, user, database, timeout
        self._password = password
        self._sock: socket.socket | None = None
        self._file = None
        self._lock = threading.Lock()

    def query(self, sql: str, *params: str | None) -> list[tuple[str | None, ...]]:
        with self._lock:
            try:
                if self._sock is None:
                    self._open()
                return self._extended(sql, params)
            except (OSError, EOFError, struct.error) as exc:
                self._close()
                raise DependencyDown(f"postgres at {self.host}:{self.port}: {exc or type(exc).__name__}") from None
            except PgError as exc:
                if exc.code.startswith(("08", "57P", "28")):  # connection, shutdown, login: start afresh
                    self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    # -- protocol -----------------------------------------------------------------------------------

    def _open(self) -> None:
        self._sock = connect(self.host, self.port, self.timeout)
        self._sock.settimeout(self.timeout)
        self._file = self._sock.makefile("rb")
        body = struct.pack("!I", PROTOCOL_3) + _cstr("user") + _cstr(self.user) + _cstr("database") \
            + _cstr(self.database) + _cstr("application_name") + _cstr("auth-service") + b"\0"
        self._sock.sendall(struct.pack("!I", len(body) + 4) + body)
        self._authenticate()
        while True:
            kind, payload = self._read()
            if kind == b"Z":
                return
            if kind == b"E":
                raise _error(payload)

    def _authenticate(self) -> None:
        first_bare = server_signature = None
        while True:
            kind, payload = self._read()
            if kind == b"E":
                raise _error(payload)
            if kind != b"R":
                raise PgError("08P01", f"unexpected message {kind!r} during authentication")
            code = struct.unpack("!I", payload[:4])[0]
            if code == 0:
                return
            if code == 10:  # SASL: the mechanisms offered
                if b"SCRAM-SHA-256\0" not in payload[4:]:
                    raise PgError("28000", "the server offers no SCRAM-SHA-256")
                first_bare = f"n=,r={base64.b64encode(secrets.token_bytes(18)).decode()}"
                data = f"n,,{first_bare}".encode()
                self._sock.sendall(_msg(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!I", len(data)) + data))
            elif code == 11 and first_bare:  # SASL continue: server-first
                final, server_signature = scram_client_final(self._password, first_bare, payload[4:].decode())
                self._sock.sendall(_msg(b"p", final.encode()))
            elif code == 12 and server_signature:  # SASL final: the server proves it knows the password too
                attrs = dict(p.split("=", 1) for p in payload[4:].decode().split(","))
                if not hmac.compare_digest(base64.b64decode(attrs.get("v", "")), server_signature):
                    raise PgError("28000", "SCRAM: the server's signature does not match")
            else:
                raise PgError("28000", f"unsupported authentication request {code} (only SCRAM-SHA-256)")

    def _extended(self, sql: str, params) -> list[tuple[str | None, ...]]:
        bind = b"\0\0" + struct.pack("!hh", 0, len(params))
        for p in params:
            bind += struct.pack("!i", -1) if p is None else struct.pack("!I", len(p.encode())) + p.encode()
        bind += struct.pack("!h", 0)
        self._sock.sendall(_msg(b"P", b"\0" + _cstr(sql) + struct.pack("!h", 0)) + _msg(b"B", bind)
                           + _msg(b"E", b"\0" + struct.pack("!I", 0)) + _msg(b"S", b""))
        rows, error = [], None
        while True:
            kind, payload = self._read()
            if kind == b"D":
                rows.append(_data_row(payload))
            elif kind == b"E":
                error = _error(payload)
            elif kind == b"Z":
                if error:
                    raise error
                return rows

    def _read(self) -> tuple[bytes, bytes]:
        head = self._file.read(5)
        if len(head) < 5:
            raise EOFError("connection closed by the server")
        size = struct.unpack("!I", head[1:])[0] - 4
        payload = self._file.read(size)
        if len(payload) < size:
            raise EOFError("connection closed by the server")
        return head[:1], payload

    def _close(self) -> None:
        close_quietly(self._file, self._sock)
        self._sock = self._file = None


def _data_row(payload: bytes) -> tuple[str | None, ...]:
    count, pos, out = struct.unpack("!h", payload[:2])[0], 2, []
    for _ in range(count):
        size = struct.unpack("!i", payload[pos:pos + 4])[0]
        pos += 4
        if size < 0:
            out.append(None)
        else:
            out.append(payload[pos:pos + size].decode())
            pos += size
    return tuple(out)


def _error(payload: bytes) -> PgError:
    fields = {part[:1]: part[1:].decode(errors="replace") for part in payload.split(b"\0") if part}
    return PgError(fields.get(b"C", "XX000"), fields.get(b"M", "error"))
