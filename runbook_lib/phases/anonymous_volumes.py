"""Phase 1: data kept in anonymous volumes across a redeployment (part of ``redeploy.volumes_preserved``).

An image's ``VOLUME`` (the official postgres image's ``/var/lib/postgresql/data``) or a compose ``volumes:``
entry without a source gives each container a volume of its own, named by a random 64-hex id. Compose keeps it
when it *recreates* a container in place, but ``docker compose down`` then ``up`` makes new containers with
new, empty volumes: the database starts empty, the old data sits in a dangling volume, and nothing was
destroyed, so the named-volume rule alone sees nothing ("the project had no volumes before").

So the inventory before and after records, per service, each anonymous volume and where it is mounted, and
the judgement compares them: the same volume at the same path after the redeployment is a PASS; a different one
is a FAIL that names both and says how to get the data back.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from runbook_lib.results.records import Check, CheckRecord

_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


def anonymous_mounts(containers: Iterable[Any]) -> list[dict[str, str]]:
    """Each anonymous volume mounted by a container of the project: service, container, path, volume name."""
    out = []
    for v in containers:
        for m in v.mounts:
            name = m.get("Name") or ""
            if m.get("Type") == "volume" and _ANONYMOUS.match(name):
                out.append({"service": v.service, "container": v.name, "target": m.get("Destination", ""),
                            "volume": name})
    return sorted(out, key=lambda d: (d["service"], d["target"], d["container"]))


def judge_anonymous(c: Check, before: list[dict[str, str]], after: list[dict[str, str]]) -> list[CheckRecord]:
    """One record per (service, path) that held an anonymous volume before: PASS when a container of the
    service mounts the same volume there after, FAIL when only new volumes are (the old data left behind)."""
    now: dict[tuple[str, str], list[str]] = {}
    for m in after:
        now.setdefault((m["service"], m["target"]), []).append(m["volume"])
    out = []
    for m in before:
        key = (m["service"], m["target"])
        target = f"{m['service']}:{m['target']}"
        ev = {"before": m, "after": [x for x in after if (x["service"], x["target"]) == key],
              "anonymous": "a volume with no name of its own: the image's VOLUME or a compose volume without a source"}
        expected = f"the anonymous volume {m['volume'][:12]} still mounted at {m['target']}"
        if m["volume"] in now.get(key, []):
            out.append(c.record(target, "PASS", expected=expected, actual=f"still mounted by {m['service']}",
                                evidence=ev))
        else:
            new = ", ".join(v[:12] for v in now.get(key, [])) or "none"
            out.append(c.record(
                target, "FAIL", expected=expected,
                actual=f"{m['service']} now mounts a new, empty volume at {m['target']} ({new}); the data was in "
                       f"{m['volume'][:12]}, left behind by the redeployment",
                evidence=ev,
                remediation=f"Stop {m['service']}, copy the data back from volume {m['volume']} (`docker run --rm -v "
                            f"{m['volume']}:/from -v <new volume>:/to ... cp -a /from/. /to/`), and declare a named "
                            f"volume for {m['target']} in the compose file so a redeployment keeps it."))
    return out
