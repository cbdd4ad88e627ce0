"""`runbook lock status|release`: the operator's view of a deployment's deploy lock (:mod:`runbook_lib.run.lock`).
Kept out of cli.py, which only adds the parser."""
from __future__ import annotations

import argparse
import json


def _project(args: argparse.Namespace) -> str:
    from runbook_lib.errors import InputError

    if args.project:
        return args.project
    if args.params:
        from runbook_lib.params import load_params

        return load_params(args.params).project
    raise InputError("runbook lock: name the deployment with --project NAME or --params FILE")


def cmd_lock(args: argparse.Namespace) -> int:
    """status: who holds the lock (exit 0 free, 1 held); release: remove it whoever holds it (exit 0)."""
    from runbook_lib.engine import Engine
    from runbook_lib.run.lock import DeployLock

    project = _project(args)
    lock = DeployLock.for_engine(Engine(), project)
    holder = lock.status()
    if args.action == "release":
        if holder is None:
            print(f"the deploy lock of {project} is free (nothing to release) [{lock.directory}]")
            return 0
        lock.release(None, reason="released by `runbook lock release`")
        print(f"released the deploy lock of {project}, held by {holder.describe()}"
              + (f" (it was stale: {holder.stale()})" if holder.stale() else " (that run may still be changing the deployment)"))
        return 0
    if args.format == "json":
        print(json.dumps({"project": project, "state": str(lock.directory), "held": holder is not None,
                          "holder": holder.__dict__ if holder else None, "stale": holder.stale() if holder else ""}, indent=1))
    elif holder is None:
        print(f"free: nobody holds the deploy lock of {project} [{lock.directory}]")
    else:
        stale = holder.stale()
        print(f"held: {project} by {holder.describe()}" + (f" — stale ({stale}): the next run takes it over" if stale else ""))
    return 0 if holder is None else 1


def add_lock_parser(sub: argparse._SubParsersAction) -> None:
    lk = sub.add_parser("lock", help="who holds a deployment's deploy lock; release a lock whose run is gone",
                        description="A run that changes the deployment (phase 1, phase 4's drills) and `runbook demo "
                        "up|down` hold a lock per compose project and engine; a second one is refused (exit 3) unless "
                        "--wait. status: exit 0 free, 1 held. release: removes the lock whoever holds it.")
    lk.add_argument("action", choices=["status", "release"])
    lk.add_argument("--project", metavar="NAME", help="compose project name")
    lk.add_argument("--params", metavar="FILE", help="parameters YAML naming the project")
    lk.add_argument("--format", choices=["text", "json"], default="text")
    lk.set_defaults(func=cmd_lock)
