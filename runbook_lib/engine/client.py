"""The Docker engine, through the docker SDK.

Every docker SDK error is wrapped here (``raise ... from exc``); none reaches a notebook raw, and each is
classified by its type and HTTP status, never by its message (:func:`_wrap`). Inspect output is wrapped
once in :class:`~runbook_lib.engine.containers.ContainerView`. Waiting uses the engine's event stream,
bounded by a deadline, never a sleep loop.

Per-container reads run concurrently on one bounded pool (:meth:`Engine.map`, ``pool_size`` threads,
results in the order asked); every engine call carries the client's timeout as its deadline.
"""
from __future__ import annotations

import contextlib
import copy
import fnmatch
import io
import posixpath
import stat
import tarfile
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import docker
import docker.errors
import requests.exceptions

from runbook_lib.errors import EngineUnavailable, RunbookError
from runbook_lib.engine.pool import BoundedPool
from runbook_lib.engine.containers import (PROJECT_LABEL, SERVICE_LABEL, STACK_LABEL, SWARM_SERVICE_LABEL, ContainerView,
                                          FileEntry)


@contextlib.contextmanager
def _sdk(what: str) -> Iterator[None]:
    """The one boundary where docker SDK and transport errors become RunbookErrors, naming ``what``
    the call was doing. RunbookErrors raised inside pass through unchanged."""
    try:
        yield
    except RunbookError:
        raise
    except Exception as exc:  # noqa: BLE001 - wrapped, never swallowed
        raise _wrap(exc, what) from exc


class EngineError(RunbookError):
    """An engine call failed in a way the run cannot continue past (wraps docker SDK errors).
    ``status_code`` is the engine's HTTP status (404: no such object, 409: conflict), None without one."""

    status_code: int | None = None


def _transport_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is the engine not answering: a refused or reset connection, a
    missing socket, a read timeout. The docker SDK raises these as ``DockerException`` around a
    ``requests`` error, so the chain of causes is walked, by type only."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _wrap(exc: Exception, what: str) -> RunbookError:
    """A docker SDK or transport error as a RunbookError: :class:`EngineUnavailable` when the engine did
    not answer, :class:`EngineError` (with the HTTP status the engine gave, if any) otherwise."""
    if _transport_failure(exc):
        return EngineUnavailable(f"the Docker engine stopped answering while {what}: {exc}")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    err = EngineError(f"engine call failed while {what}: {exc}")
    err.status_code = status
    return err


class Engine:
    """A connection to one Docker engine (DOCKER_HOST or the default socket)."""

    def __init__(self, timeout: float = 60, pool_size: int | None = None, stats_pool_size: int = 128,
                 procfs_reads: bool = True) -> None:
        #: The deadline of every engine call (seconds without an answer before it fails).
        self.timeout = timeout
        #: How many per-container calls run at once (:meth:`map`), and stats samples (:meth:`stats_many`).
        self.pool = BoundedPool(pool_size)
        self.pool_size = self.pool.size
        self._stats_pool = BoundedPool(max(self.pool_size, stats_pool_size))
        #: Whether :meth:`read_path` may read through /proc/PID/root (None: not decided yet, see _procfs_allowed).
        self._procfs: bool | None = None if procfs_reads else False
        #: How many reads went each way (for tests and benchmarks): {"archive": n, "procfs": n}.
        self.reads = {"archive": 0, "procfs": 0}
        self._reads_lock = threading.Lock()
        try:
            self.client = docker.from_env(timeout=int(timeout),
                                          max_pool_size=max(10, self.pool_size, self._stats_pool.size) + 2)
            self.client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise EngineUnavailable(
                f"no Docker engine answers ({exc.__class__.__name__}: {str(exc)[:200]}). "
                "Start one (as root: `bash scripts/setup.sh`, which starts dockerd) or point DOCKER_HOST at it."
            ) from exc

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn`` over ``items`` on the engine's bounded pool, results in item order; a RunbookError
        is returned in its item's place (see :meth:`runbook_lib.engine.pool.BoundedPool.map`)."""
        return self.pool.map(fn, items)

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def version(self) -> dict[str, Any]:
        with _sdk("reading the engine version"):
            return self.client.version()

    def info(self) -> dict[str, Any]:
        with _sdk("reading engine info"):
            return self.client.info()

    # -- swarm: read-only, by name, never a secret's or a config's content ----------------
    def swarm_state(self) -> dict[str, Any]:
        """This engine's part in a swarm (``docker info``'s Swarm section): LocalNodeState ("active",
        "inactive", "pending", "error", "locked"), ControlAvailable (a manager), NodeID, Nodes, Managers,
        the cluster id, the node's address."""
        sw = self.info().get("Swarm") or {}
        return {"state": sw.get("LocalNodeState") or "", "manager": bool(sw.get("ControlAvailable")),
                "node_id": sw.get("NodeID") or "", "nodes": sw.get("Nodes"), "managers": sw.get("Managers"),
                "cluster_id": (sw.get("Cluster") or {}).get("ID") or "", "error": sw.get("Error") or "",
                "node_addr": sw.get("NodeAddr") or ""}

    def swarm_nodes(self) -> list[dict[str, Any]]:
        """Every node of the swarm (a manager's view): id, hostname, role, status, availability,
        engine version, manager reachability."""
        with _sdk("listing swarm nodes"):
            nodes = self.api.nodes()
        return sorted(({"id": n.get("ID", ""), "hostname": (n.get("Description") or {}).get("Hostname", ""),
                        "role": (n.get("Spec") or {}).get("Role", ""),
                        "availability": (n.get("Spec") or {}).get("Availability", ""),
                        "state": (n.get("Status") or {}).get("State", ""),
                        "message": (n.get("Status") or {}).get("Message", ""),
                        "address": (n.get("Status") or {}).get("Addr", ""),
                        "engine": ((n.get("Description") or {}).get("Engine") or {}).get("EngineVersion", ""),
                        "manager": (n.get("ManagerStatus") or {}).get("Reachability", "")} for n in nodes),
                      key=lambda n: (n["hostname"], n["id"]))

    def swarm_objects_named(self, kind: str, name: str) -> list[dict[str, Any]]:
        """The swarm secrets (``kind`` "secret") or configs ("config") named exactly ``name``, read by
        name through the Swarm API (the engine's name filter matches more than the exact name, so the
        answer is filtered here). Only metadata is returned: id, name, created, updated, labels. A
        secret's value is never sent by the engine; a config's data is dropped unread."""
        if kind not in ("secret", "config"):
            raise ValueError(f"kind must be secret or config, not {kind!r}")
        with _sdk(f"listing swarm {kind}s named {name}"):
            found = (self.api.secrets if kind == "secret" else self.api.configs)(filters={"name": name})
        return [{"id": o.get("ID", ""), "name": (o.get("Spec") or {}).get("Name", ""),
                 "created": o.get("CreatedAt", ""), "updated": o.get("UpdatedAt", ""),
                 "labels": (o.get("Spec") or {}).get("Labels") or {}}
                for o in found or [] if (o.get("Spec") or {}).get("Name") == name]

    # -- containers -------------------------------------------------------------------------------
    def _inspect_all(self, filters: dict[str, Any], names: Callable[[str], bool] | None = None) -> list[ContainerView]:
        """Every container the engine lists with ``filters`` (and, given ``names``, whose name it accepts:
        judged on the listing, so only those are inspected), inspected concurrently, sorted by service and name."""
        with _sdk("listing containers"):
            summaries = self.api.containers(all=True, filters=filters)
        if names is not None:
            summaries = [s for s in summaries if any(names(n.lstrip("/")) for n in s.get("Names") or [])]

        def inspect(summary: dict[str, Any]) -> ContainerView | None:
            try:
                return ContainerView(self.api.inspect_container(summary["Id"]))
            except docker.errors.NotFound:
                return None  # removed between list and inspect
            except Exception as exc:  # noqa: BLE001
                raise _wrap(exc, f"inspecting container {summary['Id'][:12]}") from exc

        views = self.map(inspect, summaries)
        for v in views:
            if isinstance(v, RunbookError):
                raise v
        return sorted((v for v in views if v is not None), key=lambda v: (v.service, v.name))

    def project_containers(self, project: str) -> list[ContainerView]:
        """Every container (running or not) carrying the compose project label."""
        return self._inspect_all({"label": f"{PROJECT_LABEL}={project}"})

    def stack_containers(self, stack: str, service: str | None = None) -> list[ContainerView]:
        """Every container (running or not) of a swarm stack's tasks that THIS engine holds (a node sees only
        its own tasks' containers), optionally of one stack-file service."""
        labels = [f"{STACK_LABEL}={stack}"] + ([f"{SWARM_SERVICE_LABEL}={stack}_{service}"] if service else [])
        return self._inspect_all({"label": labels})

    def stack_services(self, stack: str) -> list[dict[str, Any]]:
        """The swarm services of a stack (``docker service inspect`` of each, a manager's view), sorted by
        name. Their specs never hold a secret's value, only secret references."""
        with _sdk(f"listing the services of stack {stack}"):
            found = self.api.services(filters={"label": f"{STACK_LABEL}={stack}"})
        return sorted(found or [], key=lambda s: (s.get("Spec") or {}).get("Name", ""))

    def stack_tasks(self, stack: str, service: str | None = None) -> list[dict[str, Any]]:
        """The tasks of a stack's services (every node's; current and past, as `docker stack ps` shows
        them), optionally of one stack-file service, oldest first."""
        names = [f"{stack}_{service}"] if service else [(s.get("Spec") or {}).get("Name", "") for s in self.stack_services(stack)]
        if not names:
            return []  # an empty service filter would list every task of the swarm
        with _sdk(f"listing the tasks of {', '.join(names)}"):
            tasks = self.api.tasks(filters={"service": names}) or []  # one call: the engine ORs the names
        return sorted(tasks, key=lambda t: (t.get("CreatedAt", ""), t.get("ID", "")))

    def service(self, name: str) -> dict[str, Any]:
        """One swarm service (``docker service inspect NAME``). Raises EngineError (status 404) when there is none."""
        with _sdk(f"inspecting service {name}"):
            return self.api.inspect_service(name)

    def scale_service(self, name: str, replicas: int) -> None:
        """Set a replicated service's replicas (``docker service scale NAME=N``): only the mode changes in the
        spec, so no rolling update of the other tasks. Raises EngineError for a global service or none."""
        with _sdk(f"scaling service {name} to {replicas}"):
            svc = self.api.inspect_service(name)
            spec = copy.deepcopy(svc.get("Spec") or {})
            mode = spec.get("Mode") or {}
            if "Replicated" not in mode:
                raise EngineError(f"service {name} is not replicated (global): it cannot be scaled")
            # the spec as the engine has it, with only the replicas changed (what `docker service scale` sends); the
            # SDK's update_service(fetch_current_spec=True) rebuilds the spec from parts, and the next `docker stack
            # deploy` then saw a changed spec and replaced the task (observed)
            spec["Mode"] = {"Replicated": {**mode["Replicated"], "Replicas": int(replicas)}}
            resp = self.api._post_json(self.api._url("/services/{0}/update", svc["ID"]), data=spec,
                                       params={"version": (svc.get("Version") or {}).get("Index")})
            self.api._raise_for_status(resp)

    def stack_volumes(self, stack: str) -> list[dict[str, Any]]:
        """The named volumes of a stack on THIS engine (a node has only the volumes of the tasks it ran), in
        the shape of :meth:`project_volumes` (``volume``: the name in the stack file)."""
        with _sdk("listing volumes"):
            vols = self.api.volumes(filters={"label": f"{STACK_LABEL}={stack}"}).get("Volumes") or []
        return sorted(({"name": v["Name"], "created": v.get("CreatedAt", ""), "driver": v.get("Driver", ""),
                        "volume": v["Name"][len(stack) + 1:] if v["Name"].startswith(stack + "_") else v["Name"]}
                       for v in vols), key=lambda v: v["name"])

    def containers_matching(self, patterns: Iterable[str]) -> list[ContainerView]:
        """Containers whose name matches any of the shell-style patterns."""
        pats = list(patterns)
        if not pats:
            return []
        def match(name: str) -> bool:
            return any(fnmatch.fnmatchcase(name, p) for p in pats)

        return [v for v in self._inspect_all({}, names=match) if match(v.name)]

    def container(self, id_or_name: str) -> ContainerView:
        with _sdk(f"inspecting container {id_or_name}"):
            return ContainerView(self.api.inspect_container(id_or_name))

    def stop_and_remove(self, id_or_name: str, timeout: int = 10) -> None:
        try:
            self.api.stop(id_or_name, timeout=timeout)
            self.api.remove_container(id_or_name, v=False, force=True)
        except docker.errors.NotFound:
            return
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"removing container {id_or_name}") from exc

    def exec(self, id_or_name: str, cmd: list[str], timeout: float = 120) -> tuple[int | None, str]:
        """Run a command in a running container. Returns (exit code, combined output); exit code None
        on timeout (the process is left to finish inside the container; the engine has no exec kill)."""
        with _sdk(f"starting `{' '.join(cmd)}` in {id_or_name}"):
            exec_id = self.api.exec_create(id_or_name, cmd, stdout=True, stderr=True)["Id"]
        result: dict[str, Any] = {}

        def _run() -> None:
            try:
                result["out"] = self.api.exec_start(exec_id, stream=False, demux=False)
            except Exception as exc:  # noqa: BLE001
                result["exc"] = exc

        t = threading.Thread(target=_run, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            return None, f"(timed out after {timeout}s)"
        if "exc" in result:
            raise _wrap(result["exc"], f"running `{' '.join(cmd)}` in {id_or_name}") from result["exc"]
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        out = result.get("out") or b""
        return code, out.decode("utf-8", "replace")

    # -- fault injection (phase 4 drills; runbook_lib.drills.faults journals and undoes these) --------------
    def service_containers(self, project: str, service: str) -> list[ContainerView]:
        """The containers (running or not) of one compose service."""
        return self._inspect_all({"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]})

    def stop_container(self, id_or_name: str, timeout: int = 10) -> None:
        """Stop a container (SIGTERM, SIGKILL after ``timeout`` s). The engine does not restart a
        container stopped this way, whatever its restart policy."""
        with _sdk(f"stopping container {id_or_name}"):
            self.api.stop(id_or_name, timeout=timeout)

    def start_container(self, id_or_name: str) -> None:
        with _sdk(f"starting container {id_or_name}"):
            self.api.start(id_or_name)

    def pause_container(self, id_or_name: str) -> None:
        with _sdk(f"pausing container {id_or_name}"):
            self.api.pause(id_or_name)

    def unpause_container(self, id_or_name: str) -> None:
        with _sdk(f"unpausing container {id_or_name}"):
            self.api.unpause(id_or_name)

    def disconnect_network(self, id_or_name: str, network: str) -> None:
        with _sdk(f"disconnecting {id_or_name} from network {network}"):
            self.api.disconnect_container_from_network(id_or_name, network, force=True)

    def connect_network(self, id_or_name: str, network: str, aliases: list[str] | None = None) -> None:
        """Connect a container to a network with the given DNS aliases (the compose service name)."""
        with _sdk(f"connecting {id_or_name} to network {network}"):
            self.api.connect_container_to_network(id_or_name, network, aliases=aliases or None)

    # -- files and logs inside containers (phase 2) -------------------------------------------------
    def _procfs_allowed(self) -> bool:
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
        if pid and len(id_or_name) == 64 and self._procfs_allowed():
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
            raise _wrap(exc, f"reading {path} from {id_or_name}") from exc
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
        with _sdk(what):
            exec_id = self.api.exec_create(id_or_name, cmd, stdout=True, stderr=True)["Id"]
            out, err = self.api.exec_start(exec_id, stream=False, demux=True)
            return self.api.exec_inspect(exec_id).get("ExitCode"), out or b"", err or b""

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
                content = data
            entries.append(FileEntry(path=path, kind=kind, size=int(size), mode=int(mode, 8), uid=int(uid), gid=int(gid),
                                     content=content))
        return entries

    def logs(self, id_or_name: str, tail: int = 2000) -> str:
        """The container's last ``tail`` log lines (stdout and stderr), with timestamps."""
        with _sdk(f"reading the logs of {id_or_name}"):
            out = self.api.logs(id_or_name, stdout=True, stderr=True, tail=tail, timestamps=True)
        return out.decode("utf-8", "replace")

    def image_metadata(self, image_id: str) -> dict[str, Any]:
        """What an image carries that a secret could hide in: its labels, ENV and build history."""
        with _sdk(f"inspecting image {image_id}"):
            a = self.api.inspect_image(image_id)
            history = self.api.history(image_id)
        cfg = a.get("Config") or {}
        return {"labels": cfg.get("Labels") or {}, "env": cfg.get("Env") or [],
                "history": [h.get("CreatedBy") or "" for h in history]}

    # -- production mode: one stats sample, logs as lines, events over a window ----------------------
    def stats(self, id_or_name: str) -> dict[str, Any]:
        """One stats sample (``docker stats --no-stream``): the engine reads the counters twice, about
        a second apart, so ``cpu_stats`` and ``precpu_stats`` give a CPU rate."""
        with _sdk(f"reading stats of {id_or_name}"):
            return self.api.stats(id_or_name, stream=False)

    def stats_many(self, ids: Sequence[str]) -> list[Any]:
        """One stats sample of each container (:meth:`stats`), up to ``stats_pool_size`` at once, results
        in the order of ``ids`` (a RunbookError in place of one that could not be read). A sample is a
        wait, not work: the engine answers at its collector's next ticks (about a second apart), so the
        samples are taken all at once rather than ``pool_size`` per tick, and 80 containers cost about
        what one does."""
        return self._stats_pool.map(self.stats, ids)

    def iter_log_lines(self, id_or_name: str, tail: int | None = None, since: float | None = None,
                       stdout: bool = True, stderr: bool = True) -> Iterator[str]:
        """The container's log lines (stdout and stderr, or only one of them), timestamped, oldest first: every
        line since the container was created (``tail`` None) or only the last ``tail``; with ``since`` (a Unix
        time) only the lines written from then on. Streamed, so a long log is never held in memory."""
        with _sdk(f"reading the logs of {id_or_name}"):
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

    def image_id(self, ref: str) -> str | None:
        """The full id of the image a reference (name:tag or id) points at now; None when missing."""
        try:
            return self.api.inspect_image(ref)["Id"]
        except docker.errors.ImageNotFound:
            return None
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"inspecting image {ref}") from exc

    def image_config(self, ref: str) -> dict[str, Any]:
        """The image's Config (Env, Healthcheck, ...), {} when the image is missing."""
        try:
            return self.api.inspect_image(ref).get("Config") or {}
        except docker.errors.ImageNotFound:
            return {}
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"inspecting image {ref}") from exc

    def container_events(self, project: str, since: float, until: float,
                         actions: Iterable[str] = ("create", "start", "restart", "die", "oom", "kill", "stop",
                                                   "destroy"), label: str | None = None) -> list[dict[str, Any]]:
        """Container life-cycle events of a project between two times (Unix seconds). When ``until``
        is in the future this blocks until then: the engine streams events as they happen and closes
        the stream at ``until``. Each event: time, action, service, container, exit code where the
        engine gives one (die). ``label`` filters by another label than the project's (a swarm stack's)."""
        with _sdk("reading container events"):
            stream = self.api.events(since=f"{since:.9f}", until=f"{until:.9f}", decode=True,
                                     filters={"type": "container", "event": list(actions),
                                              "label": label or f"{PROJECT_LABEL}={project}"})
            try:
                out = []
                for e in stream:
                    attrs = (e.get("Actor") or {}).get("Attributes") or {}
                    out.append({"time": e.get("time"), "action": e.get("Action") or e.get("status"),
                                "service": attrs.get(SERVICE_LABEL, ""), "container": attrs.get("name", ""),
                                "exit_code": attrs.get("exitCode")})
                return out
            finally:
                stream.close()

    # -- images and volumes -----------------------------------------------------------------------
    def image_summary(self, image_id: str) -> dict[str, Any]:
        try:
            a = self.api.inspect_image(image_id)
        except docker.errors.NotFound:
            return {"id": image_id[:19], "missing": True}
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, f"inspecting image {image_id}") from exc
        return {"id": a["Id"][:19], "tags": a.get("RepoTags") or [], "digests": a.get("RepoDigests") or [],
                "created": a.get("Created", "")[:19], "size_mb": round(a.get("Size", 0) / 1e6, 1)}

    def project_volumes(self, project: str) -> list[dict[str, Any]]:
        with _sdk("listing volumes"):
            vols = self.api.volumes(filters={"label": f"{PROJECT_LABEL}={project}"}).get("Volumes") or []
        return sorted(
            ({"name": v["Name"], "created": v.get("CreatedAt", ""), "driver": v.get("Driver", ""),
              "volume": v.get("Labels", {}).get("com.docker.compose.volume", "")} for v in vols),
            key=lambda v: v["name"],
        )

    def volume_events(self, since: float, until: float, actions: Iterable[str] = ("create", "destroy")) -> list[dict[str, Any]]:
        """Volume events between two times (Unix seconds): the engine's own account of what was
        created and destroyed. (A local volume's CreatedAt is its directory's ctime, which changes on
        every write, so it cannot prove a volume was kept; the event log can.)"""
        with _sdk("reading volume events"):
            stream = self.api.events(since=f"{since:.9f}", until=f"{until:.9f}", decode=True,
                                     filters={"type": "volume", "event": list(actions)})
            try:
                return [{"action": e.get("Action"), "volume": (e.get("Actor") or {}).get("ID"),
                         "time": e.get("time")} for e in stream]
            finally:
                stream.close()

    def archive_volume(self, volume: str, image: str, dest) -> int:
        """Copy a volume's content into ``dest`` (a tar file) without starting anything: a container
        is created (never started) with the volume mounted, and the engine streams the mount as tar."""
        with _sdk(f"archiving volume {volume}"):
            c = self.api.create_container(image, command=["true"], volumes=["/volume"],
                                          host_config=self.api.create_host_config(binds={volume: {"bind": "/volume", "mode": "ro"}}),
                                          labels={"org.runbook.purpose": "volume-archive"})
            try:
                stream, _ = self.api.get_archive(c["Id"], "/volume")
                size = 0
                with open(dest, "wb") as fh:
                    for chunk in stream:
                        fh.write(chunk)
                        size += len(chunk)
                return size
            finally:
                self.api.remove_container(c["Id"], force=True)

    # -- waiting ----------------------------------------------------------------------------------
    def wait_ready(self, project: str, services: Iterable[str], timeout: float,
                   progress: Callable[[str], None] | None = None) -> tuple[bool, list[ContainerView]]:
        """Wait until every listed service has a running container that is healthy (when it has a
        healthcheck). Driven by the engine's event stream, bounded by ``timeout`` seconds.
        Returns (all ready, the containers as last seen)."""
        wanted = set(services)
        deadline = time.time() + timeout
        since = f"{time.time():.9f}"
        last_line = ""

        def evaluate() -> tuple[bool, list[ContainerView]]:
            nonlocal last_line
            views = [v for v in self.project_containers(project) if v.service in wanted]
            ready = {v.service for v in views if v.ready}
            waiting = sorted(wanted - ready)
            line = f"{len(ready)}/{len(wanted)} ready" + (f"; waiting for {', '.join(waiting)}" if waiting else "")
            if progress and line != last_line:
                progress(line)
            last_line = line
            return not waiting, views

        ok, views = evaluate()
        if ok:
            return ok, views
        with _sdk("subscribing to engine events"):
            stream = self.api.events(since=since, until=f"{deadline:.9f}", decode=True,
                                     filters={"type": "container", "label": f"{PROJECT_LABEL}={project}"})
        try:
            for _event in stream:
                ok, views = evaluate()
                if ok or time.time() >= deadline:
                    break
        except Exception as exc:  # noqa: BLE001
            raise _wrap(exc, "reading engine events") from exc
        finally:
            stream.close()
        return evaluate()
