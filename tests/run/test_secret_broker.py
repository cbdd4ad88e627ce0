"""The secret broker: the runner reads the containers' secrets once per deployment state and
its phase kernels take them from it instead of reading the engine again. On the session's own demo stack
with the real engine; the only stand-in is a counter around ``Engine.read_path`` (it still reads)."""
from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from runbook_lib.run import broker
from runbook_lib.run.context import Context
from runbook_lib.params import load_params


def _context(params) -> Context:
    return Context(params=load_params(params), progress=lambda s: None)


def _count_reads(ctx: Context) -> list[str]:
    calls: list[str] = []
    real = ctx.engine.read_path

    def counting(id_or_name, path, *a, **kw):
        calls.append(id_or_name)
        return real(id_or_name, path, *a, **kw)

    ctx.engine.read_path = counting
    return calls


@pytest.mark.docker
def test_a_kernel_takes_the_runners_read_and_reads_only_containers_the_runner_did_not(healthy_demo, demo_params,
                                                                                       monkeypatch):
    runner = _context(demo_params)
    runner.learn_secrets()
    read_by_runner = runner.state.container_secret_files
    assert read_by_runner and any(files for files in read_by_runner.values()), "the demo mounts secrets"
    with broker.SecretBroker(runner) as b:
        address = b.path
        assert stat.S_IMODE(os.stat(address.parent).st_mode) == 0o700
        monkeypatch.setenv(broker.ENV, f"{b.path} {b.token}")

        kernel = _context(demo_params)
        calls = _count_reads(kernel)
        got = kernel.learn_container_secrets()
        assert calls == [], "every container was read by the runner: the kernel reads none"
        assert {n: {p: (e.mode, e.uid, e.gid, e.size, e.content) for p, e in f.items()} for n, f in got.items()} == \
               {n: {p: (e.mode, e.uid, e.gid, e.size, e.content) for p, e in f.items()} for n, f in read_by_runner.items()}
        assert set(runner.secret_values) <= set(kernel.secret_values), "every value the runner learned is redacted"

        # a container that is not the one the runner read (another id) is read by the kernel itself
        name = next(n for n, f in read_by_runner.items() if f)
        runner.state.container_secret_ids[name] = "0" * 64
        kernel = _context(demo_params)
        calls = _count_reads(kernel)
        again = kernel.learn_container_secrets()
        assert len(calls) >= 1 and all(c == kernel.state.container_secret_ids[name] for c in calls)
        assert again[name].keys() == read_by_runner[name].keys()

        # a client without the token gets nothing
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(b.path))
            s.sendall(b"not-the-token\n")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1024) == b""
        monkeypatch.setenv(broker.ENV, f"{b.path} not-the-token")
        assert broker.fetch() is None
    assert not address.parent.exists(), "the broker's directory is gone when the run ends"
    monkeypatch.setenv(broker.ENV, f"{address} {b.token}")
    assert broker.fetch() is None, "no broker: the kernel reads the engine itself"


def test_no_broker_configured_means_none(monkeypatch):
    monkeypatch.delenv(broker.ENV, raising=False)
    assert broker.fetch() is None
    monkeypatch.setenv(broker.ENV, "garbage")
    assert broker.fetch() is None


def test_a_killed_runners_broker_directory_is_swept_and_a_live_one_is_kept():
    """A runner killed with SIGKILL cannot remove its broker's directory: the next broker removes it (its
    socket refuses connections); another run's live broker answers and is kept."""
    import shutil
    import tempfile

    # a short root of its own: a socket path must fit AF_UNIX's 108 bytes (pytest's tmp_path under an
    # xdist worker does not), and the sweep must not see the real brokers of runs going on meanwhile
    root = Path(tempfile.mkdtemp(prefix="rbsweep-"))
    try:
        stale = Path(tempfile.mkdtemp(prefix="runbook-secrets-", dir=root))
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(str(stale / "broker.sock"))
        dead.close()  # bound, never listening again: what a killed runner leaves
        live_dir = Path(tempfile.mkdtemp(prefix="runbook-secrets-", dir=root))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
            live.bind(str(live_dir / "broker.sock"))
            live.listen(1)
            assert broker.sweep_stale(root) == [stale]
            assert not stale.exists() and live_dir.exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_socket_path_too_long_for_af_unix_means_no_broker_not_a_failed_run(monkeypatch, tmp_path):
    """$TMPDIR deep enough that the socket path passes AF_UNIX's 108 bytes: the broker does not start, gives
    the kernels no address (they read the engine themselves) and leaves no directory behind."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    b = broker.SecretBroker(ctx=None)  # the context is only read when a kernel asks
    assert b.env == {} and not list(deep.iterdir())
    b.close()
