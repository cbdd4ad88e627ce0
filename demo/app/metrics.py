"""Prometheus metrics of every role (text exposition format 0.0.4): requests, latency, dependencies."""
from __future__ import annotations

import collections
import threading
import time


BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROCESS_START = time.time()


def _label_value(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Request counter, latency histogram and dependency gauges, rendered on demand."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = collections.Counter()
        self._hist: dict[tuple[str, str], list] = {}

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, str(code))] += 1
            h = self._hist.setdefault((method, route), [[0] * len(BUCKETS), 0.0, 0])
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h[0][i] += 1
            h[1] += seconds
            h[2] += 1

    def render(self, dependencies: dict[str, bool], extra: list[str] = ()) -> str:
        lines = ["# HELP http_requests_total HTTP requests handled, by method, route and status code.",
                 "# TYPE http_requests_total counter"]
        with self._lock:
            for (method, route, code), n in sorted(self._requests.items()):
                lines.append(f'http_requests_total{{method="{_label_value(method)}",'
                             f'route="{_label_value(route)}",code="{code}"}} {n}')
            lines += ["# HELP http_request_duration_seconds HTTP request latency.",
                      "# TYPE http_request_duration_seconds histogram"]
            for (method, route), (counts, total, count) in sorted(self._hist.items()):
                labels = f'method="{_label_value(method)}",route="{_label_value(route)}"'
                for bound, n in zip(BUCKETS, counts):
                    lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {n}')
                lines.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
                lines.append(f"http_request_duration_seconds_sum{{{labels}}} {total:.6f}")
                lines.append(f"http_request_duration_seconds_count{{{labels}}} {count}")
        lines += ["# HELP dependency_up Whether a dependency answered its last probe (1) or not (0).",
                  "# TYPE dependency_up gauge"]
        for dep, up in sorted(dependencies.items()):
            lines.append(f'dependency_up{{dependency="{_label_value(dep)}"}} {1 if up else 0}')
        lines += ["# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
                  "# TYPE process_start_time_seconds gauge",
                  f"process_start_time_seconds {PROCESS_START:.3f}", *extra]
        return "\n".join(lines) + "\n"
