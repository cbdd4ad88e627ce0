"""The compose files as their author wrote them, read before Compose sees them.

Compose's resolved model answers most rules, but not the ones about what was written: a secret listed
twice (``config`` drops the repeat), the file and line of a finding (SARIF), the secrets a file declares
(``config`` drops the unused ones), the services a ``--profile`` left out. This module reads each file
with a safe YAML loader that only *composes* the node graph (aliases stay shared, nothing is expanded)
and refuses hostile input before Compose is asked anything:

- a file that is a directory, missing, larger than :data:`MAX_FILE_BYTES`, or not UTF-8;
- an alias ("billion laughs") bomb: the size of the document with every alias expanded is computed over
  the shared graph in linear time, and more than :data:`MAX_EXPANDED_NODES` nodes or
  :data:`MAX_EXPANDED_CHARS` characters of values is refused (what Compose would hold in memory);
- nesting deeper than the parser's recursion allows.

Each refusal is an :class:`~runbook_lib.errors.InputError` whose message starts with the cause.
"""
from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from runbook_lib.errors import ComposeConfigError, InputError
from runbook_lib.lint.ranges import PortRange, find_ranges

# The YAML loader every reader of the files as written uses: the C parser, when PyYAML was built with libyaml
# (far faster on large files).
try:
    YamlLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    YamlLoader = yaml.SafeLoader

MAX_FILE_BYTES = 16 << 20
# A 1,000-service file is ~40k nodes; real projects are far below. The 415-byte bomb is ~10^9. Compose holds
# the expanded document, and prints it: its memory grows with the expanded size (benchmarks/README.md has the
# figures). 500,000 nodes is 12 times the 1,000-service file; 16 MiB of values is what the largest file read
# can hold with no alias.
MAX_EXPANDED_NODES = 500_000
MAX_EXPANDED_CHARS = MAX_FILE_BYTES


@dataclass
class SecretEntry:
    """One item of a service's ``secrets:`` list as written."""

    source: str
    target: str
    line: int


@dataclass
class SourceFile:
    path: Path
    # (section, name) -> line, for the top-level sections "services", "secrets" and "volumes"
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    # (service, key) -> line of that key of the service (merged from an anchor: the anchor's line)
    key_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    # service -> its secrets list, as written
    service_secrets: dict[str, list[SecretEntry]] = field(default_factory=dict)
    declared_secrets: list[str] = field(default_factory=list)
    nodes: int = 0
    # (service, path as written, line, key) of every `env_file:` and `label_file:` entry
    env_files: list[tuple[str, str, int, str]] = field(default_factory=list)
    # the large literal port ranges, grouped before Compose expands them (runbook_lib.lint.ranges)
    port_ranges: list[PortRange] = field(default_factory=list)


def check_path(path: Path, what: str = "compose file") -> None:
    """InputError naming the cause when ``path`` cannot be read as a file."""
    if path.is_dir():
        raise InputError(f"{what} is a directory: {path}")
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if not path.is_file():
        raise InputError(f"{what} is not a regular file: {path}")


# An env file (`env_file:`, `label_file:`, `--env-file`, the project's `.env`) is read by Compose whole: like a secret
# file, it must be a regular file of a bounded size. A real one is a few KB.
MAX_ENV_BYTES = 1 << 20


def check_env_file(path: Path, what: str) -> None:
    """InputError when an env file Compose would read is not a regular file (a device such as /dev/zero, a
    FIFO that would hang the read, a directory) or is larger than :data:`MAX_ENV_BYTES`. A missing file is
    left to Compose (a required one is its error, an optional one is skipped)."""
    try:
        st = path.stat()
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise InputError(f"{what}: {path} is {kind}, not a regular file: refused before Compose reads it")
    if st.st_size > MAX_ENV_BYTES:
        raise InputError(f"{what}: {path} is larger than {MAX_ENV_BYTES >> 20} MiB ({st.st_size} bytes): refused "
                         "before Compose reads it")


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes, characters of scalars) in the document with every alias expanded, over the shared graph
    (memoised, iterative)."""
    size: dict[int, tuple[int, int]] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = _children(node)
        if done or not children:
            nodes, chars = 1, len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            for c in children:
                n, k = (1, len(c.value)) if isinstance(c, yaml.ScalarNode) else size[id(c)]
                nodes, chars = nodes + n, chars + k
            size[id(node)] = (nodes, chars)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if not isinstance(c, yaml.ScalarNode) and id(c) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _refused(path: Path, why: str) -> ComposeConfigError:
    return ComposeConfigError(f"{path.name}: {why} (compose files do not resolve: {path})", files=[str(path)])


def compose_file(path: Path) -> tuple[yaml.Node | None, int]:
    """The YAML node graph of one compose file and its expanded size; InputError for hostile input."""
    check_path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _refused(path, f"larger than {MAX_FILE_BYTES >> 20} MiB ({size} bytes)")
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=YamlLoader)
    except UnicodeDecodeError as exc:
        raise _refused(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise _refused(path, "nested too deeply to be read") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _refused(path, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    if root is None:
        return None, 0
    nodes, chars = expanded_size(root)
    if nodes > MAX_EXPANDED_NODES:
        raise _refused(path, f"expands to {nodes:,} YAML nodes, more than {MAX_EXPANDED_NODES:,} (an alias bomb?): "
                             "refused before Compose reads it")
    if chars > MAX_EXPANDED_CHARS:
        raise _refused(path, f"expands to {chars:,} characters of values, more than {MAX_EXPANDED_CHARS:,} (an alias "
                             "bomb?): refused before Compose reads it")
    return root, nodes


def _items(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """(key, key node, value node) of a mapping, merge keys (``<<``) included, earlier keys first."""
    if not isinstance(node, yaml.MappingNode):
        return
    for k, v in node.value:
        if k.value == "<<" and k.tag.endswith(":merge"):
            for m in (v.value if isinstance(v, yaml.SequenceNode) else [v]):
                yield from _items(m)
        elif isinstance(k, yaml.ScalarNode):
            yield str(k.value), k, v


def _secret_entries(node: yaml.Node) -> list[SecretEntry]:
    out = []
    for item in node.value if isinstance(node, yaml.SequenceNode) else []:
        line = item.start_mark.line + 1
        if isinstance(item, yaml.ScalarNode):
            out.append(SecretEntry(str(item.value), str(item.value), line))
        elif isinstance(item, yaml.MappingNode):
            d = {k: v.value for k, _, v in _items(item) if isinstance(v, yaml.ScalarNode)}
            if d.get("source"):
                out.append(SecretEntry(str(d["source"]), str(d.get("target") or d["source"]), line))
    return out


def read_source(path: Path) -> SourceFile:
    """What one compose file declares, with line numbers (1-based). InputError for hostile input."""
    root, nodes = compose_file(path)
    sf = SourceFile(path, nodes=nodes)
    top = {k: v for k, _, v in _items(root)}
    for section in ("services", "secrets", "volumes"):
        for name, knode, _ in _items(top.get(section)):
            sf.lines.setdefault((section, name), knode.start_mark.line + 1)
    port_nodes: list[yaml.Node] = []
    for name, _, spec in _items(top.get("services")):
        for key, knode, _ in _items(spec):  # a key written on the service itself wins over a merged one
            sf.key_lines[(name, key)] = knode.start_mark.line + 1
        ports = next((v for k, _, v in _items(spec) if k == "ports"), None)
        if isinstance(ports, yaml.SequenceNode):
            port_nodes.extend(ports.value)
        for key, _, env in _items(spec):
            if key not in ("env_file", "label_file"):
                continue
            for item in (env.value if isinstance(env, yaml.SequenceNode) else [env]):
                if isinstance(item, yaml.MappingNode):
                    item = next((v for k, _, v in _items(item) if k == "path"), None)
                if isinstance(item, yaml.ScalarNode) and item.value:
                    sf.env_files.append((name, str(item.value), item.start_mark.line + 1, key))
        secrets = next((v for k, _, v in _items(spec) if k == "secrets"), None)
        if secrets is not None:
            sf.service_secrets[name] = _secret_entries(secrets)
    sf.declared_secrets = [name for name, _, _ in _items(top.get("secrets"))]
    sf.port_ranges = find_ranges(port_nodes)
    return sf


@dataclass
class Source:
    """Every compose file of a lint, as written."""

    files: list[SourceFile]

    @classmethod
    def read(cls, paths: Iterable[Path]) -> "Source":
        return cls([read_source(Path(p)) for p in paths])

    def locate(self, section: str, name: str) -> tuple[Path, int | None]:
        """The file and line defining ``name`` under ``section``: the last file that mentions it decides."""
        for sf in reversed(self.files):
            line = sf.lines.get((section, name))
            if line:
                return sf.path, line
        return (self.files[0].path if self.files else Path("compose.yaml")), None

    def locate_key(self, service: str, keys: Iterable[str]) -> tuple[Path, int] | None:
        """The file and line of the first of ``keys`` the service is written with (the last file that
        writes it decides), or None."""
        for key in keys:
            for sf in reversed(self.files):
                line = sf.key_lines.get((service, key))
                if line:
                    return sf.path, line
        return None

    def check_env_files(self, env_files: Iterable[Path] = ()) -> None:
        """Refuse (InputError) every env file Compose would read that is not a bounded regular file
        (:func:`check_env_file`): each service's ``env_file:`` and ``label_file:`` (relative to the project directory, the first
        file's; a path with a variable in it is left to Compose), ``--env-file``, and the project's ``.env``."""
        base = self.files[0].path.parent if self.files else Path.cwd()
        for sf in self.files:
            for service, raw, line, key in sf.env_files:
                if "$" not in raw:
                    check_env_file(base / Path(raw).expanduser(), f"service {service}: {key} ({sf.path.name}, line {line})")
        for e in env_files:
            check_env_file(Path(e), "--env-file")
        if not list(env_files):
            check_env_file(base / ".env", "the project's .env")

    def services(self) -> set[str]:
        return {name for sf in self.files for (section, name) in sf.lines if section == "services"}

    def declared(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for sf in self.files:
            for name in sf.declared_secrets:
                out.setdefault(name, sf.path)
        return out

    def duplicate_secrets(self, service: str) -> list[dict]:
        """Secrets a service lists twice at the same target, in any one file, as written."""
        out = []
        for sf in self.files:
            seen: dict[str, SecretEntry] = {}
            for e in sf.service_secrets.get(service, []):
                if e.target in seen:
                    out.append({"secret": e.source, "target": e.target, "file": str(sf.path), "line": e.line,
                                "first_line": seen[e.target].line})
                else:
                    seen[e.target] = e
        return out

    def secret_entries(self, service: str) -> list[tuple[Path, SecretEntry]]:
        return [(sf.path, e) for sf in self.files for e in sf.service_secrets.get(service, [])]
