"""The mounts of a service of the resolved compose model, read as what the host gives the container.

A named volume of the ``local`` driver whose ``driver_opts`` say ``o: bind`` (or ``rbind``) and
``device: /some/host/path`` is a bind mount of that host path under a volume's name: the rules on host
paths (sensitive directories, the Docker socket, a host directory written by two services) judge it as one.
Such a mount is ``{"type": "bind", "source": <device>, "volume": <its name>, ...}``.
"""
from __future__ import annotations

from typing import Any, Mapping

from runbook_lib.errors import InputError


def volume_bind(volume: Mapping[str, Any] | None) -> tuple[str, bool] | None:
    """(host path, read-only) when a top-level volume of the model binds a host path (``local`` driver,
    ``o`` holding ``bind`` or ``rbind``, an absolute ``device``); None otherwise."""
    if not isinstance(volume, Mapping) or (volume.get("driver") or "local") != "local":
        return None
    opts = volume.get("driver_opts") or {}
    if not isinstance(opts, Mapping):
        return None
    flags = {o.strip() for o in str(opts.get("o") or "").split(",")}
    device = str(opts.get("device") or "")
    if not flags & {"bind", "rbind"} or not device.startswith("/"):
        return None
    return device, "ro" in flags


def compose_mounts(spec: Mapping[str, Any], name: str,
                   top_volumes: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every mount of one service: ``{"type", "source" (a named volume's name, a bind's host path),
    "target", "read_only", "propagation"}``; a named volume that binds a host path (``top_volumes``: the
    model's ``volumes:``) is a bind of that path, with ``"volume"`` naming it. InputError for an entry that
    is not a mount."""
    out = []
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        raise InputError(f"service {name}: volumes is not a list")
    for i, v in enumerate(volumes):
        if not isinstance(v, Mapping):
            raise InputError(f"service {name}: volumes[{i}]: {v!r} is not a mount")
        bind = v.get("bind") if isinstance(v.get("bind"), Mapping) else {}
        m = {"type": str(v.get("type") or "volume"), "source": str(v.get("source") or ""),
             "target": str(v.get("target") or ""), "read_only": bool(v.get("read_only")),
             "propagation": str(bind.get("propagation") or "")}
        host = volume_bind((top_volumes or {}).get(m["source"])) if m["type"] == "volume" and m["source"] else None
        if host:
            m.update(type="bind", volume=m["source"], source=host[0], read_only=m["read_only"] or host[1])
        out.append(m)
    return out
