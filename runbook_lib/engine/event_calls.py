"""The :class:`~runbook_lib.engine.client.Engine`'s calls over time: stats samples, the engine's container and
volume events between two times, and waiting until a project's services are ready. Waiting is driven by the
engine's event stream, bounded by a deadline, never a sleep loop.

Times given to these calls are this machine's Unix seconds. The engine filters events by its own clock, which on
a remote engine (``ssh://``, ``tcp://``) may differ: :meth:`EventCalls.clock_offset_s` measures the difference
once (the engine's ``SystemTime``), and the calls shift the window by it, so "the next 5 s" is the engine's
next 5 s and not 5 s of its past or future."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

from runbook_lib.engine.containers import PROJECT_LABEL, SERVICE_LABEL, ContainerView
from runbook_lib.engine.sdk import sdk_call, wrap_error


class EventCalls:
    """Mixed into :class:`~runbook_lib.engine.client.Engine`: uses its ``api``, :meth:`project_containers`
    and ``_stats_pool`` (the pool stats samples are taken on, wider than :meth:`map`'s)."""

    api: Any
    _clock_offset: tuple[float | None] | None = None

    def clock_offset_s(self) -> float | None:
        """The engine's clock minus this machine's, in seconds, read once from ``docker info``'s ``SystemTime``
        against the middle of the call; None when the engine does not say its time (then no shift)."""
        if self._clock_offset is None:
            t0 = time.time()
            try:
                said = self.info().get("SystemTime") or ""  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - the offset is a refinement; the calls go on unshifted
                said = ""
            mid, said_at = (t0 + time.time()) / 2, engine_time(said)
            self._clock_offset = (None if said_at is None else said_at.timestamp() - mid,)
        return self._clock_offset[0]

    def _engine_clock(self, t: float) -> float:
        return t + (self.clock_offset_s() or 0.0)

    def stats(self, id_or_name: str) -> dict[str, Any]:
        """One stats sample (``docker stats --no-stream``): the engine reads the counters twice, about
        a second apart, so ``cpu_stats`` and ``precpu_stats`` give a CPU rate."""
        with sdk_call(f"reading stats of {id_or_name}"):
            return self.api.stats(id_or_name, stream=False)

    def stats_many(self, ids: Sequence[str]) -> list[Any]:
        """One stats sample of each container (:meth:`stats`), up to ``stats_pool_size`` at once, results
        in the order of ``ids`` (a RunbookError in place of one that could not be read). A sample is a
        wait, not work: the engine answers at its collector's next ticks (about a second apart), so the
        samples are taken all at once rather than ``pool_size`` per tick, and many containers cost about
        what one does."""
        return self._stats_pool.map(self.stats, ids)

    def container_events(self, project: str, since: float, until: float,
                         actions: Iterable[str] = ("create", "start", "restart", "die", "oom", "kill", "stop",
                                                   "destroy"), label: str | None = None) -> list[dict[str, Any]]:
        """Container life-cycle events of a project between two times (Unix seconds). When ``until``
        is in the future this blocks until then: the engine streams events as they happen and closes
        the stream at ``until``. Each event: time, action, service, container, exit code where the
        engine gives one (die). ``label`` filters by another label than the project's (a swarm stack's).
        ``since`` and ``until`` are this machine's times, shifted by :meth:`clock_offset_s`."""
        since, until = self._engine_clock(since), self._engine_clock(until)
        with sdk_call("reading container events"):
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

    def volume_events(self, since: float, until: float, actions: Iterable[str] = ("create", "destroy")) -> list[dict[str, Any]]:
        """Volume events between two times (Unix seconds): the engine's own account of what was
        created and destroyed. (A local volume's CreatedAt is its directory's ctime, which changes on
        every write, so it cannot prove a volume was kept; the event log can.) Shifted to the engine's clock
        as :meth:`container_events` is."""
        since, until = self._engine_clock(since), self._engine_clock(until)
        with sdk_call("reading volume events"):
            stream = self.api.events(since=f"{since:.9f}", until=f"{until:.9f}", decode=True,
                                     filters={"type": "volume", "event": list(actions)})
            try:
                return [{"action": e.get("Action"), "volume": (e.get("Actor") or {}).get("ID"),
                         "time": e.get("time")} for e in stream]
            finally:
                stream.close()

    def wait_ready(self, project: str, services: Iterable[str], timeout: float,
                   progress: Callable[[str], None] | None = None) -> tuple[bool, list[ContainerView]]:
        """Wait until every listed service has a running container that is healthy (when it has a
        healthcheck). Driven by the engine's event stream, bounded by ``timeout`` seconds.
        Returns (all ready, the containers as last seen)."""
        wanted = set(services)
        deadline = time.time() + timeout
        since = f"{self._engine_clock(time.time()):.9f}"  # the stream's window on the engine's clock
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
        with sdk_call("subscribing to engine events"):
            stream = self.api.events(since=since, until=f"{self._engine_clock(deadline):.9f}", decode=True,
                                     filters={"type": "container", "label": f"{PROJECT_LABEL}={project}"})
        try:
            for _event in stream:
                ok, views = evaluate()
                if ok or time.time() >= deadline:
                    break
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(exc, "reading engine events") from exc
        finally:
            stream.close()
        return evaluate()


def engine_time(stamp: str) -> datetime | None:
    """An engine timestamp (RFC 3339, ``2026-12-07T19:06:02.123456789Z``: nanoseconds, any offset, none read
    as UTC) as an aware datetime; None when it is empty, the zero time (``0001-01-01…``) or unreadable."""
    if not stamp or stamp.startswith("0001-"):
        return None
    try:
        at = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)  # the engine speaks UTC
