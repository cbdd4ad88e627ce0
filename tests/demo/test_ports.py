"""Ports for stacks of their own: two processes never get the same one, a live process's reservation is
respected, a dead one's reused, and a process's reservations go when it exits."""
from __future__ import annotations

import json
import subprocess
import sys

from runbook_demo import ports

PICK = "import json, runbook_demo; print(json.dumps(runbook_demo.free_ports({n})), flush=True); input()"


def _picker(n: int) -> tuple[subprocess.Popen, list[int]]:
    """A process that picks ``n`` ports, prints them and holds them until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", PICK.format(n=n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    return proc, json.loads(proc.stdout.readline())


def test_processes_picking_at_once_get_disjoint_reserved_ports_released_when_they_exit():
    procs = [_picker(60) for _ in range(4)]  # 240 ports: a collision would be likely without reservations
    try:
        picked = [p for _, got in procs for p in got]
        assert len(picked) == len(set(picked)) == 240
        assert all(ports.PORT_RANGE[0] <= p < ports.PORT_RANGE[1] for p in picked)
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
        assert max(picked) < low, "a pick inside the kernel's ephemeral range"
        for proc, got in procs:
            assert all((ports.RESERVED / str(p)).read_text() == str(proc.pid) for p in got)
        mine = ports.free_ports(30)  # this process, while the others hold theirs
        assert not set(mine) & set(picked)
    finally:
        for proc, _ in procs:
            proc.communicate("\n", timeout=30)
    assert not any((ports.RESERVED / str(p)).exists() for p in picked), "a reservation outlived its process"


def test_a_reservation_of_a_process_that_is_gone_is_reused_and_a_live_ones_is_not(monkeypatch):
    monkeypatch.setattr(ports, "PORT_RANGE", (ports.PORT_RANGE[0], ports.PORT_RANGE[0] + 40))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder, held = _picker(20)  # the other 20 of the 40 stay usable
    try:
        free = [p for p in range(*ports.PORT_RANGE) if p not in held]
        for p in free:
            if not (ports.RESERVED / str(p)).exists():
                (ports.RESERVED / str(p)).write_text(gone.stdout.strip())  # stale: that process has exited
        got = ports.free_ports(len(free) - 2)  # up to two of the range may be in use by something else
        assert not set(got) & set(held) and set(got) <= set(free)
        try:
            ports.free_ports(len(free))
        except RuntimeError as exc:
            assert "ports free" in str(exc) and str(ports.RESERVED) in str(exc)
        else:
            raise AssertionError("more ports than the range holds were handed out")
    finally:
        holder.communicate("\n", timeout=30)
