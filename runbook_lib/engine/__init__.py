"""The engine: the Docker engine through the docker SDK (:mod:`.client`'s :class:`Engine`, its calls in one
module per section: :mod:`.container_calls`, :mod:`.file_calls`, :mod:`.image_calls`, :mod:`.event_calls`,
:mod:`.swarm_calls`; SDK errors wrapped at :mod:`.sdk`), what it says about containers (:mod:`.containers`,
:mod:`.processes`, :mod:`.procfs`), the Compose v2 CLI (:mod:`.compose`), the docker CLI's stacks
(:mod:`.stack`, :mod:`.service_spec`) and the bounded pool per-container reads share (:mod:`.pool`).
Nothing here judges; the phases and the rules do.

The names below are imported on first use, so that importing :mod:`.compose` or :mod:`.pool` alone (what
`runbook lint` needs) does not load the docker SDK and requests."""
from __future__ import annotations

__all__ = ["Engine", "EngineError", "ContainerView", "FileEntry"]

_LAZY = {"Engine": "client", "EngineError": "sdk", "ContainerView": "containers", "FileEntry": "containers"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
