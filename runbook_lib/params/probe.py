"""The probe load phase 1 sends while it redeploys (``redeploy.probe``): what users would have seen."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runbook_lib.params.strict import StrictModel


class ProbeEndpoint(StrictModel):
    """An endpoint the redeployment's probe load asks throughout phase 1; a request counts as failed when
    it gets no answer in time or a status outside ``ok_status``."""

    name: str = Field(min_length=1, description="How the evidence and the timeline name it (unique).")
    url: str = Field(pattern=r"^https?://", description="Host URL, e.g. http://127.0.0.1:8080/health.")
    method: Literal["GET", "HEAD"] = Field(default="GET", description="HTTP method (nothing that changes data).")
    ok_status: list[int] = Field(default_factory=lambda: [200], min_length=1, description=(
        "Statuses that count as served (401 from a route behind a gateway proves the service behind answered)."))
    timeout_s: float = Field(default=2, gt=0, le=30, description="Seconds each request may take.")


class ProbeLoad(StrictModel):
    """The bounded probe load phase 1 sends while it redeploys: what users would have seen."""

    enabled: bool = Field(default=True, description="Send it (false: redeploy.outage is SKIP).")
    rate: float = Field(default=10, gt=0, le=100, description=(
        "Requests per second, all endpoints together (each endpoint is asked every len(endpoints)/rate s)."))
    endpoints: list[ProbeEndpoint] = Field(default_factory=list, description=(
        "What to ask; empty: the first of smoke.endpoints, else GET smoke.health_path on the first published port "
        "of the first app service (the gateway's health, in the demo)."))
    max_s: float = Field(default=1800, gt=0, le=86400, description=(
        "The load stops by itself after this many seconds, whatever happens to the phase; a phase that outlasts "
        "it is not watched to its end, and redeploy.outage is then ERROR unless it saw an outage over budget."))

    @model_validator(mode="after")
    def _unique_names(self) -> "ProbeLoad":
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError("redeploy.probe.endpoints: duplicate name(s)")
        return self
