"""Phase 3, production mode: does every service run the reviewed configuration, stay up, stay inside
its limits, and is it being watched?

Every check reads the engine's own state — ``docker inspect``, the events stream, one stats sample,
``docker logs`` — and never execs a shell in a container, so distroless images are checked the same
way. The expectations come from the ``production:`` section of the parameters
(:class:`runbook_lib.params.core.Production`) and, for drift, from the compose model itself.

The checks, by module: :mod:`.config` (``prod.env``: the frameworks' switches of :mod:`.switches`, ``prod.restart_policy``, ``prod.healthcheck``),
:mod:`.conformance` (``prod.drift``, ``prod.orphans``: a container of the project outside the compose
model), :mod:`.runtime` (``prod.stability``, ``prod.resources``, ``prod.logs``: the error signatures of :mod:`.signatures`),
:mod:`.devserver` (``prod.dev_server``: a development server or debugger), :mod:`.monitoring`
(``prod.observability``: an endpoint answers; ``prod.observability.scrape``: Prometheus scrapes an app
service; ``prod.observability.logs``: Loki has recent lines of an app service). The target is the
service name, the observability component, or (prod.orphans) the container name. In swarm mode
:mod:`.swarm_checks` judges the service specs instead where a task's container cannot say (drift, restart policy,
environment) and adds ``prod.replicas`` and ``prod.task_history``.
"""
from runbook_lib.phases.production.common import PHASE, app_services  # noqa: F401
from runbook_lib.phases.production.config import env, expected_env_for, healthcheck, restart_policy  # noqa: F401
from runbook_lib.phases.production.conformance import drift, orphans  # noqa: F401
from runbook_lib.phases.production.monitoring import observability  # noqa: F401
from runbook_lib.phases.production.swarm_checks import replicas, task_history  # noqa: F401
from runbook_lib.phases.production.devserver import dev_server  # noqa: F401
from runbook_lib.phases.production.runtime import (judge_sample, logs, resource_chart, resources,  # noqa: F401
                                                   sample_stats_ahead, scan_lines, stability, usage_from_stats)
from runbook_lib.run.manifest import Manifest, swarm_only

# The notebook's sections, in order. A swarm replaces a failed task instead of restarting its container:
# its own account of the tasks (:mod:`.swarm_checks`) is judged in swarm mode only.
MANIFEST = Manifest(PHASE, {
    "environment and restart": [env, restart_policy],
    "healthcheck": [healthcheck],
    "drift": [drift],
    "orphans": [orphans],
    "replicas": [swarm_only(replicas), swarm_only(task_history)],
    "stability": [stability],
    "resources": [resources],
    "logs": [logs],
    "dev server": [dev_server],
    "observability": [observability],
})
