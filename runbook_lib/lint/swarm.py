"""`runbook lint --swarm`: what `docker stack deploy` does with a compose file, and the `deploy:` rules.

Compose and Swarm read the same file differently. `docker stack deploy` (the docker CLI's own loader, not
Compose) **refuses** some keys Compose honours, **ignores** others with one warning line on stderr that
scrolls away, and ignores some silently. A hardening key Swarm ignores has no effect: judging it as if it
did would be a false PASS. So under ``--swarm`` the service rules judge the service *as Swarm applies it*
(:func:`swarm_spec` drops what it ignores), a finding caused by a dropped key says so, and
``swarm.unsupported_keys`` names every such key.

What each key does was checked, not only read: one `docker stack deploy` per key on a single-node swarm
(docker CLI 28.2, engine 20.10), then `docker service inspect` of what was created. It matches the docker
CLI's tables (cli/compose/types: ``UnsupportedProperties``, ``DeprecatedProperties``,
``ForbiddenProperties``) and its schema; older CLIs ignore more (cap_add/cap_drop before 20.10).
"""
from __future__ import annotations

from typing import Any, Mapping

from runbook_lib.model.restart import policy_accepted
from runbook_lib.lint.rules import Verdict

# `docker stack deploy` stops with an error: the stack is not deployed at all.
REJECTED: dict[str, str] = {
    "mem_limit": "refused (\"Set resource limits using deploy.resources\"): use deploy.resources.limits.memory",
    "memswap_limit": "refused: use deploy.resources",
    "cpu_quota": "refused: use deploy.resources.limits.cpus",
    "cpu_shares": "refused: use deploy.resources",
    "cpuset": "refused: use deploy.resources",
    "cpus": "refused by the stack file schema (\"Additional property cpus is not allowed\"): use "
            "deploy.resources.limits.cpus",
    "pids_limit": "refused by the stack file schema: use deploy.resources.limits.pids",
    "volumes_from": "refused: define a top-level volume and mount it in each service",
    "extends": "refused: resolve it first (`docker compose config`)",
}
# Deployed, but the key has no effect (stderr says "Ignoring unsupported options" or "Ignoring
# deprecated options" for most; depends_on is ignored without a word).
IGNORED: dict[str, str] = {
    "restart": "ignored: the restart policy of a swarm service is deploy.restart_policy",
    "container_name": "ignored: Swarm names the tasks (<stack>_<service>.<slot>.<id>)",
    "depends_on": "ignored, silently: Swarm starts every service at once; the service must wait for its "
                  "dependencies itself",
    "privileged": "ignored: swarm services cannot run privileged",
    "security_opt": "ignored: no-new-privileges, seccomp, AppArmor and SELinux options do not reach the task",
    "devices": "ignored: swarm services get no device from the compose file",
    "userns_mode": "ignored",
    "cgroup_parent": "ignored",
    "network_mode": "ignored: a swarm service is attached to the stack's networks",
    "ipc": "ignored",
    "pid": "ignored",
    "shm_size": "ignored",
    "links": "ignored: services reach each other by name on the stack's networks",
    "external_links": "ignored",
    "mac_address": "ignored",
    "domainname": "ignored",
    "expose": "ignored (not needed: services on one network reach each other on any port)",
    "build": "ignored: `docker stack deploy` never builds; the image must exist on every node (or a registry)",
    "tmpfs": "ignored, silently (the service spec gets no mount; checked on engine 20.10): mount a volume of "
             "`type: tmpfs` instead, or a read-only root file system has no writable path",
}
# The keys whose loss changes a hardening, limit or restart rule's verdict.
HARDENING_KEYS = frozenset({"restart", "privileged", "security_opt", "devices", "userns_mode", "cgroup_parent",
                            "network_mode", "ipc", "pid", "mem_limit", "memswap_limit", "cpu_quota", "cpus",
                            "pids_limit"})


def swarm_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The service as `docker stack deploy` applies it: every key it ignores or refuses removed (a
    refused key makes the whole deployment fail; the rules then judge what is left)."""
    return {k: v for k, v in spec.items() if k not in IGNORED and k not in REJECTED}


def dropped_keys(spec: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in spec if k in IGNORED or k in REJECTED)


def judge_unsupported(spec: Mapping[str, Any]) -> Verdict:
    """swarm.unsupported_keys: every key of the service takes effect under `docker stack deploy`. FAIL
    when the deployment would be refused (a key the stack loader rejects, or a service with ``build:``
    and no ``image:``) or when a hardening, limit or restart key would be ignored (its protection is
    gone); WARN when only other keys are ignored."""
    rejected = sorted(k for k in spec if k in REJECTED)
    ignored = sorted(k for k in spec if k in IGNORED)
    ev: dict[str, Any] = {"rejected": {k: REJECTED[k] for k in rejected}, "ignored": {k: IGNORED[k] for k in ignored},
                          "read": "the compose model; what docker stack deploy does with each key (lint/swarm.py)"}
    expected = "every key takes effect under docker stack deploy"
    problems = [f"{k} {REJECTED[k].split(':')[0]}" for k in rejected]
    # the keys a finding points at (SARIF line): the refused ones first, then hardening ones, then the rest
    ev["offending_keys"] = rejected + sorted(ignored, key=lambda k: k not in HARDENING_KEYS)
    if not spec.get("image"):
        ev["offending_keys"].insert(0, "build")
        problems.insert(0, "no image: docker stack deploy refuses the stack (\"no image specified\"); it never builds")
        ev["image"] = None
    lost = [k for k in ignored if k in HARDENING_KEYS]
    if problems or lost:
        text = "; ".join(problems + [f"{k} has no effect under Swarm" for k in lost])
        rest = [k for k in ignored if k not in lost]
        return Verdict("FAIL", expected, text + (f" (also ignored: {', '.join(rest)})" if rest else ""), ev,
                       severity="high" if problems else None)
    if ignored:
        return Verdict("WARN", expected, f"ignored by docker stack deploy: {', '.join(ignored)}", ev, severity="low")
    return Verdict("PASS", expected, f"{len(spec)} keys, none ignored or refused by docker stack deploy", ev)


def _deploy(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec.get("deploy") or {}


def judge_replicas(spec: Mapping[str, Any], one_shot: str = "") -> Verdict:
    """swarm.replicas: a replicated service says how many replicas it runs (``deploy.replicas``); a
    global service runs one per node. Unset is a WARN: Swarm runs one, and nothing says one was meant."""
    d = _deploy(spec)
    mode, replicas = d.get("mode") or "replicated", d.get("replicas")
    ev = {"mode": mode, "replicas": replicas}
    expected = "deploy.replicas set (or deploy.mode: global)"
    if mode == "global":
        return Verdict("PASS", expected, "mode global: one task per node", ev)
    if replicas is None:
        return Verdict("WARN", expected, "deploy.replicas not set: Swarm runs 1, and a single task means downtime on "
                       "every update or node loss", ev)
    if int(replicas) == 0:
        return Verdict("INFO", expected, f"0 replicas{f': a one-shot job ({one_shot})' if one_shot else ''}", ev,
                       severity="info")
    return Verdict("PASS", expected, f"{replicas} replica{'s' if int(replicas) != 1 else ''}", ev)


# Swarm's restart conditions in the engine words production.restart_policy uses.
_CONDITION = {"any": "always", "on-failure": "on-failure", "none": "no"}


def judge_restart_policy(spec: Mapping[str, Any], accepted: list[str], one_shot: str = "") -> Verdict:
    """swarm.restart_policy: ``deploy.restart_policy`` (``restart:`` is ignored by docker stack deploy) has
    a condition ``production.restart_policy`` accepts (any = always), and a bound that makes sense:
    max_attempts together with a window. Without one, Swarm's default applies (condition any, no limit)."""
    rp = _deploy(spec).get("restart_policy")
    ev: dict[str, Any] = {"restart_policy": rp, "restart_ignored": spec.get("restart"), "accepted": accepted,
                          "read": "production.restart_policy"}
    expected = "deploy.restart_policy with an accepted condition (" + " or ".join(accepted) + ")"
    ignored = f" (restart: {spec['restart']} is ignored by docker stack deploy)" if spec.get("restart") else ""
    if not rp:
        return Verdict("WARN", expected, "no deploy.restart_policy: Swarm's default applies (condition any, unlimited "
                       "attempts, no window)" + ignored, ev)
    cond = rp.get("condition") or "any"
    policy = _CONDITION.get(cond, cond)
    if policy == "on-failure" and rp.get("max_attempts"):
        policy = f"on-failure:{rp['max_attempts']}"
    ev["policy"] = policy
    if one_shot and policy != "always":
        return Verdict("INFO", expected, f"condition {cond}: right for a one-shot job ({one_shot})", ev, severity="info")
    if not policy_accepted(policy, accepted):
        return Verdict("FAIL", expected, f"condition {cond}: not a policy production.restart_policy accepts"
                       + ignored, ev, severity="high")
    attempts, window = rp.get("max_attempts"), rp.get("window")
    if attempts and not window:
        return Verdict("WARN", expected, f"condition {cond}, max_attempts {attempts} with no window: after {attempts} "
                       "failures in the service's whole life Swarm stops replacing the task", ev, severity="low")
    bound = f"max_attempts {attempts} within {window}" if attempts else "unlimited attempts"
    return Verdict("PASS", expected, f"condition {cond}, {bound}" + (f", delay {rp['delay']}" if rp.get("delay") else "")
                   + ignored, ev)


def judge_update_config(spec: Mapping[str, Any]) -> Verdict:
    """swarm.update_config: a failed rolling update stops (``failure_action: pause``) or rolls back
    (``rollback``), never ``continue``s; ``parallelism`` is not 0 (every task at once); a single replica
    updated ``stop-first`` has downtime on every update (a WARN). No update_config: Swarm's defaults
    (parallelism 1, stop-first, pause) apply, a WARN: nothing says they were chosen."""
    d = _deploy(spec)
    uc = d.get("update_config")
    ev = {"update_config": uc, "replicas": d.get("replicas")}
    expected = "update_config with failure_action rollback or pause, a parallelism, an order"
    if not uc:
        return Verdict("WARN", expected, "no deploy.update_config: Swarm's defaults apply (parallelism 1, order "
                       "stop-first, failure_action pause)", ev)
    action = uc.get("failure_action") or "pause"
    order = uc.get("order") or "stop-first"
    par = uc.get("parallelism", 1)
    if action not in ("rollback", "pause"):
        return Verdict("FAIL", expected, f"failure_action {action}: a failing update goes on replacing healthy tasks", ev)
    if par == 0:
        return Verdict("WARN", expected, "parallelism 0: every task is updated at once", ev)
    if order == "stop-first" and (d.get("replicas") in (None, 1)) and (d.get("mode") or "replicated") == "replicated":
        return Verdict("WARN", expected, f"order stop-first with a single replica: downtime on every update "
                       "(order: start-first)", ev, severity="low")
    return Verdict("PASS", expected, f"failure_action {action}, order {order}, parallelism {par}"
                   + (f", monitor {uc['monitor']}" if uc.get("monitor") else ""), ev)


def judge_rollback_config(spec: Mapping[str, Any]) -> Verdict:
    """swarm.rollback_config: how a rollback runs. When updates roll back on failure, a rollback_config
    must say how (WARN without one: Swarm's defaults, parallelism 1, stop-first, pause); its own
    failure_action must not be ``continue``. Updates that do not roll back automatically: INFO."""
    d = _deploy(spec)
    rc, uc = d.get("rollback_config"), d.get("update_config") or {}
    ev = {"rollback_config": rc, "update_failure_action": uc.get("failure_action")}
    expected = "rollback_config set when updates roll back on failure"
    if rc:
        action = rc.get("failure_action") or "pause"
        if action == "continue":
            return Verdict("FAIL", expected, "rollback_config.failure_action continue: a failing rollback goes on", ev)
        return Verdict("PASS", expected, f"failure_action {action}, order {rc.get('order') or 'stop-first'}, "
                       f"parallelism {rc.get('parallelism', 1)}", ev)
    if uc.get("failure_action") == "rollback":
        return Verdict("WARN", expected, "updates roll back on failure but no deploy.rollback_config says how "
                       "(Swarm's defaults: parallelism 1, stop-first, pause)", ev)
    return Verdict("INFO", expected, "no automatic rollback (update_config.failure_action is not rollback): roll "
                   "back by hand with `docker service rollback`", ev, severity="info")


def swarm_verdicts(spec: Mapping[str, Any], accepted: list[str], one_shot: str = "") -> list[tuple[str, Verdict]]:
    """(rule id, verdict) of every swarm rule for one service of the model."""
    return [("swarm.unsupported_keys", judge_unsupported(spec)), ("swarm.replicas", judge_replicas(spec, one_shot)),
            ("swarm.restart_policy", judge_restart_policy(spec, accepted, one_shot)),
            ("swarm.update_config", judge_update_config(spec)), ("swarm.rollback_config", judge_rollback_config(spec))]
