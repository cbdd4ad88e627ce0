"""Host ports for demo stacks of their own (tests, benchmarks): free now, and reserved on this machine until the
process that asked exits, so two processes never get the same one.

Why a reservation and not the kernel's pick (bind to port 0): a port the kernel hands out is free only while
the socket holds it. A pytest-xdist worker picks its stack's ports when its session starts and deploys minutes
later; meanwhile another worker was handed the same ports and published one first ("Bind for
127.0.0.1:51281 failed: port is already allocated", seen in a clean clone's `make test`). Picks also come from
below Linux's ephemeral range (``net.ipv4.ip_local_port_range``, 32768-60999 by default), where no outgoing
connection's local port can take one either.

A reservation is a file named after the port in :data:`RESERVED`, holding the pid that asked; the pick runs
under an exclusive ``flock`` of that directory's lock file, so pickers in different processes see each other's
reservations. A reservation whose process is gone is stale and reused. A process's own reservations are
removed when it exits.
"""
from __future__ import annotations

import atexit
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

from runbook_lib.state import pid_alive

#: Where reservations are kept (one file per port), shared by every checkout on this machine.
RESERVED = Path(tempfile.gettempdir()) / "runbook-demo-ports"
#: The ports picked from: below the kernel's ephemeral range, above the demo's fixed ports (8080-9093, 3478).
PORT_RANGE = (20000, 32000)
_MINE: set[int] = set()


def _bindable(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _taken(path: Path) -> bool:
    """Whether ``path`` reserves its port for a process that still runs."""
    try:
        return pid_alive(int(path.read_text().strip()))
    except (OSError, ValueError):
        return False  # unreadable or half-written: treated as stale (the pick holds the lock)


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1: free right now and reserved for this process until it exits
    (see the module's docstring). Raises RuntimeError when the range has fewer than ``n`` free ports."""
    RESERVED.mkdir(exist_ok=True)
    try:  # shared like /tmp itself: any user's tests reserve here
        os.chmod(RESERVED, 0o1777)
    except OSError:
        pass
    picked: list[int] = []
    with open(RESERVED / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        candidates = list(range(*PORT_RANGE))
        random.shuffle(candidates)
        for port in candidates:
            if len(picked) == n:
                break
            path = RESERVED / str(port)
            if (path.exists() and _taken(path)) or not _bindable(port):
                continue
            path.write_text(str(os.getpid()))
            _MINE.add(port)
            picked.append(port)
    if len(picked) < n:
        raise RuntimeError(f"only {len(picked)} of {n} ports free in {PORT_RANGE[0]}-{PORT_RANGE[1] - 1} "
                           f"(reservations in {RESERVED})")
    return picked


@atexit.register
def _release() -> None:
    for port in list(_MINE):
        path = RESERVED / str(port)
        try:
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()
        except OSError:
            pass
        _MINE.discard(port)
