"""A watched deployment's latest verdict as Prometheus metrics (``runbook watch``'s exporter), built with
``prometheus_client`` in a registry of its own, so the exposition format is the library's, never written here.

Every series is labelled with the project. The verdict, blockers and check statuses describe the last
published run; they are replaced as a whole by the next one (a check that passes again loses its series).

=======================================================  ================================================
``runbook_verdict{project}``                             1 GO, 0 NO-GO
``runbook_blockers{project}``                            the verdict's blockers
``runbook_checks{project,status}``                       records per status (PASS, FAIL, ... WAIVED)
``runbook_check_status{project,check,target,status}``    1 for each record not PASS
``runbook_new_blocker{project,check,target}``            1 for each blocker the run before did not have
``runbook_last_run_timestamp_seconds{project}``          when the last run finished (Unix time)
``runbook_last_run_duration_seconds{project}``           how long it took
``runbook_run_errors_total{project}``                    runs that could not judge (engine gone, bad input)
``runbook_watch_interval_seconds{project}``              the schedule, for the staleness alert
``runbook_watch_started_timestamp_seconds{project}``     when the watcher started (staleness before a first run)
=======================================================  ================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

#: The statuses ``runbook_checks`` always carries (a status with no record is 0, not absent).
STATUSES = ("PASS", "FAIL", "WARN", "ERROR", "SKIP", "INFO", "WAIVED")


@dataclass(frozen=True)
class Published:
    """What one finished run publishes: its verdict file, its records' (check, target, status), the refs
    of its new blockers (``check@target``), when it finished and how long it took."""

    verdict: dict
    records: list[tuple[str, str, str]]
    new_blockers: list[tuple[str, str]]
    finished: float
    duration_s: float


class WatchMetrics:
    """The exporter's registry for one project."""

    def __init__(self, project: str, interval_s: float) -> None:
        self.project = project
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.verdict = Gauge("runbook_verdict", "1 when the last run's verdict is GO, 0 when NO-GO", ["project"], registry=r)
        self.blockers = Gauge("runbook_blockers", "Blockers in the last run's verdict", ["project"], registry=r)
        self.checks = Gauge("runbook_checks", "Records of the last run per status", ["project", "status"], registry=r)
        self.check_status = Gauge("runbook_check_status", "1 for each check@target of the last run that is not PASS, "
                                  "labelled with its status", ["project", "check", "target", "status"], registry=r)
        self.new_blocker = Gauge("runbook_new_blocker", "1 for each blocker the last run has and the run before it "
                                 "did not", ["project", "check", "target"], registry=r)
        self.last_run = Gauge("runbook_last_run_timestamp_seconds", "When the last run finished (Unix time)",
                              ["project"], registry=r)
        self.duration = Gauge("runbook_last_run_duration_seconds", "How long the last run took", ["project"], registry=r)
        self.errors = Counter("runbook_run_errors", "Runs that could not judge the deployment (the engine did not "
                              "answer, the parameters file is invalid, the run failed)", ["project"], registry=r)
        self.interval = Gauge("runbook_watch_interval_seconds", "The watch schedule: seconds from one run's start to "
                              "the next", ["project"], registry=r)
        self.started = Gauge("runbook_watch_started_timestamp_seconds", "When the watcher started (Unix time)",
                             ["project"], registry=r)
        self.started.labels(project).set_to_current_time()
        self.errors.labels(project)  # 0 from the start: a rate over it needs the series before the first error
        self.interval.labels(project).set(interval_s)

    def publish(self, run: Published) -> None:
        """Replace what the exporter says with ``run``'s verdict and records."""
        p = self.project
        v = run.verdict
        self.verdict.labels(p).set(1 if v.get("verdict") == "GO" else 0)
        self.blockers.labels(p).set(len(v.get("blockers") or []))
        counts = v.get("counts") or {}
        for status in sorted(set(STATUSES) | set(counts)):
            self.checks.labels(p, status).set(counts.get(status, 0))
        _replace(self.check_status, ((p, c, t, s) for c, t, s in run.records if s != "PASS"))
        _replace(self.new_blocker, ((p, c, t) for c, t in run.new_blockers))
        self.last_run.labels(p).set(run.finished)
        self.duration.labels(p).set(round(run.duration_s, 3))

    def count_error(self) -> None:
        self.errors.labels(self.project).inc()

    def text(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


def _replace(gauge: Gauge, label_sets: Iterable[tuple[str, ...]]) -> None:
    """``gauge`` holds exactly ``label_sets``, each at 1 (a series not in it is removed)."""
    gauge.clear()
    for labels in sorted(set(label_sets)):
        gauge.labels(*labels).set(1)
