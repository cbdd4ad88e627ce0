"""The Docker engine, through the docker SDK: :class:`Engine`, the one object callers hold.

Its calls are written in one module per section, each a mixin class :class:`Engine` inherits:

- :mod:`.container_calls`: listing and inspecting containers, exec, stop/start/pause and networks;
- :mod:`.file_calls`: files and logs inside containers;
- :mod:`.image_calls`: images and volumes;
- :mod:`.event_calls`: stats samples, events over a window, waiting until ready;
- :mod:`.swarm_calls`: the swarm, a stack's services, tasks and volumes, scaling a service.

Mixins rather than composition: the sections call each other through ``self`` (waiting lists the project's
containers, a stack's tasks read its services), they share the connection, the pools and the read counters
the Engine holds, and an Engine's methods stay methods of one class, so what patches or wraps them on the
class (tests counting the readings of a phase) sees every call, whichever section makes it. Composition
would put a forwarding method in front of each of about fifty calls.

Every docker SDK error is wrapped (``raise ... from exc``) at one boundary, :mod:`.sdk`; none reaches a
notebook raw, and each is classified by its type and HTTP status, never by its message. Inspect output is
wrapped once in :class:`~runbook_lib.engine.containers.ContainerView`. Waiting uses the engine's event stream,
bounded by a deadline, never a sleep loop. Only the SDK's public API is used.

Per-container reads run concurrently on one bounded pool (:meth:`Engine.map`, ``pool_size`` threads,
results in the order asked); every engine call carries the client's timeout as its deadline.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import docker
import docker.errors
import requests.exceptions

from runbook_lib.engine.container_calls import ContainerCalls
from runbook_lib.engine.event_calls import EventCalls
from runbook_lib.engine.file_calls import FileCalls
from runbook_lib.engine.image_calls import ImageCalls
from runbook_lib.engine.pool import BoundedPool
from runbook_lib.engine.sdk import EngineError, sdk_call
from runbook_lib.engine.swarm_calls import SwarmCalls
from runbook_lib.errors import EngineUnavailable

__all__ = ["Engine", "EngineError"]


class Engine(ContainerCalls, FileCalls, ImageCalls, EventCalls, SwarmCalls):
    """A connection to one Docker engine (DOCKER_HOST or the default socket)."""

    def __init__(self, timeout: float = 60, pool_size: int | None = None, stats_pool_size: int = 128,
                 procfs_reads: bool = True) -> None:
        #: The deadline of every engine call (seconds without an answer before it fails).
        self.timeout = timeout
        #: How many per-container calls run at once (:meth:`map`), and stats samples (:meth:`stats_many`).
        self.pool = BoundedPool(pool_size)
        self.pool_size = self.pool.size
        self._stats_pool = BoundedPool(max(self.pool_size, stats_pool_size))
        #: Whether :meth:`read_path` may read through /proc/PID/root (None: not decided yet, see procfs_allowed).
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
        with sdk_call("reading the engine version"):
            return self.client.version()

    def info(self) -> dict[str, Any]:
        with sdk_call("reading engine info"):
            return self.client.info()
