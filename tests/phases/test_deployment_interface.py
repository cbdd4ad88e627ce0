"""The Deployment interface behind the checks (runbook_lib/deploy): a Compose project and a Swarm stack answer
the same methods, so a check asks what it needs and never which mode it runs in. No engine is asked: a fake
one answers as the engine would."""
from __future__ import annotations

import inspect

import pytest
import yaml

from runbook_lib.deploy import ComposeDeployment, Deployment, SwarmDeployment, open_deployment
from runbook_lib.engine import ContainerView
from runbook_lib.params import load_params
from runbook_lib.results.records import Check

STACK = "shop"


def _params(tmp_path, mode: str):
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump({"services": {"web": {"image": "runbook-demo/app:local"}}}))
    params = {"project": STACK, "mode": mode, "compose_files": ["compose.yaml"]}
    if mode == "swarm":
        params["stack"] = STACK
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    return load_params(tmp_path / "p.yaml")


def _view(name: str, service: str, task: str = "", running: bool = True) -> ContainerView:
    labels = ({"com.docker.stack.namespace": STACK, "com.docker.swarm.service.name": f"{STACK}_{service}",
               "com.docker.swarm.task.id": task} if task else
              {"com.docker.compose.project": STACK, "com.docker.compose.service": service})
    return ContainerView({"Id": name * 8, "Name": "/" + name, "Config": {"Labels": labels, "Env": []},
                          "State": {"Status": "running" if running else "exited", "Running": running},
                          "HostConfig": {"RestartPolicy": {"Name": "always"}}, "RestartCount": 2})


class FakeEngine:
    """Answers the calls a deployment makes, and counts them."""

    def __init__(self, containers, tasks=(), services=()):
        self._containers, self._tasks, self._services = list(containers), list(tasks), list(services)
        self.calls: list[str] = []

    def project_containers(self, project):
        self.calls.append("project_containers")
        return list(self._containers)

    def stack_containers(self, stack, service=None):
        self.calls.append("stack_containers")
        return [v for v in self._containers if service is None or v.service == service]

    def service_containers(self, project, service):
        self.calls.append("service_containers")
        return [v for v in self._containers if v.service == service]

    def stack_tasks(self, stack, service=None):
        self.calls.append("stack_tasks")
        return list(self._tasks)

    def stack_services(self, stack):
        self.calls.append("stack_services")
        return list(self._services)


def test_both_implementations_answer_every_method_of_the_interface():
    """Every public method and property of Deployment is implemented (none left abstract) by both, with the
    same parameters: a check written against the interface runs on either."""
    members = {n for n in dir(Deployment) if not n.startswith("_")}
    for cls in (ComposeDeployment, SwarmDeployment):
        assert not inspect.isabstract(cls), cls.__abstractmethods__
        for name in members:
            base, impl = getattr(Deployment, name), getattr(cls, name)
            if callable(base) and not isinstance(base, property):
                assert inspect.signature(base).parameters.keys() == inspect.signature(impl).parameters.keys(), \
                    (cls.__name__, name)
        assert cls.mode and cls.file_kind and cls.readiness_key and cls.nothing_deployed


@pytest.mark.parametrize("mode, cls, name", [("compose", ComposeDeployment, STACK), ("swarm", SwarmDeployment, STACK)])
def test_the_parameters_mode_names_the_deployment(tmp_path, mode, cls, name):
    d = open_deployment(_params(tmp_path, mode), FakeEngine([]))
    assert type(d) is cls and d.name == name and d.mode == mode
    assert d.variant(compose="c", swarm="s") == mode[0]


def test_the_commands_a_human_would_type_name_the_project_or_the_stack(tmp_path):
    compose = open_deployment(_params(tmp_path, "compose"), FakeEngine([]))
    swarm = open_deployment(_params(tmp_path, "swarm"), FakeEngine([]))
    assert compose.list_command() == f"docker ps -a --filter label=com.docker.compose.project={STACK}"
    assert compose.list_command("web") == "docker ps -a --filter label=com.docker.compose.service=web"
    assert swarm.list_command() == f"docker ps -a --filter label=com.docker.stack.namespace={STACK}"
    assert swarm.list_command("web") == f"docker ps -a --filter label=com.docker.swarm.service.name={STACK}_web"
    assert compose.inventory_command().startswith("docker ps -a") and "docker stack services" in swarm.inventory_command()
    assert compose.fault_command("db", "stop", 5) == f"docker stop {STACK}-db-1; sleep 5; docker start {STACK}-db-1"
    assert compose.fault_stack == "" and swarm.fault_stack == STACK
    assert compose.events_label is None and swarm.events_label == f"com.docker.stack.namespace={STACK}"
    assert "--swarm" not in compose.lint_command() and swarm.lint_command().startswith("runbook lint --swarm ")


def test_a_compose_project_is_its_containers_and_a_swarm_its_running_tasks(tmp_path):
    """Compose: every container of the project is current, and the orchestrator has no services or tasks of
    its own. Swarm: only the containers of tasks the scheduler wants running are current; the services and
    tasks are read once (kept in the cache the phase shares)."""
    views = [_view("a", "web"), _view("b", "web")]
    compose = open_deployment(_params(tmp_path, "compose"), FakeEngine(views))
    assert compose.current(compose.containers()) == views
    assert compose.service_specs() == {} and compose.tasks() == [] and compose.running_tasks("web") == []

    old, new = _view("old", "web", task="t-old", running=False), _view("new", "web", task="t-new")
    tasks = [{"ID": "t-old", "DesiredState": "shutdown"}, {"ID": "t-new", "DesiredState": "running"}]
    engine = FakeEngine([old, new], tasks=tasks)
    swarm = open_deployment(_params(tmp_path, "swarm"), engine)
    assert [v.name for v in swarm.current(swarm.containers())] == ["new"]
    swarm.current([new])
    assert engine.calls.count("stack_tasks") == 1


def test_what_a_check_reads_of_a_container_follows_the_deployment(tmp_path):
    """Restarts are counted on a compose container; a swarm replaces a task instead (prod.task_history judges
    that); an unhealthy container is left alone by Compose, replaced by a swarm."""
    v = _view("a", "web", task="t1")
    compose = open_deployment(_params(tmp_path, "compose"), FakeEngine([]))
    swarm = open_deployment(_params(tmp_path, "swarm"), FakeEngine([]))
    assert compose.restart_note() is None and "task_history" in swarm.restart_note()
    assert compose.container_detail(v) == ", 2 restarts" and swarm.container_detail(v) == ", task t1"
    assert "nothing will restart it" in compose.unhealthy_consequence(v)
    assert "scheduler replaces" in swarm.unhealthy_consequence(v)
    assert compose.file_kind == "compose" and swarm.file_kind == "stack file"
    assert not compose.serves_secrets_from_containers and swarm.serves_secrets_from_containers


def test_a_service_without_a_container_is_a_fail_in_either_mode(tmp_path):
    compose = open_deployment(_params(tmp_path, "compose"), FakeEngine([]))
    swarm = open_deployment(_params(tmp_path, "swarm"), FakeEngine([]))
    for d in (compose, swarm):
        rec = d.missing_service(Check("prod.stability"), "web", "a stable container")
        assert rec.status == "FAIL" and rec.target == "web" and rec.evidence["containers"] == []
