"""A second Docker engine for tests, beside the shared one and never in its place.

The main engine (unix:///var/run/docker.sock) is shared with other people's tests and benchmarks: a test
must never put it in swarm mode, restart it or touch its bridge. Tests that need an engine of their own
(a single-node swarm, a fleet of engines) start one here, **in its own network namespace**:

- ``ip netns add NS``, ``ip link set lo up`` inside it;
- a veth pair, one end moved into NS, a private /30 (10.231.x.y) with an address on each end;
- ``nsenter --net=/var/run/netns/NS dockerd --data-root D --exec-root E -H unix://S --pidfile P``.
- a DNS stub in the namespace on the host's nameserver addresses, answering NXDOMAIN at once (no DNS server is
  reachable from the namespace: a lookup of a name that is no container's would hang), and dockerd started
  with ``DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1`` (no registry: a swarm task uses the image on the node).
  ``nsenter``, not ``ip netns exec``: the latter remounts /sys and dockerd then fails ("Devices cgroup
  isn't mounted"). Inside its namespace the engine has its own docker0 and iptables.
- Never a second dockerd in the host namespace: with ``--bridge=none`` it deletes the first engine's
  docker0.

Tear-down, whatever happened: the engine is stopped by its pid file (SIGTERM, then SIGKILL), its
leftover containerd shims in the namespace are killed, the mounts under its directories are unmounted,
and the veth and the namespace are deleted. :func:`host_snapshot` / :func:`assert_host_untouched` compare
the main engine's docker0 and containers before and after.

    with second_engine("swarm") as eng:       # or the pytest fixture, see tests/swarm/test_swarm_preflight.py
        eng.docker("swarm", "init", "--advertise-addr", eng.address)
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from runbook_lib.run.lock import pid_alive  # a zombie counts as gone

NETNS_DIR = Path("/var/run/netns")
# Every name this module creates starts with this, so a leftover is recognisable as a test's.
PREFIX = "rbt"


def skip_reason() -> str | None:
    """Why a second engine cannot be started here (None: it can)."""
    if os.geteuid() != 0:
        return "a second Docker engine in its own network namespace needs root"
    for tool in ("ip", "nsenter", "dockerd", "docker"):
        if not shutil.which(tool):
            return f"a second Docker engine needs `{tool}`, which is not installed"
    return None


def _run(*argv: str, check: bool = True, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc


@dataclass
class SecondEngine:
    """A Docker engine in network namespace ``ns``: ``host`` is its DOCKER_HOST, ``address`` its veth
    address inside the namespace (published ports answer there from the host), ``host_address`` the
    host's end of the pair."""

    ns: str
    root: Path
    address: str
    host_address: str
    veth_host: str
    pid: int = 0
    log: Path = field(default=Path("/dev/null"))

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    def env(self) -> dict[str, str]:
        """The environment of a process that talks to this engine (and only to it)."""
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
        env["DOCKER_HOST"] = self.host
        return env

    def docker(self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
        """The docker CLI against this engine."""
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=self.env(),
                              input=input)
        if check and proc.returncode != 0:
            raise RuntimeError(f"`docker {' '.join(args)}` on {self.host} exited {proc.returncode}: "
                               f"{proc.stderr.strip()[-500:]}")
        return proc

    def load_image(self, ref: str) -> None:
        """Copy an image of the main engine into this one (``docker save | docker load``)."""
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE,
                                env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True, env=self.env(),
                              timeout=300)
        save.stdout.close()
        if save.wait(timeout=300) != 0 or load.returncode != 0:
            raise RuntimeError(f"could not copy image {ref} into {self.host}: {load.stderr.strip()[-300:]}")


# A DNS server for the namespace: it answers every question "no such name" (NXDOMAIN) at once. Docker's embedded
# DNS forwards a name that is no container's (a dependency scaled to 0 in a drill, a stopped container) to the
# host's nameservers; none is reachable from the namespace, so without this every such lookup waits out the
# resolver's timeout (10 s with glibc's defaults, measured) where a host with a DNS server fails it in
# milliseconds, and a service in degraded mode answers too late.
_DNS_STUB = """
import socket, struct, sys, threading
def serve(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 53))
    while True:
        data, addr = s.recvfrom(4096)
        if len(data) >= 12:
            qid, flags = struct.unpack("!HH", data[:4])
            s.sendto(struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x7900) | 0x0080 | 3, 1, 0, 0, 0) + data[12:], addr)
for ip in sys.argv[1:]:
    threading.Thread(target=serve, args=(ip,)).start()
"""


def _dns_servers() -> list[str]:
    """The IPv4 nameservers dockerd forwards to: the host's (/etc/resolv.conf), or Docker's defaults when the
    host has only loopback ones (which Docker drops for containers)."""
    found = []
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and parts[1].count(".") == 3 and not parts[1].startswith("127."):
                found.append(parts[1])
    except OSError:
        pass
    return found or ["8.8.8.8", "8.8.4.4"]


def _free_subnet() -> tuple[str, str]:
    """(host address, namespace address) of a /30 in 10.231.0.0/16 that no interface or route uses."""
    used = _run("ip", "-o", "addr").stdout + _run("ip", "route").stdout
    for _ in range(200):
        x, y = random.randrange(0, 256), random.randrange(0, 64) * 4
        if f"10.231.{x}." not in used:
            return f"10.231.{x}.{y + 1}", f"10.231.{x}.{y + 2}"
    raise RuntimeError("no free /30 in 10.231.0.0/16")


def _nsexec(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run("nsenter", f"--net={NETNS_DIR / ns}", *argv, check=check)


def _wait_for(pred, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s" + (f"; dockerd log:\n{tail}" if tail else ""))




def _pids_in_netns(ns: str) -> list[int]:
    """Processes whose network namespace is ``ns`` (containerd, shims, container processes)."""
    try:
        target = os.stat(NETNS_DIR / ns).st_ino
    except OSError:
        return []
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino == target:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _stop(eng: SecondEngine) -> list[str]:
    """Stop the engine and remove what was set up; returns what could not be undone (never raises)."""
    problems: list[str] = []
    if eng.socket.exists():  # first what runs in it: tasks and containers, then the swarm it may be in
        with contextlib.suppress(Exception):
            eng.docker("swarm", "leave", "--force", check=False, timeout=60)
        with contextlib.suppress(Exception):
            ids = eng.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                eng.docker("rm", "-f", *ids, check=False, timeout=120)
    pid = eng.pid
    try:
        pid = int(eng.pidfile.read_text().strip()) or pid
    except (OSError, ValueError):
        pass
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        # nothing runs in it any more and its data root is thrown away: a dockerd that has not exited after
        # 10 s (one in a swarm it just left took 30) is killed, with its containerd and shims below
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
    # the engine's own containerd and shims live in the namespace too (dockerd started them there)
    for p in _pids_in_netns(eng.ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    time.sleep(0.3)
    mounts = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
              if ln.split()[4].startswith(str(eng.root))]
    for m in sorted(mounts, key=len, reverse=True):
        _run("umount", "-l", m, check=False)
    for argv in (("ip", "link", "del", eng.veth_host), ("ip", "netns", "del", eng.ns)):
        proc = _run(*argv, check=False)
        if proc.returncode != 0 and "Cannot find device" not in proc.stderr and "No such file" not in proc.stderr:
            problems.append(f"`{' '.join(argv)}`: {proc.stderr.strip()}")
    shutil.rmtree(eng.root, ignore_errors=True)
    if (NETNS_DIR / eng.ns).exists():
        problems.append(f"network namespace {eng.ns} still exists")
    return problems


def _start_dockerd(eng: SecondEngine, start_timeout: float) -> None:
    """Start the engine's dockerd in its namespace (its data root kept from a previous start) and wait until it answers."""
    with open(eng.log, "ab") as log:
        proc = subprocess.Popen(
            ["nsenter", f"--net={NETNS_DIR / eng.ns}", "dockerd", "--data-root", str(eng.root / "data"),
             "--exec-root", str(eng.root / "exec"), "-H", eng.host, "--pidfile", str(eng.pidfile)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            # no registry here: a swarm task uses the local image instead of first trying to pull it (each
            # try waits for a DNS timeout, ~20 s per task start)
            env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"})
    eng.pid = proc.pid  # nsenter execs dockerd: the same pid

    def answers() -> bool:
        try:  # a restarting engine may accept and answer late while it brings its containers back
            return eng.socket.exists() and eng.docker("version", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    _wait_for(answers, start_timeout, f"the engine in namespace {eng.ns} answering on {eng.host}", eng.log)


def restart_engine(eng: SecondEngine, down_s: float = 3, start_timeout: float = 120) -> None:
    """Restart the engine as `systemctl restart docker` would: SIGTERM to dockerd (it stops its containers
    and exits), ``down_s`` seconds with no engine, then dockerd again on the same data root (containers with
    a restart policy come back; one stopped by hand stays stopped)."""
    pid = int(eng.pidfile.read_text().strip())
    os.kill(pid, signal.SIGTERM)

    def exited() -> bool:
        try:  # dockerd is this process's child (nsenter execs it): reaped here, or it stays a zombie
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            return not pid_alive(pid)

    _wait_for(exited, 90, f"dockerd {pid} in {eng.ns} to exit", eng.log)
    time.sleep(down_s)  # the engine is away for a while, as in a real restart
    _start_dockerd(eng, start_timeout)


@contextlib.contextmanager
def second_engine(tag: str = "e", start_timeout: float = 60) -> Iterator[SecondEngine]:
    """Start a Docker engine in a network namespace of its own; yield it; stop it and delete the
    namespace, the veth pair and its directories whatever happens."""
    reason = skip_reason()
    if reason:
        raise RuntimeError(reason)
    suffix = f"{random.randrange(16 ** 4):04x}"
    ns = f"{PREFIX}{tag[:4]}{suffix}"
    root = Path(tempfile.mkdtemp(prefix=f"{ns}-", dir="/var/tmp"))
    host_ip, ns_ip = _free_subnet()
    eng = SecondEngine(ns=ns, root=root, address=ns_ip, host_address=host_ip, veth_host=f"{ns}h",
                       log=root / "dockerd.log")
    try:
        _run("ip", "netns", "add", ns)
        _nsexec(ns, "ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", eng.veth_host, "type", "veth", "peer", "name", f"{ns}n")
        _run("ip", "link", "set", f"{ns}n", "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", eng.veth_host)
        _run("ip", "link", "set", eng.veth_host, "up")
        _nsexec(ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", f"{ns}n")
        _nsexec(ns, "ip", "link", "set", f"{ns}n", "up")
        _nsexec(ns, "ip", "route", "add", "default", "via", host_ip)
        dns = _dns_servers()
        for ip in dns:  # the host's nameservers' addresses, inside the namespace only, answered by _DNS_STUB
            _nsexec(ns, "ip", "addr", "add", f"{ip}/32", "dev", "lo")
        subprocess.Popen(["nsenter", f"--net={NETNS_DIR / ns}", sys.executable, "-c", _DNS_STUB, *dns],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True)  # killed with everything else in the namespace (_stop)
        _start_dockerd(eng, start_timeout)
        yield eng
    finally:
        problems = _stop(eng)
        if problems:
            raise RuntimeError(f"tear-down of the engine in {ns} left: " + "; ".join(problems))


# -- the main engine, before and after ------------------------------------------------------------------

def host_snapshot() -> dict:
    """What a test with a second engine must leave as it found it: the host's docker0 (its addresses
    and state), the main engine's swarm state, and its containers (id, name, start time)."""
    link = json.loads(_run("ip", "-j", "addr", "show", "dev", "docker0", check=False).stdout or "[]")
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    ps = _run("docker", "ps", "-aq", "--no-trunc", env=env).stdout.split()
    started = {}
    if ps:
        for c in json.loads(_run("docker", "inspect", *ps, env=env, check=False).stdout or "[]"):
            started[c["Id"]] = (c["Name"], c["State"]["StartedAt"])
    swarm = _run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}", env=env).stdout.strip()
    return {"docker0": [(a.get("ifname"), sorted((i["local"], i["prefixlen"]) for i in a.get("addr_info", [])))
                        for a in link],
            "swarm": swarm, "containers": started}


def assert_host_untouched(before: dict, after: dict, strict_prefixes: tuple[str, ...] = ("/secureconnect-demo",)) -> list[str]:
    """docker0 and the main engine's swarm state unchanged, and no container of ``strict_prefixes`` (the
    user's demo stack, which nobody's test may touch) restarted or gone. Other containers of the shared
    engine are compared too, but other people's tests start and stop their own meanwhile: their changes
    are returned (to be printed), not failed on."""
    assert after["docker0"] == before["docker0"], f"the host's docker0 changed: {before['docker0']} -> {after['docker0']}"
    assert after["swarm"] == before["swarm"], f"the main engine's swarm state changed: {before['swarm']} -> {after['swarm']}"
    changed = {cid: (b, after["containers"].get(cid)) for cid, b in before["containers"].items()
               if after["containers"].get(cid) != b}
    strict = {cid: v for cid, v in changed.items() if v[0][0].startswith(strict_prefixes)}
    assert not strict, f"the user's containers on the main engine changed: {strict}"
    return [f"{b[0]}: {b[1]} -> {a[1] if a else 'gone'}" for b, a in changed.values()]


# -- pytest fixtures (import them into a test module: `from engines import netns_engine, netns_swarm`) ----

try:
    import pytest
except ImportError:  # used as a plain module (python tests/engines.py --clean)
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def netns_engine():
        """A second engine in its own network namespace for the module's tests (skipped, with the reason,
        where it cannot be started); the main engine's docker0, swarm state and containers are compared
        before and after."""
        reason = skip_reason()
        if reason:
            pytest.skip(reason)
        before = host_snapshot()
        with second_engine("t") as eng:
            yield eng
        others = assert_host_untouched(before, host_snapshot())
        print(f"main engine: docker0 and swarm state untouched; {len(before['containers'])} containers compared"
              + (f"; changed meanwhile (other tests' own): {'; '.join(others)}" if others else ", none changed"))

    @pytest.fixture(scope="module")
    def netns_swarm(netns_engine):
        """``netns_engine`` as a single-node swarm (init on its veth address; the join token printed by
        `swarm init` is never shown), with the demo's app image loaded (no registry: images are copied)."""
        netns_engine.load_image("runbook-demo/app:local")
        netns_engine.docker("swarm", "init", "--advertise-addr", netns_engine.address)
        return netns_engine


def clean_leftovers() -> list[str]:
    """Stop every engine this module started and a killed test left behind (namespaces named rbt*)."""
    done = []
    for ns in sorted(p.name for p in NETNS_DIR.glob(f"{PREFIX}*")):
        roots = sorted(Path("/var/tmp").glob(f"{ns}-*"))
        eng = SecondEngine(ns=ns, root=roots[0] if roots else Path("/var/tmp") / f"{ns}-gone", address="",
                           host_address="", veth_host=f"{ns}h")
        done.append(f"{ns}: {'; '.join(_stop(eng)) or 'removed'}")
    return done


if __name__ == "__main__":  # python tests/engines.py --clean
    import sys

    if sys.argv[1:] == ["--clean"]:
        print("\n".join(clean_leftovers()) or "nothing to clean")
    else:
        print("usage: python tests/engines.py --clean   (stop second engines a killed test left behind)")
