"""The :class:`~runbook_lib.engine.client.Engine`'s swarm calls: the node's part in a swarm, its nodes, secrets
and configs by name (never a value), a stack's services, tasks and volumes, and scaling a service. Read-only but
for :meth:`SwarmCalls.scale_service`, which a scale drill uses (:mod:`runbook_lib.drills.faults`)."""
from __future__ import annotations

import copy
import json
import urllib.parse
from typing import Any

import docker.errors
import docker.utils.config
import requests.exceptions

from runbook_lib.engine.containers import STACK_LABEL
from runbook_lib.engine.sdk import EngineError, sdk_call


class SwarmCalls:
    """Mixed into :class:`~runbook_lib.engine.client.Engine`: uses its ``api`` (the SDK's APIClient) and
    :meth:`info`."""

    api: Any

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
        with sdk_call("listing swarm nodes"):
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
        with sdk_call(f"listing swarm {kind}s named {name}"):
            found = (self.api.secrets if kind == "secret" else self.api.configs)(filters={"name": name})
        return [{"id": o.get("ID", ""), "name": (o.get("Spec") or {}).get("Name", ""),
                 "created": o.get("CreatedAt", ""), "updated": o.get("UpdatedAt", ""),
                 "labels": (o.get("Spec") or {}).get("Labels") or {}}
                for o in found or [] if (o.get("Spec") or {}).get("Name") == name]

    def ingress_ports(self) -> list[dict[str, Any]]:
        """Host ports swarm services publish through the routing mesh (``mode: ingress``: held by the engine
        on every node, in no container's port list), as :meth:`published_ports` rows (``container``: the
        swarm service). ``[]`` when this engine is no swarm manager."""
        if not self.swarm_state()["manager"]:
            return []
        with sdk_call("listing the swarm's services"):
            services = self.api.services() or []
        out = []
        for svc in services:
            spec = svc.get("Spec") or {}
            for p in (svc.get("Endpoint") or {}).get("Ports") or (spec.get("EndpointSpec") or {}).get("Ports") or []:
                if p.get("PublishedPort") and (p.get("PublishMode") or "ingress") == "ingress":
                    out.append({"container": f"swarm service {spec.get('Name', '?')}", "id": svc.get("ID", ""),
                                "project": "", "stack": (spec.get("Labels") or {}).get(STACK_LABEL, ""), "ip": "",
                                "port": int(p["PublishedPort"]), "protocol": p.get("Protocol") or "tcp"})
        return out

    def stack_services(self, stack: str) -> list[dict[str, Any]]:
        """The swarm services of a stack (``docker service inspect`` of each, a manager's view), sorted by
        name. Their specs never hold a secret's value, only secret references."""
        with sdk_call(f"listing the services of stack {stack}"):
            found = self.api.services(filters={"label": f"{STACK_LABEL}={stack}"})
        return sorted(found or [], key=lambda s: (s.get("Spec") or {}).get("Name", ""))

    def stack_tasks(self, stack: str, service: str | None = None) -> list[dict[str, Any]]:
        """The tasks of a stack's services (every node's; current and past, as `docker stack ps` shows
        them), optionally of one stack-file service, oldest first."""
        names = [f"{stack}_{service}"] if service else [(s.get("Spec") or {}).get("Name", "") for s in self.stack_services(stack)]
        if not names:
            return []  # an empty service filter would list every task of the swarm
        with sdk_call(f"listing the tasks of {', '.join(names)}"):
            tasks = self.api.tasks(filters={"service": names}) or []  # one call: the engine ORs the names
        return sorted(tasks, key=lambda t: (t.get("CreatedAt", ""), t.get("ID", "")))

    def service(self, name: str) -> dict[str, Any]:
        """One swarm service (``docker service inspect NAME``). Raises EngineError (status 404) when there is none."""
        with sdk_call(f"inspecting service {name}"):
            return self.api.inspect_service(name)

    def scale_service(self, name: str, replicas: int) -> None:
        """Set a replicated service's replicas (``docker service scale NAME=N``): only the mode changes in the
        spec, so no rolling update of the other tasks. Raises EngineError for a global service or none."""
        with sdk_call(f"scaling service {name} to {replicas}"):
            svc = self.api.inspect_service(name)
            spec = copy.deepcopy(svc.get("Spec") or {})
            mode = spec.get("Mode") or {}
            if "Replicated" not in mode:
                raise EngineError(f"service {name} is not replicated (global): it cannot be scaled")
            spec["Mode"] = {"Replicated": {**mode["Replicated"], "Replicas": int(replicas)}}
            self._post_service_spec(svc["ID"], spec, (svc.get("Version") or {}).get("Index"))

    def _post_service_spec(self, service_id: str, spec: dict[str, Any], version: Any) -> None:
        """``POST /services/ID/update`` with ``spec`` exactly as given: what `docker service scale` sends. The
        SDK's ``update_service`` rebuilds a spec from its parts (``fetch_current_spec``), which the next
        `docker stack deploy` reads as a changed spec and answers by replacing the tasks, so the request is
        made here with the APIClient's public parts (``base_url``, ``api_version``, ``timeout``, the requests
        session's ``post``), with the headers and the null-dropping of the SDK's own JSON posts. An error
        answer raises the SDK's APIError (NotFound for 404), as the SDK's own calls do."""
        api = self.api
        url = f"{api.base_url}/v{api.api_version}/services/{urllib.parse.quote(service_id, safe='/:')}/update"
        headers = {"Content-Type": "application/json", **(docker.utils.config.load_general_config().get("HttpHeaders") or {})}
        body = json.dumps({k: v for k, v in spec.items() if v is not None})
        resp = api.post(url, data=body, params={"version": version}, headers=headers, timeout=api.timeout)
        try:
            resp.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            docker.errors.create_api_error_from_http_exception(exc)  # raises APIError (NotFound for 404)

    def stack_volumes(self, stack: str) -> list[dict[str, Any]]:
        """The named volumes of a stack on THIS engine (a node has only the volumes of the tasks it ran), in
        the shape of :meth:`project_volumes` (``volume``: the name in the stack file)."""
        with sdk_call("listing volumes"):
            vols = self.api.volumes(filters={"label": f"{STACK_LABEL}={stack}"}).get("Volumes") or []
        return sorted(({"name": v["Name"], "created": v.get("CreatedAt", ""), "driver": v.get("Driver", ""),
                        "volume": v["Name"][len(stack) + 1:] if v["Name"].startswith(stack + "_") else v["Name"]}
                       for v in vols), key=lambda v: v["name"])
