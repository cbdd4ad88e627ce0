"""`runbook lint` on the command line: the parser, and what a run of it does around :func:`lint_files`
(inline suppressions, the baseline, the failure threshold, the output format, one project per directory
for pre-commit).

Why the default threshold is ``high``: it is the run's own default (``policy.blocking_severities``:
critical and high block a GO), so a file that lint passes does not block the runbook on the same rules,
and a team adopting lint is not stopped by the dozens of medium hardening findings every public compose
file has (none of the nine public projects of the test corpus is free of them). With ``--params``, the
threshold is the lowest of that file's blocking severities. Findings under the threshold are printed all
the same; ERROR (a rule that could not look) always fails.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runbook_lib.errors import InputError, RunbookError

FORMATS = ("table", "json", "sarif", "github", "gitlab")
#: The file names `docker compose` reads in a directory when no -f is given, base first, then its override.
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml",
                  "docker-compose.override.yml")


def add_parser(sub: argparse._SubParsersAction) -> None:
    li = sub.add_parser("lint", help="static security audit of compose files (no engine needed)",
                        description="Resolve the compose files with `docker compose config` and judge the model "
                        "with the rules phase 2 applies to running containers, plus unpinned images, secret "
                        "declarations, healthchecks and restart policies. Exit 0 when no FAIL at or above "
                        "--fail-on (and no ERROR), 1 otherwise, 2 input error, 4 internal error (a bug: no finding made). "
                        "Inline suppressions: "
                        '# runbook-lint: ignore=RULE[,RULE] reason="..." on the line or the line above '
                        "(docs/lint.md).")
    li.add_argument("files", nargs="*", metavar="FILE", type=Path,
                    help="compose files, merged in order (default: the compose_files of --params)")
    li.add_argument("--env-file", action="append", metavar="FILE", type=Path, help="env file for interpolation (repeatable)")
    li.add_argument("--params", metavar="FILE", help="parameters YAML: its `security` and `policy.severity_overrides` apply")
    li.add_argument("--format", choices=FORMATS, default="table",
                    help="stdout format (default: table): json (check records), sarif (2.1.0, code scanning), "
                         "github (workflow commands: annotations on the file's lines), gitlab (Code Quality JSON)")
    li.add_argument("--fail-on", choices=("low", "medium", "high", "critical"), metavar="SEVERITY",
                    help="exit 1 when a FAIL of this severity or higher is not suppressed nor in the baseline "
                         "(low, medium, high, critical; default: high, or the lowest of --params' "
                         "policy.blocking_severities); findings below it are still printed")
    li.add_argument("--baseline", metavar="FILE", type=Path,
                    help="only findings not in this baseline fail (fingerprints keep no line numbers)")
    li.add_argument("--write-baseline", metavar="FILE", type=Path,
                    help="write every current finding to FILE as the baseline, then exit 0 (unless an ERROR)")
    li.add_argument("--per-directory", action="store_true",
                    help="the files are changed files (pre-commit): lint, once per directory, the project "
                         "`docker compose` reads there (compose.yaml and its override; another file given is "
                         "linted on top of that base); formats table and github")
    li.add_argument("--profile", action="append", metavar="NAME",
                    help="lint only the services of this compose profile (repeatable; default: every service, "
                         "all profiles included)")
    li.add_argument("--compose-timeout", type=float, default=None, metavar="S",
                    help="how long `docker compose config` may take to resolve the files before lint gives up "
                         "(default: 30; a project of thousands of services on a loaded machine may need more)")
    li.add_argument("--swarm", action="store_true",
                    help="judge the files as `docker stack deploy` applies them: external secrets and configs are "
                         "accepted (INFO), deploy: is checked (replicas, resources, restart_policy, update_config, "
                         "rollback_config), and a key Swarm ignores or refuses is named, never counted as protection "
                         "(implied by --params with mode: swarm)")
    li.set_defaults(func=cmd_lint)


def projects_per_directory(files: list[Path]) -> list[list[Path]]:
    """Changed files grouped into the projects `docker compose` would read: per directory, its default
    file and override; a file with another name (``compose.prod.yaml``) on top of that base, alone when
    the directory has none. Each project once, in the order first seen."""
    out: list[list[Path]] = []
    for f in files:
        d = f.parent
        base = next((d / n for n in DEFAULT_FILES if (d / n).is_file()), None)
        override = next((d / n for n in OVERRIDE_FILES if (d / n).is_file()), None)
        if base and (f.name in DEFAULT_FILES or f.name in OVERRIDE_FILES):
            group = [base] + ([override] if override else [])
        elif base:
            group = [base, f]
        else:
            group = [f]
        if group not in out:
            out.append(group)
    return out


def _lint_one(files: list[Path], args: argparse.Namespace, params) -> "LintResult":  # noqa: F821
    from runbook_lib.lint.run import lint_files  # the rules and the output load while Compose runs

    env_files = args.env_file or (params.env_files if params else [])
    result = lint_files(files, env_files=env_files, params=params, profiles=args.profile or (), swarm=args.swarm,
                        compose_timeout=args.compose_timeout)
    from runbook_lib.lint.baseline import apply_baseline, read_baseline, write_baseline
    from runbook_lib.lint.suppress import apply_suppressions
    from runbook_lib.results.records import SEVERITY_RANK

    apply_suppressions(result)
    if params and not args.fail_on:
        result.fail_on = min(params.policy.blocking_severities, key=SEVERITY_RANK.__getitem__, default="high")
    elif args.fail_on:
        result.fail_on = args.fail_on
    if args.baseline:
        result.baseline = (args.baseline, apply_baseline(result, read_baseline(args.baseline)))
    if args.write_baseline:
        result.baseline_written = (args.write_baseline, write_baseline(result, args.write_baseline))
    return result


def cmd_lint(args: argparse.Namespace) -> int:
    from runbook_lib.console import raise_input

    try:
        params = None
        if args.params:  # pydantic and the parameters models only when a parameters file is given
            from runbook_lib.params import load_params

            params = load_params(args.params)
        files = args.files or (params.compose_files if params else [])
        if not files:
            raise_input("runbook lint: give compose files (runbook lint FILE...) or --params with compose_files")
        if args.per_directory and args.format not in ("table", "github"):
            raise InputError(f"runbook lint: --per-directory prints one report per project: use --format table or "
                             f"github (not {args.format})")
        if args.write_baseline and args.per_directory:
            raise InputError("runbook lint: --write-baseline needs one project: drop --per-directory")
        groups = projects_per_directory([Path(f) for f in files]) if args.per_directory else [list(files)]
        results = [_lint_one(g, args, params) for g in groups]
        from runbook_lib.lint.output import FORMATTERS

        texts = [FORMATTERS[args.format](result) for result in results]
    except RunbookError as exc:
        from runbook_lib.lint.output import format_error

        # json/sarif/gitlab consumers read stdout: they get an error object too (stderr still says it first)
        obj = format_error(args.format, str(exc), exc.exit_code)
        if obj:
            print(obj)
        raise
    except Exception as exc:  # a bug in lint, not a finding: its own exit status, and said so
        from runbook_lib.console import print_error as _err
        from runbook_lib.lint.output import INTERNAL_ERROR, internal_error

        message, obj = internal_error(args.format, exc)
        if obj:
            print(obj)
        _err(message)
        return INTERNAL_ERROR
    try:
        for result, text in zip(results, texts):
            if len(results) > 1 and args.format == "table":
                print(f"== {', '.join(str(f) for f in result.files)}")
            print(text, flush=True)
    except BrokenPipeError:  # `runbook lint ... | head`: the reader left; the verdict (exit status) stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush at exit must not fail again
    return max(r.exit_code for r in results)
