"""`runbook lint`: read the files as written (bounded), resolve them with Compose, run every static
rule, redact."""
from __future__ import annotations

import bisect
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from runbook_lib.engine.compose import Compose, PendingConfig, config_error_cause
from runbook_lib.errors import ComposeConfigError, ComposeError, InputError
from runbook_lib.lint.result import LintResult
from runbook_lib.lint.source import Source, check_path

# The rules' modules (audit and what it imports) and the records' are imported by lint_files while Compose
# resolves the model, not before it starts.
if TYPE_CHECKING:
    from runbook_lib.results.records import CheckRecord
    from runbook_lib.results.redact import Redactor
    from runbook_lib.params import Params

# `docker compose config` on a sane project takes well under a second; this bounds hostile input.
CONFIG_TIMEOUT_S = 30
# Compose is a Go program: with Go's default (GOGC=100) its garbage collector runs each time its heap
# doubles, a large share of its CPU time on a big project. GOGC=400 lets the heap grow to five times what is
# live before collecting: less CPU for more memory (benchmarks/README.md has the figures). GOGC is read from
# the environment Compose also interpolates the files from (${GOGC}, or `environment: [GOGC]`), so lint sets
# it only where no file Compose reads can name it: not when the user's environment has it, not when a compose
# file, an env file or a .env mentions it, and not when a compose file can make Compose read more files
# (include, extends, env_file, label_file) or COMPOSE_ENV_FILES does. The model is then the same; only
# Compose's memory and time differ.
COMPOSE_GOGC = "400"
_NAMES_GOGC = re.compile(rb"(?i)gogc")
_READS_MORE = re.compile(rb"(?i)gogc|include|extends|env_file|label_file")
# Record fields that are names, never rewritten by the redactor.
NAME_FIELDS = ("id", "phase", "title", "target", "severity", "status")


def string_values(obj: Any, out: list[str]) -> None:
    """Append every string value in ``obj`` (dict values, list and tuple items; not dict keys, which the
    redactor never rewrites) to ``out``; other leaves as ``str()``, as JSON's ``default=str`` shows them."""
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            string_values(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            string_values(v, out)
    elif isinstance(obj, bytes):
        out.append(obj.decode("utf-8", "replace"))
    elif obj is not None and not isinstance(obj, (bool, int, float)):
        out.append(str(obj))


def scrub_records(records: list[CheckRecord], redactor: Redactor) -> list[CheckRecord]:
    """The records with every secret value (and credential-shaped string) redacted from their free-text
    fields; names (id, target, title) and dict keys are never rewritten. A record whose text holds
    nothing to redact is kept as is.

    Which records hold something: every distinct string of the records' free-text fields (a few thousand
    for a thousand services: titles, commands, remediations and most values repeat) is searched once, all
    of them joined, with :meth:`Redactor.spans` (what the redactor would replace). A match inside a string
    is a match of the joined text, so a string that no match overlaps is left as it is by the redactor;
    a record holding an overlapped string is scrubbed whole (a match across two joined strings only costs a
    scrub that changes nothing)."""
    strings: list[list[str]] = []
    for r in records:
        parts: list[str] = []
        for text in (r.expected, r.actual, r.command, r.remediation):
            string_values(text, parts)
        string_values(r.evidence, parts)
        strings.append(parts)
    distinct = list(dict.fromkeys(s for parts in strings for s in parts))
    sep = "\x00"
    spans = redactor.spans(sep.join(distinct))
    if not spans:
        return list(records)
    starts, pos = [], 0
    for text in distinct:
        starts.append(pos)
        pos += len(text) + len(sep)
    hit: set[str] = set()
    for a, b in spans:
        i = bisect.bisect_right(starts, a) - 1
        while i < len(distinct) and starts[i] < b:
            hit.add(distinct[i])
            i += 1
    from runbook_lib.results.records import CheckRecord

    out = []
    for r, parts in zip(records, strings):
        if not hit.isdisjoint(parts):
            d = redactor.scrub({k: v for k, v in vars(r).items()}, names=False, keep=NAME_FIELDS)
            r = CheckRecord.from_dict(d)
        out.append(r)
    return out


def resolve(compose: Compose, timeout: float | None = None,
            pending: PendingConfig | None = None) -> tuple[dict[str, Any], str]:
    """The resolved model, and Compose's consistency complaint if it has one. Compose refuses a model
    that parses but is inconsistent (a service using an undeclared secret...); lint then asks Compose
    for the same model without its consistency check, so the rules can name the problem. Files that do
    not parse or interpolate still raise ComposeConfigError (exit 2). ``timeout`` (default
    CONFIG_TIMEOUT_S): Compose is killed, with its whole process group, after that long. ``pending``:
    the first ``config`` already started (:meth:`Compose.start_config`)."""
    timeout = timeout or CONFIG_TIMEOUT_S
    try:
        return (pending or compose.start_config(timeout=timeout)).result(), ""
    except ComposeConfigError as exc:
        first = exc
    if isinstance(first.__cause__, subprocess.TimeoutExpired):
        raise timed_out(compose, pending.timeout if pending else timeout) from first
    try:
        proc = compose.run("config", "--format", "json", "--no-consistency", timeout=timeout, isolate=True)
        model = json.loads(proc.stdout) if proc.stdout.strip() else None
    except (ComposeError, json.JSONDecodeError):
        model = None
    if not model:
        raise first
    return model, (config_error_cause(first.stderr) or str(first))


@dataclass
class GroupedRanges:
    """The compose files with their large port ranges grouped (:mod:`runbook_lib.lint.ranges`): copies in a
    private directory, resolved with the project's own directory, and put back into the model after."""

    compose: Compose
    tmp: Path
    ranges: list[Any]
    copies: dict[str, str]  # copy path -> the file it stands for

    @classmethod
    def prepare(cls, compose: Compose, source: Source) -> "GroupedRanges | None":
        from runbook_lib.lint.ranges import rewritten

        texts = {}
        for sf in source.files:
            if sf.port_ranges:
                try:
                    text = rewritten(sf.path.read_text(encoding="utf-8"), sf.port_ranges)
                except OSError:
                    return None
                if text is None:
                    return None
                texts[sf.path] = text
        if not texts:
            return None
        tmp = Path(tempfile.mkdtemp(prefix="runbook-lint-"))
        files, copies = [], {}
        for i, f in enumerate(compose.files):
            if f in texts:
                copy = tmp / f"{i}-{f.name}"
                copy.write_text(texts[f], encoding="utf-8")
                copies[str(copy)] = str(f)
                f = copy
            files.append(f)
        grouped = Compose(files, project=compose.project, env_files=compose.env_files, env=compose.env,
                          profiles=compose.profiles, project_directory=compose.files[0].parent)
        return cls(grouped, tmp, [r for sf in source.files for r in sf.port_ranges], copies)

    def resolve(self, compose: Compose, timeout: float | None, pending: PendingConfig) -> tuple[dict[str, Any], str]:
        """The model, ranges restored. Anything but a model (an error, a timeout) is asked again of the files
        as written, so that what is said names them."""
        from runbook_lib.lint.ranges import restore

        try:
            model, problem = resolve(self.compose, timeout, pending=pending)
        except ComposeConfigError:
            model = None
        finally:
            self.cleanup()
        if model is None:
            return resolve(compose, timeout)
        restore(model, self.ranges)
        for copy, original in self.copies.items():
            problem = problem.replace(copy, original)
        return model, problem

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def timed_out(compose: Compose, timeout: float) -> ComposeConfigError:
    """The error of a ``docker compose config`` stopped at its timeout: what happened, and the option."""
    files = [str(f) for f in compose.files]
    return ComposeConfigError(
        f"docker compose config timed out after {timeout:g} s and was stopped: the files were not judged "
        f"({', '.join(files)}). A large project on a loaded machine may need longer: --compose-timeout SECONDS",
        files=files)


def compose_env(paths: Sequence[Path], env_files: Sequence[Path]) -> dict[str, str]:
    """The environment lint adds to Compose's: ``GOGC`` (:data:`COMPOSE_GOGC`) when no file Compose reads
    can refer to it, else nothing."""
    if "GOGC" in os.environ or "COMPOSE_ENV_FILES" in os.environ:
        return {}
    checks = [(f, _READS_MORE) for f in paths] + [(Path(f), _NAMES_GOGC) for f in env_files]
    checks += [(d / ".env", _NAMES_GOGC) for d in dict.fromkeys([paths[0].parent, Path.cwd()])]
    for f, pattern in checks:
        try:
            data = f.read_bytes()
        except OSError:
            if f.name == ".env" and not f.exists():
                continue
            return {}
        if pattern.search(data):
            return {}
    return {"GOGC": COMPOSE_GOGC}


def lint_files(files: Sequence[str | Path], *, env_files: Sequence[str | Path] = (),
               params: Params | None = None, profiles: Sequence[str] = (), swarm: bool = False,
               compose_timeout: float | None = None) -> LintResult:
    """Read the compose files (refusing hostile input before Compose sees it), resolve them with Compose
    with every profile enabled (or only ``profiles``), and run every static rule. Secret values read from
    the host's secret files are redacted from every record, names and ids excepted. Raises InputError for
    files that do not resolve. ``swarm`` (or a parameters file in ``mode: swarm``): judge the files as
    `docker stack deploy` applies them (:mod:`runbook_lib.lint.swarm`). ``compose_timeout``: how long
    ``docker compose config`` may take (default :data:`CONFIG_TIMEOUT_S`)."""
    paths = [Path(f).resolve() for f in files]
    if not paths:
        raise InputError("runbook lint: give at least one compose file (or --params with compose_files)")
    for e in env_files:
        check_path(Path(e), "env file")
    source = Source.read(paths)
    source.check_env_files([Path(e) for e in env_files])
    selected = list(profiles) or ["*"]
    compose = Compose(paths, env_files=[Path(e) for e in env_files],
                      project=params.project if params else None, profiles=selected,
                      env=compose_env(paths, [Path(e) for e in env_files]))
    if compose_timeout is not None and not compose_timeout > 0:
        raise InputError(f"runbook lint: --compose-timeout must be a number of seconds above 0, not {compose_timeout:g}")
    grouped = GroupedRanges.prepare(compose, source)
    pending = (grouped.compose if grouped else compose).start_config(timeout=compose_timeout or CONFIG_TIMEOUT_S)
    try:  # while Compose resolves the model (a process of its own), the rules' modules load
        from runbook_lib.lint.audit import lint_model
        from runbook_lib.lint.project_secrets import host_secrets, project_names
        from runbook_lib.lint.rules import LINT_PHASE
        from runbook_lib.results.records import Check
        from runbook_lib.results.redact import Redactor
        import runbook_lib.lint.output  # noqa: F401  (what the CLI prints with)
    except BaseException:
        pending.kill()
        if grouped:
            grouped.cleanup()
        raise
    if grouped:
        model, problem = grouped.resolve(compose, compose_timeout, pending)
    else:
        model, problem = resolve(compose, compose_timeout, pending=pending)
    names = project_names(model)
    values, _ = host_secrets(model, names)
    records = lint_model(model, security=params.security if params else None, secret_values=values,
                         declared=source.declared(), command="runbook lint " + " ".join(map(str, paths)),
                         severity_for=params.severity_for if params else None,
                         production=params.production if params else None, source=source,
                         swarm=swarm or bool(params and params.mode == "swarm"), project_dir=paths[0].parent,
                         env_files=[Path(e) for e in env_files])
    if problem:
        c = Check("compose.consistency", "Compose accepts the project", phase=LINT_PHASE, severity="high",
                  command=compose.display("config"), remediation="Fix what Compose reports.")
        records.insert(0, c.record("compose", "FAIL", expected="a consistent compose project",
                                   actual=problem.splitlines()[0], evidence={"stderr": problem}))
    records = scrub_records(records, Redactor(values))
    services = sorted(model.get("services") or {})
    return LintResult(paths, records, problem, source, services, selected,
                      sorted(source.services() - set(services)))
