"""`runbook watch` on the command line: its parser and a thin command over :func:`runbook_lib.run.watch.watch`
(kept out of cli.py, which only adds the parser; nothing heavy imported until the command runs)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:9469"
RULES_HELP = "print the Prometheus alert rules shipped with runbook (RunbookNoGo, RunbookStale, RunbookNewBlocker) and exit"


def cmd_watch(args: argparse.Namespace) -> int:
    from runbook_lib.console import raise_input

    if args.print_rules:
        from runbook_lib.package_data import package_path

        sys.stdout.write((package_path("data") / "prometheus-rules.yml").read_text(encoding="utf-8"))
        return 0
    if not args.params:
        raise_input("runbook watch: --params FILE is required")
    from runbook_lib.run.watch import WatchOptions, parse_every, watch

    def log(line: str) -> None:
        print(line, flush=True)

    return watch(WatchOptions(params=Path(args.params), every_s=parse_every(args.every), keep=args.keep,
                              output=Path(args.output), phases=args.phase or None, compose_files=args.compose or None,
                              listen="" if args.no_exporter else args.listen, count=args.count, kernel=args.kernel,
                              verbose=args.verbose), log=log)


def add_watch_parser(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser("watch", help="run the read-only runbook on a schedule and export its verdict to Prometheus",
                       description="Every --every, a read-only run (as `runbook run --read-only`: phases 0, 2, 3, phase "
                       "4's health, metrics and safe flow steps, 5; never phase 1 or a drill), each a signed run "
                       "directory under --output. After each run: what changed since the previous one (as `runbook "
                       "diff`), one log line per new blocker; the newest --keep runs and the last GO kept (links "
                       "`latest` and `last-go`). Metrics on --listen (/metrics), /healthz while the loop runs. A run "
                       "the engine cannot serve is an ERROR run and the loop goes on; an invalid parameters file is "
                       "logged and retried at the next run. SIGTERM/SIGINT stop it (exit 0). Set-up: docs/watch.md.")
    w.add_argument("--params", metavar="FILE", help="parameters YAML (required)")
    w.add_argument("--every", default="5m", metavar="DURATION", help="from one run's start to the next: 90s, 5m, 1h "
                   "(default: 5m; a run longer than that is followed at once by the next)")
    w.add_argument("--keep", type=int, default=10, metavar="N", help="run directories kept besides the last GO (default: 10)")
    w.add_argument("--output", default="outputs/watch", metavar="DIR",
                   help="the watcher's own directory of runs (default: outputs/watch); older runs there are removed")
    w.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"the exporter's address (default: {DEFAULT_LISTEN}; port 0: any free one)")
    w.add_argument("--no-exporter", action="store_true", help="no HTTP endpoint: runs and log lines only")
    w.add_argument("--phase", action="append", metavar="NAME", help="watch only these phases (repeatable; never phase 1)")
    w.add_argument("--compose", action="append", metavar="FILE", type=Path,
                   help="compose file(s) to use instead of the parameters' compose_files (repeatable, in order)")
    w.add_argument("--count", type=int, default=0, metavar="N", help="stop after N runs (default: 0, never)")
    w.add_argument("--kernel", default="python3", help=argparse.SUPPRESS)
    w.add_argument("--verbose", action="store_true", help="also print each run's progress lines")
    w.add_argument("--print-rules", action="store_true", help=RULES_HELP)
    w.set_defaults(func=cmd_watch)
