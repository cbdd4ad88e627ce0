"""The sections of a fleet run: ``targets`` (the engines) and ``fleet`` (how a run over them proceeds)."""
from __future__ import annotations

import re

from pydantic import Field, model_validator

from runbook_lib.params.strict import StrictModel


class Target(StrictModel):
    """One engine of a fleet: where its Docker API answers, and where its published ports answer."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description=(
        "The target's name (lowercase letters, digits, - and _): its run directory is targets/NAME/ inside the "
        "fleet's, and the fleet's records and report name it (`NAME/auth-service`)."))
    docker_host: str = Field(default="", description=(
        "The engine's DOCKER_HOST: unix:///var/run/docker.sock, tcp://HOST:2376, ssh://USER@HOST (the docker SDK "
        "needs paramiko installed for ssh://; the remote user needs access to the engine). Exactly one of "
        "docker_host and context."))
    context: str = Field(default="", description=(
        "A docker context name (`docker context ls`), resolved to its endpoint with `docker context inspect` "
        "when the run starts. Exactly one of docker_host and context."))
    address: str = Field(default="", pattern=r"^[A-Za-z0-9._:\[\]-]*$", description=(
        "Where this engine's published ports answer from the machine running the runbook (a host name or IP). "
        "Every loopback URL of the parameters (127.0.0.1, localhost: production.*_url, smoke endpoints, metrics, "
        "flow, drills, the probe load and TURN servers) is rewritten to this address for this target. Empty: URLs are used as written (the "
        "engine's ports answer on this machine's loopback, or the URLs already name the host)."))

    @model_validator(mode="after")
    def _one_endpoint(self) -> "Target":
        if bool(self.docker_host) == bool(self.context):
            raise ValueError("give exactly one of docker_host (e.g. ssh://user@host) and context (a docker context "
                             f"name){': both are set' if self.docker_host else ''}")
        if self.docker_host and not re.match(r"^(unix|tcp|ssh|npipe|fd|http|https)://", self.docker_host):
            raise ValueError(f"docker_host {self.docker_host!r} is not a Docker endpoint (unix:///PATH, "
                             "tcp://HOST:PORT, ssh://USER@HOST)")
        return self


class Fleet(StrictModel):
    """How a run with several `targets` proceeds."""

    parallel_destructive: bool = Field(default=False, description=(
        "false (default): when the run includes a phase that changes the deployment (redeploy, drills), the "
        "targets are rolled one at a time, in the order listed, and after the first NO-GO the remaining "
        "targets run their read-only phases only (their destructive phases are recorded SKIP). true: every "
        "target runs every phase at the same time."))
    target_timeout_s: float = Field(default=7200, gt=0, description=(
        "Seconds one target's run may take before it is interrupted (SIGINT: it restores what it broke and "
        "writes its run directory; SIGTERM 120 s later, SIGKILL 30 s after that); the target is then NO-GO and "
        "its fleet.target_verdict record says it was interrupted."))
