"""Large port ranges, grouped before Compose expands them.

Compose expands a short-syntax range (``"49152-65535:49152-65535/udp"``, a TURN relay's) into one model
entry per port: 16,384 entries, 2.2 MB of JSON, most of the time of a lint. Every port of such a range is
bound the same way, so lint asks Compose about one port instead, and puts the range back in the model:

1. :func:`find_ranges` picks, in the files as written, each literal short-syntax range of at least
   :data:`MIN_GROUPED` ports mapped port for port (no variable in it, host and container ranges of one
   length), and the stand-in Compose resolves instead: ``"HOST_FIRST:CONTAINER_LAST/proto"``, a mapping no one
   writes, so that the model entry it becomes is the range's and no other's.
2. :func:`rewritten` is a file's text with each range replaced by its stand-in, byte for byte where it was
   written (anchors and merge keys work as before: the range is wherever the alias puts it).
3. :func:`restore` turns each stand-in entry of the resolved model back into the range, one entry with
   ``target_end`` (:mod:`runbook_lib.model.ports` reads it), never expanded.

Lint resolves the rewritten copies with ``--project-directory`` set to the project's, so that every relative
path, the ``.env`` and the project name are the same (a file using ``extends`` or ``include``, whose paths
are relative to the file itself, is left as it is).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

# Ranges shorter than this are cheap to expand: Compose sees them as written.
MIN_GROUPED = 256
_RANGE_RE = re.compile(r"^(?:(?P<ip>[0-9A-Za-z.:\[\]%_-]+):)?(?P<hlo>\d{1,5})-(?P<hhi>\d{1,5}):"
                       r"(?P<clo>\d{1,5})-(?P<chi>\d{1,5})(?:/(?P<proto>[a-z]+))?$")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_EXTENDS_OR_INCLUDE = re.compile(r"(?m)^\s*(extends|include)\s*:")


@dataclass(frozen=True)
class PortRange:
    """One literal range of a file: where its scalar is, and the stand-in Compose resolves instead."""

    start: tuple[int, int]  # (line, column) where the scalar (quotes included) starts and ends, 0-based
    end: tuple[int, int]
    host_ip: str
    host_first: int
    host_last: int
    container_first: int
    container_last: int
    protocol: str
    written: str  # the scalar's value

    @property
    def stand_in(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip else ""
        return f'"{ip}{self.host_first}:{self.container_last}/{self.protocol}"'


def find_ranges(scalars: Iterable[yaml.Node]) -> list[PortRange]:
    """The ranges worth grouping among the items of services' ``ports:`` lists (scalar nodes)."""
    out = {}
    for node in scalars:
        if not isinstance(node, yaml.ScalarNode):
            continue
        m = _RANGE_RE.match(str(node.value).strip())
        if not m:
            continue
        hlo, hhi, clo, chi = (int(m.group(k)) for k in ("hlo", "hhi", "clo", "chi"))
        if not (0 < hlo <= hhi < 65536 and 0 < clo <= chi < 65536) or hhi - hlo != chi - clo \
                or chi - clo + 1 < MIN_GROUPED:
            continue
        ip = (m.group("ip") or "")
        start, end = (node.start_mark.line, node.start_mark.column), (node.end_mark.line, node.end_mark.column)
        out[start] = PortRange(start, end, ip, hlo, hhi, clo, chi, m.group("proto") or "tcp", str(node.value))
    return sorted(out.values(), key=lambda r: r.start)


def rewritten(text: str, ranges: list[PortRange]) -> str | None:
    """``text`` with each range replaced by its stand-in; None when the file must be read as written."""
    if not ranges or _EXTENDS_OR_INCLUDE.search(text):
        return None
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]  # the line breaks YAML counts
    parts, pos = [], 0
    for r in ranges:
        a, b = starts[r.start[0]] + r.start[1], starts[r.end[0]] + r.end[1]
        if a < pos or text[a:b].strip("'\"") != r.written:
            return None  # not where the parser said: read the file as written
        parts += [text[pos:a], r.stand_in]
        pos = b
    return "".join(parts) + text[pos:]


def restore(model: Mapping[str, Any], ranges: Iterable[PortRange]) -> None:
    """Every model entry that is a stand-in (host first port -> container last port, same protocol and IP)
    becomes its range again: ``published: "first-last"``, ``target`` the first container port, ``target_end``
    the last."""
    by_key = {(r.host_ip.strip("[]"), str(r.host_first), r.container_last, r.protocol): r for r in ranges}
    if not by_key:
        return
    for spec in (model.get("services") or {}).values():
        for p in spec.get("ports") or []:
            if not isinstance(p, dict):
                continue
            r = by_key.get((str(p.get("host_ip") or ""), str(p.get("published") or ""), p.get("target"),
                            str(p.get("protocol") or "tcp")))
            if r:
                p.update(published=f"{r.host_first}-{r.host_last}", target=r.container_first,
                         target_end=r.container_last)
