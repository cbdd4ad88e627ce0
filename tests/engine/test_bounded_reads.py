"""Concurrent bounded reads: the pool keeps the order asked and hands errors back per item, and a run's
records are the same, in order and content, with the pool at 1 and at its default."""
from __future__ import annotations

import json
import re
import threading
import time

import pytest

from conftest import load_run, run_dir_from
from runbook_lib.errors import RunbookError
from runbook_lib.params import load_params
from runbook_lib.engine.pool import BoundedPool, default_pool_size


def test_the_pool_keeps_item_order_bounds_concurrency_and_returns_runbook_errors_in_place():
    running, peak, lock = [0], [0], threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05 * (5 - i % 5))  # later items finish first
        with lock:
            running[0] -= 1
        if i == 3:
            raise RunbookError("item 3 failed")
        return i * 10

    out = BoundedPool(3).map(work, range(10))
    assert [o if not isinstance(o, RunbookError) else "err" for o in out] == [0, 10, 20, "err", 40, 50, 60, 70, 80, 90]
    assert peak[0] == 3
    with pytest.raises(ZeroDivisionError):  # anything else is raised, not swallowed
        BoundedPool(3).map(lambda i: 1 / (i - 2), range(5))
    # nested use from a pool thread runs inline instead of waiting on a full pool
    pool = BoundedPool(2)
    assert pool.map(lambda i: pool.map(lambda j: i * j, range(3)), range(4)) == [[0, 0, 0], [0, 1, 2], [0, 2, 4], [0, 3, 6]]
    assert BoundedPool(1).map(str, [1, 2]) == ["1", "2"] and 1 <= default_pool_size() <= 8


def _comparable(records: list[dict]) -> list[str]:
    """A record without its timings, and with every number masked: uptimes, stats samples, log line counts
    and latencies are measurements that differ between any two runs; so is the engine's health log (the
    last five probes, taken every 3 s). All the rest must be equal."""
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if k not in ("started", "duration_s")}
        r["evidence"] = {k: v for k, v in r["evidence"].items() if k != "health_log"}
        out.append(re.sub(r"\d+(\.\d+)?", "#", json.dumps(r, sort_keys=True)))
    return out


@pytest.mark.docker
@pytest.mark.slow
def test_records_are_identical_in_order_and_content_with_the_pool_at_1_and_at_its_default(healthy_demo, write_params,
                                                                                         cli, tmp_path):
    runs = []
    for i, changes in enumerate(({"engine.pool_size": 1}, {})):  # paths differ only by a (masked) digit
        (tmp_path / str(i)).mkdir()
        params = write_params(changes, name=f"{i}/params.yaml")
        proc = cli("run", "--params", str(params), "--output", str(tmp_path / str(i)), "--phase", "00_preflight",
                   "--phase", "02_secrets_security", "--phase", "03_production_mode")
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        runs.append(load_run(run_dir_from(proc.stdout))[1])
    assert load_params(tmp_path / "0" / "params.yaml").engine.pool_size == 1
    assert load_params(tmp_path / "1" / "params.yaml").engine.pool_size > 1, "the default is concurrent"
    one, default = runs
    assert len(one) > 100
    assert [(r["phase"], r["id"], r["target"], r["status"]) for r in one] == \
           [(r["phase"], r["id"], r["target"], r["status"]) for r in default]
    assert _comparable(one) == _comparable(default)
