"""The service model: what a compose file or a running container says about one service.

:class:`~runbook_lib.model.facts.ServiceFacts` is built from the resolved compose model (``docker compose config``)
or from ``docker inspect``; its mounts, ports and restart policy are read here the way the engine applies them.
`runbook lint`, the phases' checks (drift compares the two sources) and the Swarm stack loader all read it. It
imports nothing of the project but :mod:`runbook_lib.errors`, so lint starts without the engine client.
"""
