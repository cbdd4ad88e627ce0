"""`runbook demo up|down|status|build [--swarm]`: the embedded demo stack (a miniature SecureConnect), built and
started by the source checkout's ``runbook_demo`` package (demo/); an installed runbook-lib says where to find it.
The compose demo is started and stopped under the deploy lock (:mod:`runbook_lib.run.lock`), as any change to a
deployment is."""
from __future__ import annotations

import argparse
import sys

from runbook_lib.console import print_progress, raise_input


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        import runbook_demo as demo
    except ImportError as exc:
        if exc.name != "runbook_demo":
            raise
        # An installed runbook-lib: the demo builder is the source checkout's (demo/pyproject.toml).
        print("runbook demo: the demo comes with the source checkout (clone the runbook repository and run "
              "`make demo` there); it is not part of the installed runbook-lib package", file=sys.stderr)
        return 2

    if args.swarm:
        if args.override:
            raise_input("--override is for the compose demo; the swarm demo is demo/stack.yaml as it is")
        if args.action == "up":
            _print_status(demo.swarm_up(init_swarm=args.init_swarm, progress=print_progress))
            print(f"next: runbook run --params {demo.SWARM_PARAMS_FILE}")
            return 0
        if args.action == "down":
            demo.swarm_down(volumes=args.volumes, progress=print_progress)
            print("demo stack is down" + (" (volumes removed)" if args.volumes else " (volumes kept)"))
            return 0
        if args.action == "status":
            rows = demo.swarm_status()
            _print_status(rows, how="runbook demo up --swarm")
            return 0 if rows else 1
    if args.init_swarm:
        raise_input("--init-swarm goes with `runbook demo up --swarm`")
    if args.action == "build":
        demo.build_images(progress=print_progress, force=args.force)
    elif args.action == "up":
        with _demo_lock("runbook demo up"):
            _print_status(demo.up(overrides=args.override or (), progress=print_progress))
    elif args.action == "down":
        with _demo_lock("runbook demo down"):
            demo.down(volumes=args.volumes)
        print("demo stack is down" + (" (volumes removed)" if args.volumes else " (volumes kept)"))
    elif args.action == "status":
        rows = demo.status()
        _print_status(rows)
        return 0 if rows else 1
    return 0


def _demo_lock(command: str):
    from runbook_demo import PROJECT
    from runbook_lib.engine import Engine
    from runbook_lib.run.lock import holding

    return holding(Engine(), PROJECT, command, progress=print_progress)


def _print_status(rows: list[dict], how: str = "runbook demo up") -> None:
    if not rows:
        print(f"the demo stack is not running (start it with `{how}`)")
        return
    for r in rows:
        print(f"{r.get('service', ''):18} {r.get('state', ''):10} {r.get('health') or '-':10} {r.get('ports', '')}")


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="the embedded demo stack (a miniature SecureConnect)",
                       description="build: the offline images; up: secrets, images, start and wait until healthy; "
                       "down: stop and remove (volumes kept unless --volumes); status: what runs. With --swarm: the same "
                       "for the demo as a Swarm stack (demo/stack.yaml) on a swarm manager.")
    d.add_argument("action", choices=["up", "down", "status", "build"])
    d.add_argument("--override", action="append", metavar="FILE", help="extra compose file for `up`, a path or a name from demo/overrides (repeatable)")
    d.add_argument("--volumes", action="store_true", help="with `down`: also remove the demo's volumes")
    d.add_argument("--force", action="store_true", help="with `build`: rebuild even when up to date")
    d.add_argument("--swarm", action="store_true", help="the demo as a Swarm stack (demo/stack.yaml, stack secureconnect-swarm) "
                   "on the engine DOCKER_HOST names, which must be a swarm manager: `up` creates the swarm secrets from the "
                   "demo's files, deploys and waits until every service has converged; `down` removes the stack and "
                   "those secrets")
    d.add_argument("--init-swarm", action="store_true", help="with `up --swarm`: if the engine is not in a swarm, "
                   "make it a single-node one (`docker swarm init --advertise-addr 127.0.0.1`); never done without it")
    d.set_defaults(func=cmd_demo)
