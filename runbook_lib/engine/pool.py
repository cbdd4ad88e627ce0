"""A bounded pool for per-container engine reads: at most ``size`` calls at once, results in the order
asked, so records come out the same whatever the pool size (``engine.pool_size`` in the parameters)."""
from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from runbook_lib.errors import RunbookError
from runbook_lib.params.values import default_pool_size

T = TypeVar("T")
R = TypeVar("R")
_POOL_THREAD = threading.local()




@dataclass
class _Raised:
    exc: BaseException


def _outcome(fn: Callable[[T], R], item: T, reraise: bool = False) -> Any:
    try:
        return fn(item)
    except RunbookError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - handed back to map's caller and raised there
        if reraise:
            raise
        return _Raised(exc)


def _in_pool(fn: Callable[[T], R], item: T) -> Any:
    _POOL_THREAD.active = True
    return _outcome(fn, item)


class BoundedPool:
    """``size`` worker threads, started on first use and reused for the whole process."""

    def __init__(self, size: int | None = None) -> None:
        self.size = max(1, int(size or default_pool_size()))
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | RunbookError]:
        """``fn(item)`` for every item, at most ``size`` at a time, results in the order of ``items``.

        A :class:`RunbookError` raised for one item is returned in its place (the caller makes it that
        item's ERROR record); any other exception is raised, the first in item order, once every call
        ended. Runs inline, in order, with a pool of 1, for one item, or when called from a pool thread
        (a nested wait on a full pool could never end)."""
        items = list(items)
        if self.size <= 1 or len(items) <= 1 or getattr(_POOL_THREAD, "active", False):
            return [_outcome(fn, item, reraise=True) for item in items]
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(self.size, thread_name_prefix="engine")
        futures = [self._executor.submit(_in_pool, fn, item) for item in items]
        results = [f.result() for f in futures]
        for r in results:
            if isinstance(r, _Raised):
                raise r.exc
        return results


class OncePerKey:
    """``fn(key)`` called at most once per key however many threads ask at once (the others wait for the
    first caller's answer), for readings many containers share within one check: the image 80 containers
    run is inspected once, not 80 times. An exception is not kept: the next caller asks again."""

    def __init__(self, fn: Callable[[T], R]) -> None:
        self._fn = fn
        self._done: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: T) -> R:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._done:
                self._done[key] = self._fn(key)
            return self._done[key]
