"""The engine: the Docker engine through the docker SDK (:mod:`.client`), what it says about containers
(:mod:`.containers`), the Compose v2 CLI (:mod:`.compose`) and the bounded pool per-container reads share
(:mod:`.pool`). Nothing here judges; the phases and the rules do."""
from runbook_lib.engine.client import Engine, EngineError
from runbook_lib.engine.containers import ContainerView, FileEntry

__all__ = ["Engine", "EngineError", "ContainerView", "FileEntry"]
