"""The :class:`~runbook_lib.engine.client.Engine`'s reads of what is inside a container: files (through
/proc/PID/root on the engine's host, or the archive API), files mounted where the archive API cannot see them
(a swarm task's secrets, read with ``stat`` and ``cat``), and logs. Content read here is secret: callers put
only :meth:`~runbook_lib.engine.containers.FileEntry.stat` in evidence."""
from __future__ import annotations

import io
import posixpath
import stat
import tarfile
from typing import Any, Iterator, Sequence

import docker.errors

from runbook_lib.engine.containers import FileEntry
from runbook_lib.engine.sdk import EngineError, exec_output, sdk_call, wrap_error
from runbook_lib.errors import RunbookError


class FileCalls:
    """Mixed into :class:`~runbook_lib.engine.client.Engine`: uses its ``api``, :meth:`info`, and the state
    the Engine sets up for it: ``_procfs`` (whether /proc reads are allowed, None until decided), ``reads``
    (how many reads went each way) and ``_reads_lock``."""

    api: Any

    def procfs_allowed(self) -> bool:
        """/proc reads are never used with user-namespace remapping (owners there are the host's shifted
        ids, not what the container sees); decided once per engine."""
        if self._procfs is None:
            try:
                opts = self.info().get("SecurityOptions") or []
            except RunbookError:
                return False
            self._procfs = not any("name=userns" in o for o in opts)
        return self._procfs

    def read_path(self, id_or_name: str, path: str, max_bytes: int = 1 << 20, pid: int = 0) -> list["FileEntry"] | None:
        """Stat and content of ``path`` (a file, or a directory and everything under it) inside a
        container: no exec, so it works on distroless images and stopped containers. With ``pid`` (the
        container's ``State.Pid``, :attr:`ContainerView.pid`) and the engine on this host, read through
        /proc/PID/root (:mod:`runbook_lib.engine.procfs`: the container's own view, tmpfs mounts
        included; its id checked against the process's cgroup); otherwise, or when that is not possible,
        through the archive API (``docker cp``), where bind-mounted files (compose file secrets) are read
        through their mount. Returns None when the path does not exist; content is kept only for regular
        files up to ``max_bytes``. Callers must treat content as secret."""
        if pid and len(id_or_name) == 64 and self.procfs_allowed():
            from runbook_lib.engine import procfs

            try:
                entries = procfs.read(pid, id_or_name, path, max_bytes)
                with self._reads_lock:
                    self.reads["procfs"] += 1
                for e in entries or []:
                    e.via = "procfs"
                return entries
            except procfs.Unavailable:
                pass
        with self._reads_lock:
            self.reads["archive"] += 1
        try:
            stream, _stat = self.api.get_archive(id_or_name, path)
            data = b"".join(stream)
        except docker.errors.NotFound:
            return None
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(exc, f"reading {path} from {id_or_name}") from exc
        parent = posixpath.dirname(path.rstrip("/")) or "/"
        entries = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                content = None
                if m.isfile() and m.size <= max_bytes:
                    fh = tar.extractfile(m)
                    content = fh.read() if fh else None
                kind = "file" if m.isfile() else "dir" if m.isdir() else "link" if (m.issym() or m.islnk()) else "other"
                entries.append(FileEntry(path=posixpath.join(parent, m.name), kind=kind, size=m.size,
                                         mode=stat.S_IMODE(m.mode), uid=m.uid, gid=m.gid, content=content))
        return entries

    def _exec_bytes(self, id_or_name: str, cmd: list[str], what: str) -> tuple[int | None, bytes, bytes]:
        """(exit code, stdout, stderr) of a short command in a running container, bounded by the client's
        timeout."""
        with sdk_call(what):
            exec_id = self.api.exec_create(id_or_name, cmd, stdout=True, stderr=True)["Id"]
            return exec_output(self.api, exec_id, self.api.timeout)

    def read_mounted_files(self, id_or_name: str, paths: Sequence[str], max_bytes: int = 1 << 20) -> list["FileEntry"]:
        """Stat and content of files mounted into a running container where the archive API cannot see them:
        a swarm task's secrets (the engine mounts them outside the container's mount list, so ``docker cp``
        returns the empty mount points). Read inside the container with ``stat`` and ``cat`` (an exec: the
        image needs them; busybox has both). A path that does not exist is left out. Raises RunbookError when
        the container cannot run them. Callers must treat content as secret."""
        if not paths:
            return []
        code, out, err = self._exec_bytes(id_or_name, ["stat", "-L", "-c", "%n|%s|%a|%u|%g|%F", *paths],
                                          f"reading the stat of {len(paths)} mounted files in {id_or_name}")
        if code not in (0, 1) or (code == 1 and not out):
            raise EngineError(f"`stat` in {id_or_name} exited {code}: {err.decode('utf-8', 'replace').strip()[:200]} "
                              "(reading a swarm task's secrets needs `stat` and `cat` in the image)")
        entries = []
        for line in out.decode("utf-8", "replace").splitlines():
            parts = line.rsplit("|", 5)
            if len(parts) != 6:
                continue
            path, size, mode, uid, gid, kind = parts
            kind = "file" if kind.startswith("regular") else "dir" if kind == "directory" else "other"
            content = None
            if kind == "file" and int(size) <= max_bytes:
                c, data, e = self._exec_bytes(id_or_name, ["cat", path], f"reading {path} in {id_or_name}")
                if c != 0:
                    raise EngineError(f"`cat {path}` in {id_or_name} exited {c}: {e.decode('utf-8', 'replace').strip()[:200]}")
                if len(data) != int(size):  # never a shorter value: the redactor would learn the wrong one
                    raise EngineError(f"`cat {path}` in {id_or_name} gave {len(data)} bytes of a {size}-byte file")
                content = data
            entries.append(FileEntry(path=path, kind=kind, size=int(size), mode=int(mode, 8), uid=int(uid), gid=int(gid),
                                     content=content))
        if code == 0 and len(entries) != len(paths):  # every path exists: a missing line is a lost answer, not a file
            raise EngineError(f"`stat` in {id_or_name} exited 0 but described {len(entries)} of {len(paths)} paths")
        return entries

    def logs(self, id_or_name: str, tail: int = 2000) -> str:
        """The container's last ``tail`` log lines (stdout and stderr), with timestamps."""
        with sdk_call(f"reading the logs of {id_or_name}"):
            out = self.api.logs(id_or_name, stdout=True, stderr=True, tail=tail, timestamps=True)
        return out.decode("utf-8", "replace")

    def iter_log_lines(self, id_or_name: str, tail: int | None = None, since: float | None = None,
                       stdout: bool = True, stderr: bool = True) -> Iterator[str]:
        """The container's log lines (stdout and stderr, or only one of them), timestamped, oldest first: every
        line since the container was created (``tail`` None) or only the last ``tail``; with ``since`` (a Unix
        time) only the lines written from then on. Streamed, so a long log is never held in memory."""
        with sdk_call(f"reading the logs of {id_or_name}"):
            extra = {} if since is None else {"since": since}
            stream = self.api.logs(id_or_name, stdout=stdout, stderr=stderr, timestamps=True, stream=True,
                                   follow=False, tail="all" if tail is None else tail, **extra)
            buf = b""
            for chunk in stream:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if buf:
                yield buf.decode("utf-8", "replace")
