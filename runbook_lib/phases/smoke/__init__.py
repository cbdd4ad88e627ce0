"""Phase 4, smoke tests: real requests, an end-to-end flow, and dependency drills that always restore.

A ``/health`` that answers 200 proves little: it may check no dependency at all. So this phase also
runs the flow a user would (log in, post a chat message, start a video call, store an object and read
it back: whatever the parameters' ``smoke.flow`` says), and for each dependency in ``smoke.drills``
breaks it on purpose, probes the endpoints that rely on it every ~250 ms, and compares what it sees with
the designed behaviour: ``available`` (degraded mode must keep answering), ``must_fail`` (the endpoint
really uses the dependency), ``may_fail``. Then it restores the dependency, waits until it is healthy,
requires every endpoint back within the recovery budget, and runs the flow again.

Check ids: ``smoke.health``, ``smoke.metrics``, ``smoke.flow`` (one record per step), and
``smoke.turn`` (a TURN/STUN server spoken to: binding, allocation, wrong password refused: :mod:`.turn`),
``smoke.drill.<dependency>`` (one record per probed endpoint, plus one for the dependency itself:
restore, recovery time, flow afterwards, and the timeline PNG), and ``smoke.after_drill.<dependency>`` (every
endpoint asked again once the drill is over: :mod:`.aftermath`). In a read-only run only health, TURN, metrics
and the flow's safe steps run (:mod:`.readonly`).
"""
from runbook_lib.phases.smoke.drills import drill, drill_for, timeline_image  # noqa: F401
from runbook_lib.phases.smoke.endpoints import (PHASE, default_endpoints, flow, health, host_base_url,  # noqa: F401
                                                metrics, run_smoke_flow, secret_reader)
from runbook_lib.phases.smoke.turn import turn  # noqa: F401
from runbook_lib.run.manifest import Manifest, factory

# The notebook's sections, in order. The drills break a dependency on purpose: drill_for makes one check per
# `smoke.drills` entry, which the notebook runs (or `runbook run`), never the explorer (they are declared
# as changing the deployment).
MANIFEST = Manifest(PHASE, {
    "endpoints": [health, turn],
    "metrics": [metrics],
    "flow": [flow],
    "drills": [factory(drill_for)],
})
