"""Reading a container's files through ``/proc/PID/root`` when the engine runs on this host.

The archive API (``docker cp``, :meth:`Engine.read_path`) costs the engine a process start per call, paid by
every read of a deployment's secrets (``engine.procfs_reads`` in docs/parameters.md). When the container's main process is visible in this process's PID namespace,
the kernel already shows the container's own view of its filesystem at ``/proc/PID/root``: image files,
bind mounts (compose file secrets) and tmpfs mounts (swarm secrets, which the archive API does not see)
alike, with the modes and owners the container sees. Reading there costs microseconds.

When is it the same container? ``PID`` comes from the engine (``State.Pid``); the process with that PID in
*our* namespace is the container's only if its cgroup names the container's full id (64 hex digits; the
cgroup v1 path ``/docker/ID`` or v2 ``docker-ID.scope``), checked before and after the read (a PID reused
in between fails the second check). A remote engine, a rootless or containerised engine (another PID
namespace), a stopped container (PID 0), an engine with user-namespace remapping (owners would be the host's
shifted ids), or no permission: :class:`Unavailable`, and the caller reads through the archive API as before.

Safety: nothing under the container's root is ever followed as a symlink. Paths are walked one component
at a time from a directory fd with ``O_NOFOLLOW | O_DIRECTORY`` (an absolute symlink inside the container
would otherwise resolve against *this* host's root); a link is reported as a link, like the archive does.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat
from pathlib import Path

from runbook_lib.engine.containers import FileEntry

PROC = Path("/proc")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Unavailable(Exception):
    """This container cannot be read through /proc here (the reason is the message); use the archive API."""


def _kind(mode: int) -> str:
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "other"


def owns(pid: int, container_id: str, proc: Path = PROC) -> bool:
    """True when process ``pid`` of this PID namespace runs in the cgroup of container ``container_id``."""
    if pid <= 0 or len(container_id) != 64:
        return False
    try:
        return container_id in (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return False


def read(pid: int, container_id: str, path: str, max_bytes: int = 1 << 20, proc: Path = PROC) -> list[FileEntry] | None:
    """What :meth:`Engine.read_path` returns for ``path`` inside the container (the entry for ``path``
    itself first, then, for a directory, everything under it, content for regular files up to
    ``max_bytes``), or None when ``path`` does not exist. Raises :class:`Unavailable` when this host
    cannot show this container's files (the caller then uses the archive API)."""
    if not owns(pid, container_id, proc):
        raise Unavailable(f"process {pid} is not container {container_id[:12]}'s on this host")
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    if not parts:
        raise Unavailable("the container's root itself is not read this way")
    try:
        root = os.open(proc / str(pid) / "root", _DIR_FLAGS & ~os.O_NOFOLLOW)  # the magic link: into the container
    except OSError as exc:
        raise Unavailable(f"/proc/{pid}/root: {exc.strerror}") from exc
    fds = [root]
    try:
        for part in parts[:-1]:  # every parent must be a real directory, never a link
            try:
                fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise Unavailable(f"{path}: a parent is a link or not a directory") from exc
                raise Unavailable(f"{path}: {exc.strerror}") from exc
        entries: list[FileEntry] = []
        try:
            _walk(fds[-1], parts[-1], "/" + "/".join(parts), max_bytes, entries)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unavailable(f"{path}: {exc.strerror}") from exc
        if not owns(pid, container_id, proc):  # the process ended (and its PID may be reused) meanwhile
            raise Unavailable(f"process {pid} ended while {path} was read")
        return entries
    finally:
        for fd in fds:
            os.close(fd)


def _walk(dir_fd: int, name: str, full: str, max_bytes: int, out: list[FileEntry]) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    kind = _kind(st.st_mode)
    content = None
    if kind == "file" and st.st_size <= max_bytes:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat: read nothing
                raise Unavailable(f"{full} changed while it was read")
            chunks, left = [], max_bytes
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            content = b"".join(chunks)
        finally:
            os.close(fd)
    out.append(FileEntry(path=full, kind=kind, size=st.st_size if kind == "file" else 0,  # as a tar header says
                         mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, content=content))
    if kind == "dir":
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            for child in sorted(os.listdir(fd)):
                _walk(fd, child, posixpath.join(full, child), max_bytes, out)
        finally:
            os.close(fd)


def processes(pid: int, container_id: str, proc: Path = PROC, limit: int = 1000) -> list[tuple[int, int, int, str]]:
    """(pid, ppid, effective uid, name) of the container's main process ``pid`` and every process it
    started, read from /proc/PID/status and /proc/PID/task/TID/children (processes that ``docker exec``
    started are not the main process's descendants: a healthcheck running as root does not count).
    Raises :class:`Unavailable` when this host cannot show this container's processes."""
    if not owns(pid, container_id, proc):
        raise Unavailable(f"process {pid} is not container {container_id[:12]}'s on this host")
    out: list[tuple[int, int, int, str]] = []
    todo, seen = [pid], set()
    while todo and len(out) < limit:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = dict(line.split(":", 1) for line in (proc / str(p) / "status").read_text().splitlines() if ":" in line)
            out.append((p, int(fields["PPid"]), int(fields["Uid"].split()[1]), fields["Name"].strip()))
            for task in sorted((proc / str(p) / "task").iterdir()):
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, KeyError, ValueError, IndexError) as exc:
            if p == pid:  # the main process itself: nothing to judge
                raise Unavailable(f"/proc/{pid}/status: {exc}") from exc
            continue  # a child that ended meanwhile
    if not owns(pid, container_id, proc):
        raise Unavailable(f"process {pid} ended while its processes were read")
    return out
