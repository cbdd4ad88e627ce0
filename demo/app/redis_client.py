"""A minimal redis client (RESP2): one connection per client, re-opened after any failure, every call
bounded by the dependency deadline."""
from __future__ import annotations

import socket
import threading

from network import DEP_TIMEOUT, DependencyDown, close_quietly, connect


class RedisError(Exception):
    """Redis answered with an error reply."""


class Redis:
    """A minimal thread-safe redis client: one connection, re-opened after any failure.

    Every call fails within ~``timeout`` seconds when redis is stopped or paused (DependencyDown).
    """

    def __init__(self, host: str, port: int, password: str | None, timeout: float = DEP_TIMEOUT):
        self.host, self.port, self._password, self.timeout = host, port, password, timeout
        self._sock: socket.socket | None = None
        self._file = None
        self._lock = threading.Lock()

    def _open(self) -> None:
        self._sock = connect(self.host, self.port, self.timeout)
        self._file = self._sock.makefile("rb")
        if self._password:
            self._roundtrip(("AUTH", self._password))

    def _close(self) -> None:
        close_quietly(self._file, self._sock)
        self._sock = self._file = None

    @staticmethod
    def _encode(args) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def _read(self):
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise DependencyDown("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            if len(data) != n + 2:
                raise DependencyDown("short read from redis")
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise DependencyDown(f"unexpected redis reply type {kind!r}")

    def _roundtrip(self, args):
        self._sock.sendall(self._encode(args))
        return self._read()

    def execute(self, *args):
        """Send one command and return its reply. Raises DependencyDown or RedisError."""
        with self._lock:
            for attempt in (1, 2):
                fresh = self._sock is None
                try:
                    if fresh:
                        self._open()
                    return self._roundtrip(args)
                except RedisError as exc:
                    if str(exc).startswith(("NOAUTH", "WRONGPASS")):
                        self._close()
                    raise
                except (OSError, DependencyDown, ValueError) as exc:
                    self._close()
                    # a kept connection may have died with a redis restart: retry once on a new one
                    if fresh or attempt == 2 or isinstance(exc, socket.timeout):
                        raise DependencyDown(f"redis: {exc}") from None
        raise DependencyDown("redis: unreachable")  # pragma: no cover

    def ping(self) -> bool:
        try:
            return self.execute("PING") == "PONG"
        except (DependencyDown, RedisError):
            return False

    def set(self, key, value, ex: int | None = None):
        return self.execute("SET", key, value, *(("EX", ex) if ex else ()))

    def get(self, key):
        return self.execute("GET", key)

    def rpush(self, key, *values):
        return self.execute("RPUSH", key, *values)

    def lrange(self, key, start=0, stop=-1):
        return self.execute("LRANGE", key, start, stop)

    def expire(self, key, seconds: int):
        return self.execute("EXPIRE", key, seconds)
