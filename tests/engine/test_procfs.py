"""Reading container files through /proc/PID/root (runbook_lib.engine.procfs) gives exactly what
the archive API gives, never follows a link out of the container, and falls back to the archive API whenever
it cannot prove the process is the container's. Real engine, a container of this test's own."""
from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest

from runbook_lib.engine import Engine
from runbook_lib.engine import procfs

SETUP = ("mkdir -p /x/d && echo hello > /x/d/f && chmod 0640 /x/d/f && ln -s /etc /x/etclink "
         "&& ln -s /etc/passwd /x/d/pwlink && touch /x/ready && exec sleep 600")


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """A running container with a bind-mounted secret (as compose mounts file secrets), a directory tree,
    and links pointing out of it."""
    secret = tmp_path_factory.mktemp("procfs") / "db_password"
    secret.write_text("procfs-canary-" + secrets.token_hex(8))
    secret.chmod(0o600)
    name = f"rbtest-procfs-{secrets.token_hex(4)}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--user", "0", "-v", f"{secret}:/run/secrets/db_password:ro",
                    "--entrypoint", "sh", "runbook-demo/app:local", "-c", SETUP], check=True, capture_output=True)
    try:
        eng = Engine()
        for _ in range(100):
            view = eng.container(name)
            if view.running and eng.read_path(view.id, "/x/ready"):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the test container {name} did not get ready: {eng.logs(name)[-500:]}")
        yield eng.container(name), secret
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def key(entries):
    return None if entries is None else sorted((e.path, e.kind, e.size, e.mode, e.uid, e.gid, e.content) for e in entries)


@pytest.mark.parametrize("path", ["/run/secrets", "/run/secrets/db_password", "/x", "/x/d/f", "/etc/passwd",
                                  "/x/d/pwlink", "/no/such/file"])
def test_procfs_reads_what_the_archive_api_reads(box, path):
    view, _ = box
    eng = Engine()
    archive = eng.read_path(view.id, path)
    assert eng.reads == {"archive": 1, "procfs": 0}
    fast = eng.read_path(view.id, path, pid=view.pid)
    assert eng.reads == {"archive": 1, "procfs": 1}, "the /proc read was not used for a local running container"
    assert key(fast) == key(archive)
    assert all(e.via == "procfs" for e in fast or [])


def test_the_secret_is_read_with_its_content_mode_and_owner(box):
    view, secret = box
    [entry] = Engine().read_path(view.id, "/run/secrets/db_password", pid=view.pid)
    assert entry.content == secret.read_bytes() and entry.mode == 0o600 and entry.uid == os.getuid()
    assert entry.via == "procfs"
    assert secret.read_text() not in repr(entry) + str([entry])  # a repr in a traceback or a log line: no value


def test_a_link_inside_the_container_is_never_followed_on_this_host(box):
    view, _ = box
    eng = Engine()
    entries = eng.read_path(view.id, "/x", pid=view.pid)
    links = {e.path: e for e in entries if e.kind == "link"}
    assert set(links) == {"/x/etclink", "/x/d/pwlink"} and all(e.content is None for e in links.values())
    # a path through a link: /proc cannot walk it safely (an absolute link resolves against the caller's
    # root), so the archive API answers, and the engine resolves it inside the container
    with pytest.raises(procfs.Unavailable):
        procfs.read(view.pid, view.id, "/x/etclink/passwd")
    before = dict(eng.reads)
    got = eng.read_path(view.id, "/x/etclink/passwd", pid=view.pid)
    assert eng.reads["archive"] == before["archive"] + 1 and eng.reads["procfs"] == before["procfs"]
    assert key(got) == key(eng.read_path(view.id, "/x/etclink/passwd"))


def test_a_process_that_is_not_the_container_is_refused_and_the_archive_answers(box):
    view, _ = box
    with pytest.raises(procfs.Unavailable):
        procfs.read(os.getpid(), view.id, "/run/secrets")  # this test's own process: its cgroup is not the container's
    eng = Engine()
    got = eng.read_path(view.id, "/run/secrets", pid=os.getpid())
    assert eng.reads == {"archive": 1, "procfs": 0}
    assert key(got) == key(Engine(procfs_reads=False).read_path(view.id, "/run/secrets"))


def test_procfs_reads_false_always_uses_the_archive_api(box):
    view, _ = box
    eng = Engine(procfs_reads=False)
    eng.read_path(view.id, "/run/secrets", pid=view.pid)
    assert eng.reads == {"archive": 1, "procfs": 0}
