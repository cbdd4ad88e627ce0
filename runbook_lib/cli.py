"""`runbook`: a thin command line over the same functions the notebooks call.

Exit codes (contract): 0 GO, 1 NO-GO (or a failed verification), 2 usage or input error,
3 environment error (no engine, no Compose v2, another run holding the deploy lock).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runbook_lib.console import print_error, print_progress, raise_input
from runbook_lib.errors import RunbookError
from runbook_lib.demo_command import add_demo_parser
from runbook_lib.run.lock_cli import add_lock_parser
from runbook_lib.run.watch_cli import add_watch_parser
from runbook_lib.run.lab import add_lab_parser

EPILOG = """exit codes: 0 GO · 1 NO-GO · 2 usage or input error · 3 environment error (no engine, no Compose v2,
            the deploy lock held by another run: runbook lock status)
            · 130 interrupted (SIGINT/SIGTERM; what a drill broke is restored and the run directory written)

examples:
  runbook demo up                                  build the offline demo images and start the demo stack
  runbook run --params parameters/demo.yaml        verify it; prints the verdict and the report's path
  runbook run --params parameters/demo.yaml --compose demo/compose.yaml --compose demo/overrides/broken-health.yaml
  runbook verify outputs/20261129T101500Z-secureconnect-demo --key signing.pem.pub
  runbook diff outputs/<last GO> outputs/<this run> --format md   what changed since the last GO
  runbook keygen --out ~/.config/runbook/signing.pem
  runbook lint docker-compose.yml --format sarif > lint.sarif   static audit, no engine needed
  runbook watch --params parameters/demo.yaml --every 5m   read-only runs on a schedule, metrics on 127.0.0.1:9469
"""


class _VersionAction(argparse._VersionAction):
    """``--version``: the package version is looked up (importlib.metadata) only when asked for, not at
    every start of the CLI."""

    def __call__(self, parser, namespace, values, option_string=None):
        from runbook_lib import __version__

        self.version = f"runbook {__version__}"
        super().__call__(parser, namespace, values, option_string)


def cmd_run(args: argparse.Namespace) -> int:
    from runbook_lib.run.runner import run

    result = run(args.params, compose_files=args.compose or None, output=args.output, phases=args.phase or None,
                 kernel=args.kernel, show_code=args.show_code, progress=print_progress,
                 baseline=Path(args.baseline) if args.baseline else None,
                 run_dir=Path(args.run_dir) if args.run_dir else None, skip_destructive=args.skip_destructive,
                 read_only=args.read_only, wait_s=args.wait, strategy=args.strategy)
    s = result.summary
    if args.format == "json":
        print(json.dumps({**s, "run_dir": str(result.run_dir), "report": str(result.run_dir / "report.html")}, indent=2))
    else:
        _print_verdict(result.verdict)
        if result.interrupted:
            print(f"interrupted by {result.interrupted}: the phases after it were not run")
        print(f"report: {result.run_dir / 'report.html'}")
    return result.exit_code


def _print_verdict(v: dict) -> None:
    """The verdict file in a few lines: verdict and counts, blockers, waived records."""
    from runbook_lib.results.verdict import describe_group, grouped

    counts = ", ".join(f"{n} {k}" for k, n in v["counts"].items() if n)
    print(f"{v['verdict']}: {v['project']} ({counts})")
    for d in v.get("degraded") or []:  # production broken now: before anything else
        print(f"  {d['line']}")
    if v.get("fleet"):  # a fleet: each target's verdict, and its blockers with the target qualified
        for t in v["fleet"]["targets"]:
            print(f"  target {t['name']} ({t['docker_host']}): {t['verdict']}")
        for cid, rows, total in grouped(v["target_blockers"], {}):
            print(f"  blocker: {describe_group(cid, rows, len(rows))}")
    for cid, rows, total in grouped(v["blockers"], v):
        print(f"  blocker: {describe_group(cid, rows, total)}")
    for w in v["waived"]:
        print(f"  waived:  {w['ref']} ({w['status']} — {w['note']})")


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render report.html from a run directory that verifies; exit with the verdict's code."""
    from runbook_lib.results import report
    from runbook_lib.results import signing
    from runbook_lib.results import verdict as verdicts
    from runbook_lib.params import load_params
    from runbook_lib.results.manifest import MANIFEST, verify_run, write_manifest
    from runbook_lib.run.rundir import exit_code

    run_dir = Path(args.run_dir)
    if not (run_dir / "summary.json").is_file() or not (run_dir / verdicts.VERDICT_FILE).is_file():
        raise_input(f"{run_dir} is not a run directory of this toolkit (no summary.json or verdict.json)")
    problems = verify_run(run_dir, None)
    if problems and not args.unverified:
        for line in problems:
            print(line)
        print(f"FAILED: {run_dir} does not verify; nothing was written. `runbook verify {run_dir}` says the same; "
              "`--unverified` renders a report marked as such into a new file outside the run directory.")
        return 1
    if problems:
        return _report_unverified(run_dir, problems, args)
    v = verdicts.read(run_dir)
    show_code = args.show_code or _run_info(run_dir).get("show_code", False)
    if _run_info(run_dir).get("fleet"):
        return _report_fleet(run_dir, v, args)
    target = Path(args.out) if args.out else run_dir / "report.html"
    if target.resolve().parent != run_dir.resolve():
        report.write_html(run_dir, v, show_code=show_code, out=target, signer=signing.signed_by(run_dir / MANIFEST))
        print(f"{v['verdict']}: report rendered at {target} (the run directory is unchanged)")
        return exit_code(v)
    old = target.read_bytes() if target.exists() else b""
    scratch = run_dir.parent / f".{run_dir.name}.report.tmp"
    report.write_html(run_dir, v, show_code=show_code, out=scratch, signer=signing.signed_by(run_dir / MANIFEST))
    if scratch.read_bytes() == old:
        scratch.unlink()
        print(f"{v['verdict']}: report.html re-rendered, identical to the archived one ({run_dir} still verifies)")
        return exit_code(v)
    signed = (run_dir / (MANIFEST + signing.SIGNATURE_SUFFIX)).exists()
    key = signing.resolve_key(load_params(run_dir / "params.yaml").signoff.signing_key) if signed else None
    if signed and key is None:
        scratch.unlink()
        raise_input(f"{run_dir} is signed and the new rendering differs from the archived report.html: replacing it "
                    "would break the signature and no signing key is configured. Pass --out FILE to render elsewhere.")
    scratch.replace(target)
    manifest = write_manifest(run_dir)
    if key:
        signing.sign_file(manifest, key)
    print(f"{v['verdict']}: report.html re-rendered; manifest.json updated" + (" and re-signed" if key else ""))
    return exit_code(v)


def cmd_diff(args: argparse.Namespace) -> int:
    """What changed from OLD_RUN to NEW_RUN; both must verify. Exit 1 when the new run has blockers the
    old one did not (or a run does not verify), 0 otherwise, 2 on an input error."""
    from runbook_lib.results import compare
    from runbook_lib.results import diffview

    key = Path(args.key) if args.key else None
    d = compare.compare_runs(Path(args.old_run), Path(args.new_run), key)
    print(diffview.write(d, args.format, Path(args.out) if args.out else None))
    if args.html:
        from runbook_lib.run.comparison import render_html

        render_html(args.old_run, args.new_run, Path(args.html), key=key)
        print(f"comparison page: {args.html}", file=sys.stderr)
    return d.exit_code


def _report_unverified(run_dir: Path, problems: list[str], args: argparse.Namespace) -> int:
    """``runbook report --unverified``: a report marked UNVERIFIED, into a new file beside the run directory
    (never into it). The verdict shown is the stored one when it can be read, else one judged now from
    the records as they are, and the page says which."""
    from runbook_lib.results import report
    from runbook_lib.results import signing
    from runbook_lib.results import verdict as verdicts
    from runbook_lib.results.manifest import MANIFEST
    from runbook_lib.params import load_params
    from runbook_lib.run.rundir import exit_code

    out = Path(args.out) if args.out else run_dir.parent / f"{run_dir.name}.UNVERIFIED-report.html"
    try:
        v = verdicts.read(run_dir)
    except (OSError, ValueError):
        problems = problems + ["verdict.json unreadable: the verdict shown is judged now from the records as they are"]
        v = verdicts.judge(run_dir, load_params(run_dir / "params.yaml"))
    report.write_html(run_dir, v, show_code=args.show_code, out=out, unverified="; ".join(problems)[:500],
                      signer=signing.signed_by(run_dir / MANIFEST))
    print(f"UNVERIFIED report (the run does not match its manifest) written to {out}")
    return exit_code(v)


def _report_fleet(run_dir: Path, v: dict, args: argparse.Namespace) -> int:
    """`runbook report` on a fleet's directory (verified already): its report.html rendered again from the
    directory's files; written over the archived one only when identical or with --out elsewhere."""
    from runbook_lib.results.fleet_report import render_html
    from runbook_lib.run.rundir import exit_code

    text = render_html(run_dir, v)
    target = Path(args.out) if args.out else run_dir / "report.html"
    if target.resolve().parent != run_dir.resolve():
        target.write_text(text, encoding="utf-8")
        print(f"{v['verdict']}: fleet report rendered at {target} (the run directory is unchanged)")
    elif target.exists() and target.read_text(encoding="utf-8") == text:
        print(f"{v['verdict']}: report.html re-rendered, identical to the archived one ({run_dir} still verifies)")
    else:
        raise_input(f"{run_dir}: this toolkit renders the fleet's report.html differently from the archived one; "
                    "pass --out FILE to render it elsewhere (the archive is left as signed).")
    return exit_code(v)


def _run_info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def cmd_verify(args: argparse.Namespace) -> int:
    from runbook_lib.results.manifest import MANIFEST, verify_run

    run_dir = Path(args.run_dir)
    problems = verify_run(run_dir, Path(args.key) if args.key else None)
    for line in problems:
        print(line)
    if problems:
        print("FAILED: the run directory does not match its manifest and signature")
        return 1
    from runbook_lib.results import signing

    print("signature: " + signing.verify_file(run_dir / MANIFEST, Path(args.key) if args.key else None)[1])
    print(f"OK: {run_dir} matches its manifest, and its verdict follows from its records")
    return 0


def cmd_checks(args: argparse.Namespace) -> int:
    """The check registry: every check id with its phase, default severity, category and CIS id."""
    from runbook_lib.results.registry import specs

    rows = sorted(specs().values(), key=lambda s: (s.phase, s.id))
    if args.format == "json":
        print(json.dumps([{"id": s.id + (".<name>" if s.family else ""), "title": s.title, "phase": s.phase,
                           "severity": s.severity, "category": s.category, "changes_deployment": s.changes_deployment,
                           "cis": s.cis, "function": s.function} for s in rows], indent=1))
        return 0
    print(f"{'check id':34} {'phase':28} {'severity':9} {'CIS':5} category")
    for s in rows:
        name = s.id + (".<name>" if s.family else "")
        print(f"{name:34} {s.phase:28} {s.severity:9} {s.cis or '-':5} {s.category}"
              + ("  (changes the deployment)" if s.changes_deployment else ""))
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from runbook_lib.results.signing import fingerprint, keygen, load_private

    private, public = keygen(Path(args.out), overwrite=args.force)
    print(f"private key: {private} (mode 0600; set signoff.signing_key or RUNBOOK_SIGNING_KEY to it)")
    print(f"public key:  {public} (give it to whoever verifies: runbook verify RUN_DIR --key {public})")
    print(f"fingerprint: {fingerprint(load_private(private).public_key())}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    """Undo what crashed drills left behind (unrecovered journals); exit 0 when everything is restored."""
    from runbook_lib.drills.recovery import recover

    if args.run_dir:
        roots = [Path(args.run_dir)]
        if not roots[0].is_dir():
            raise_input(f"{roots[0]} is not a directory (give a run directory, or nothing to search {', '.join(args.output or ['outputs'])})")
    else:  # every run directory under --output, and the journals' copies in this engine's state directory
        from runbook_lib.run.lock import this_engine_state

        roots = [Path(o) for o in (args.output or ["outputs"])] + this_engine_state()
    results = recover(roots, healthy_timeout=args.timeout, progress=print_progress)
    if not results:
        print(f"nothing to recover: no unrecovered drill journal under {', '.join(map(str, roots))}")
        return 0
    for r in results:
        what = "; ".join(r["actions"]) or "nothing left to undo"
        print(f"{'recovered' if not r['error'] else 'FAILED'}: {r['dependency']} ({r['mode']}) of {r['project']}: "
              f"{r['error'] or what} [{r['journal']}]")
    return 0 if all(not r["error"] for r in results) else 1


def cmd_init(args: argparse.Namespace) -> int:
    """Write a commented starter parameters file from the project's compose model."""
    from runbook_lib.run.starter import build
    from runbook_lib.run.starter_render import write

    st = build(args.files, env_files=args.env_file or (), project=args.project, probe=not args.no_probe)
    out = write(st, Path(args.out) if args.out else Path("parameters") / f"{st.project}.yaml", force=args.force,
                create_parent=not args.out)
    todos = sum(1 for line in out.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("# TODO:"))
    print(f"wrote {out}: {len(st.apps)} app service(s), {len(st.dependencies)} dependenc(ies), "
          f"{sum(1 for h in st.health if h.url)} health endpoint(s), {len(st.metrics)} /metrics endpoint(s), "
          f"{len(st.secrets)} file secret(s); {todos} TODO(s) for a person to decide")
    print(f"next: runbook run --params {out}")
    return 0


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run the phase notebooks headless and write a run directory",
                       description="Validate the parameters, compose files and engine, run the phase notebooks with "
                       "papermill, and write outputs/<UTC time>-<project>/ with report.html and summary.json.")
    r.add_argument("--params", required=True, metavar="FILE", help="parameters YAML (e.g. parameters/demo.yaml)")
    r.add_argument("--compose", action="append", metavar="FILE", type=Path,
                   help="compose file(s) to use instead of the parameters' compose_files (repeatable, in order)")
    r.add_argument("--output", default="outputs", metavar="DIR", help="where run directories go (default: outputs)")
    r.add_argument("--phase", action="append", metavar="NAME", help="run only these phases (repeatable)")
    r.add_argument("--read-only", action="store_true",
                   help="change nothing: phase 1 is not run; phase 4 asks health, metrics and the flow's safe steps, "
                        "and records its drills SKIP (the first look at a production system)")
    r.add_argument("--strategy", choices=["recreate", "rolling"], help="phase 1's redeploy.strategy for this run "
                   "(default: the parameters'): recreate takes everything down and up; rolling replaces one service at "
                   "a time beside the old one")
    r.add_argument("--kernel", default="python3", help="Jupyter kernel to execute the notebooks with (default: python3, always the Python running runbook)")
    r.add_argument("--show-code", action="store_true", help="include the notebooks' code cells in report.html")
    r.add_argument("--wait", type=float, default=0, metavar="S", help="wait up to S seconds for another run's deploy lock "
                   "(default: refuse at once, exit 3)")
    r.add_argument("--format", choices=["text", "json"], default="text", help="stdout format (default: text)")
    r.add_argument("--baseline", metavar="RUN_DIR", help="the last GO run: the report's first screen says what changed "
                   "since it (new blockers, fixed, images changed); it must verify")
    # a fleet's target runs (runbook_lib.run.fleet): into this directory; destructive phases SKIP for this reason
    r.add_argument("--run-dir", metavar="DIR", help=argparse.SUPPRESS)
    r.add_argument("--skip-destructive", default="", metavar="REASON", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_run)


def _add_diff_parser(sub: argparse._SubParsersAction) -> None:
    df = sub.add_parser("diff", help="what changed between two run directories (exit 1: the new run has new blockers)",
                        description="Verifies both run directories first (manifest, signature, verdict) and refuses one "
                        "that does not verify, naming the files. Then shows the verdict of each, new and resolved "
                        "blockers, status changes per check@target, changed images, compose files and config hashes, "
                        "new or expired waivers, drill recovery times with the ratio, and new, removed and changed "
                        "services. Exit 0 no new blocker, 1 new blockers (or a run does not verify), 2 input error.")
    df.add_argument("old_run", metavar="OLD_RUN")
    df.add_argument("new_run", metavar="NEW_RUN")
    df.add_argument("--format", choices=["text", "json", "md"], default="text",
                    help="stdout format: text, json, or md (a pull request or CI job summary)")
    df.add_argument("--key", metavar="PUBLIC.pem", help="the signer's public key both runs must be signed with")
    df.add_argument("--out", metavar="FILE", help="also write the output to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    df.add_argument("--html", metavar="FILE", help="also render the compare notebook (compare.ipynb) to an offline HTML page")
    df.set_defaults(func=cmd_diff)


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    rp = sub.add_parser("report", help="re-render the report of a run directory that verifies (exit: its verdict)",
                        description="Verifies the run directory first (manifest, signature, verdict); on any mismatch "
                        "it exits 1 naming the files and writes nothing. A verified run re-renders to the same report; "
                        "a different rendering (--show-code, a newer toolkit) updates manifest.json and re-signs it "
                        "(the signing key is needed for a signed run). Exit 0 GO, 1 NO-GO or not verified.")
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument("--show-code", action="store_true", help="include the notebooks' code cells")
    rp.add_argument("--out", metavar="FILE", help="write the report here instead of RUN_DIR/report.html "
                    "(outside the run directory: the run is not touched)")
    rp.add_argument("--unverified", action="store_true", help="render a run that does not verify anyway, marked "
                    "UNVERIFIED, into a new file beside the run directory (never touches manifest.json or its signature)")
    rp.set_defaults(func=cmd_report)


def _add_verify_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("verify", help="check a run directory against its manifest and signature (exit 1 on any difference)",
                       description="Lists every changed, added or removed file, and checks manifest.json.sig. "
                       "With --key, the signature must be made by that public key.")
    v.add_argument("run_dir", metavar="RUN_DIR")
    v.add_argument("--key", metavar="PUBLIC.pem", help="the signer's public key you trust (from `runbook keygen`)")
    v.set_defaults(func=cmd_verify)


def _add_checks_parser(sub: argparse._SubParsersAction) -> None:
    ck = sub.add_parser("checks", help="list every check id: phase, default severity, category, CIS id",
                        description="The check registry: the ids that waivers, policy.severity_overrides and "
                        "policy.required_checks may name. Lint-only rules have phase `lint`.")
    ck.add_argument("--format", choices=["table", "json"], default="table")
    ck.set_defaults(func=cmd_checks)


def _add_keygen_parser(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keygen", help="make an Ed25519 key pair for signing run manifests")
    k.add_argument("--out", required=True, metavar="PATH", help="private key path; the public key goes to PATH.pub")
    k.add_argument("--force", action="store_true", help="overwrite an existing key")
    k.set_defaults(func=cmd_keygen)


def _add_recover_parser(sub: argparse._SubParsersAction) -> None:
    rc = sub.add_parser("recover", help="restore what a crashed drill left broken (stopped, paused, disconnected, scaled to 0)",
                        description="Reads the drill journals (RUN_DIR/drills/*.journal.json) that were not marked "
                        "restored, undoes each fault (start, unpause, reconnect with the network aliases; a swarm service "
                        "scaled back to its replicas, on the swarm DOCKER_HOST names), waits until "
                        "the dependency is ready (a swarm service: converged) and marks the journal recovered. Without RUN_DIR, searches every run "
                        "directory under --output and the copies every drill keeps in the engine's state directory (see `runbook lock`). Exit 0 when everything is restored (or nothing needed it), 1 otherwise.")
    rc.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="one run directory (default: all under --output)")
    rc.add_argument("--output", action="append", metavar="DIR", help="where run directories are (default: outputs; repeatable)")
    rc.add_argument("--timeout", type=float, default=120, metavar="S", help="how long to wait for each dependency to be ready (default: 120)")
    rc.set_defaults(func=cmd_recover)


def _add_lint_parser(sub: argparse._SubParsersAction) -> None:
    from runbook_lib.lint.command import add_parser  # the parser and cmd_lint live beside the rules

    add_parser(sub)


def _add_init_parser(sub: argparse._SubParsersAction) -> None:
    ini = sub.add_parser("init", help="write a commented starter parameters file from your compose files",
                         description="Resolve the compose files with `docker compose config` (every profile) and write "
                         "a starter parameters file: app services and dependencies, file secrets (named, never their "
                         "values), health endpoints from healthchecks and published ports, /metrics endpoints that "
                         "answer Prometheus text when the stack runs, a drill per dependency, and a `# TODO:` line for "
                         "each decision left to a person. Refuses to overwrite a file unless --force. Then: runbook run.")
    ini.add_argument("files", nargs="+", metavar="COMPOSE_FILE", type=Path, help="compose files, merged in order")
    ini.add_argument("--env-file", action="append", metavar="FILE", type=Path, help="env file for interpolation (repeatable)")
    ini.add_argument("--out", metavar="FILE", help="where to write (default: parameters/<project>.yaml)")
    ini.add_argument("--project", metavar="NAME", help="compose project name (default: the compose model's name)")
    ini.add_argument("--force", action="store_true", help="overwrite an existing file")
    ini.add_argument("--no-probe", action="store_true", help="do not ask the running stack's ports (health paths, /metrics)")
    ini.set_defaults(func=cmd_init)


def cmd_rollback(args: argparse.Namespace) -> int:
    from runbook_lib.run.rollback_run import rollback

    result = rollback(Path(args.to), output=Path(args.output) if args.output else None,
                      key=Path(args.key) if args.key else None, wait_s=args.wait, progress=print_progress)
    _print_verdict(result.verdict)
    print(f"report: {result.run_dir / 'report.html'}")
    return result.exit_code


def _add_rollback_parser(sub: argparse._SubParsersAction) -> None:
    rb = sub.add_parser("rollback", help="redeploy exactly what a GO run deployed, verify it, and record it (exit: its verdict)",
                        description="Refuses (exit 2, nothing changed), naming what differs, a run directory that does not "
                        "verify or is not GO, an image of it gone from the engine, a secret file whose SHA-256 changed. "
                        "Otherwise tags the run's images runbook-rollback/<service>:<run>, brings its compose model up, "
                        "and judges it (health gate, endpoints, image ids) into a new signed run directory.")
    rb.add_argument("--to", required=True, metavar="RUN_DIR", help="the GO run directory to roll back to")
    rb.add_argument("--output", metavar="DIR", help="where the rollback's run directory goes (default: beside RUN_DIR)")
    rb.add_argument("--key", metavar="PUBLIC.pem", help="the public key RUN_DIR's signature must be made by")
    rb.add_argument("--wait", type=float, default=0, metavar="S", help="wait up to S seconds for the deploy lock")
    rb.set_defaults(func=cmd_rollback)


# The subcommands, in the order `runbook --help` lists them: one function each adds its parser.
SUBCOMMANDS = (_add_run_parser, _add_diff_parser, _add_report_parser, _add_verify_parser, _add_checks_parser,
               _add_keygen_parser, add_demo_parser, _add_recover_parser, _add_lint_parser, _add_init_parser,
               add_lock_parser, _add_rollback_parser, add_watch_parser, add_lab_parser)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runbook", description="Verify a Docker Compose deployment with evidence-backed, "
                                "parameterized runbook notebooks, and decide GO / NO-GO.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_VersionAction)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except RunbookError as exc:
        print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
