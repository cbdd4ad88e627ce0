"""docs/parameters.md, generated from the typed parameter models (runbook_lib/params/core.py and
params_sections.py).

Every section and key with its type, default, constraints, allowed values and description (the Field's
``description``). The models are the one source: a test regenerates the reference and fails when the
committed file differs.

    python -m runbook_lib.params.doc            # rewrite docs/parameters.md
    python -m runbook_lib.params.doc --check    # exit 1 when docs/parameters.md is out of date

A developer tool of the source checkout: docs/ is not in the wheel, so installed it needs ``--out FILE``
(without it, one line saying so and exit 2).
"""
from __future__ import annotations

import argparse
import inspect
import sys
import typing
from datetime import date
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from runbook_lib.params import Params
from runbook_lib.params.sections import WaiverFile


def checkout_doc(name: str) -> Path | None:
    """docs/NAME of the source checkout this module runs from (an editable install), or None when runbook_lib is
    installed (site-packages has no docs/ beside it)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "docs").is_dir() and (root / "runbook_lib").is_dir():
        return root / "docs" / name
    return None


DOC = checkout_doc("parameters.md")

INTRO = """# Parameters reference

Generated from the typed models in `runbook_lib/params/core.py` and `runbook_lib/params/sections.py` by
`python -m runbook_lib.params.doc`: do not edit by hand (`tests/params/test_params_doc.py` fails when this file is
out of date). A parameters file is YAML; an unknown key or a wrong type is an error naming the file and the key
(with a did-you-mean). Paths are relative to the parameters file. Parameters never hold secret values: only
names and paths. `runbook init COMPOSE_FILE...` writes a commented starter file; `parameters/demo.yaml` is a
complete example.
"""

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path", date: "date (YYYY-MM-DD)",
            Any: "any"}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The parameter models inside an annotation (list[Drill] -> [Drill])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


def type_name(annotation: Any) -> str:
    """A reader's name for a type: ``list of string``, ``one of `stop`, `pause```, ``Drill (below)``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"mapping ([{annotation.__name__}](#{annotation.__name__.lower()}))"
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(type_name(a) for a in rest) + (" or null" if len(rest) < len(args) else "")
    return getattr(annotation, "__name__", str(annotation))


def constraints(field: FieldInfo) -> list[str]:
    """Bounds, lengths and patterns from the field's metadata, as ``> 0``, ``at least 1 item``."""
    out = []
    symbols = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    for m in field.metadata:
        for attr, sym in symbols.items():
            if getattr(m, attr, None) is not None:
                out.append(f"{sym} {getattr(m, attr)}")
        if getattr(m, "min_length", None) is not None:
            out.append(f"at least {m.min_length}")
        if getattr(m, "pattern", None):
            out.append(f"matches `{m.pattern}`")
    return out


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    text = yaml.safe_dump([value], default_flow_style=True, width=1 << 20).strip()[1:-1]
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def section(model: type[BaseModel], where: str) -> list[str]:
    """One model: its heading, where it lives, its docstring, and a table of its keys."""
    doc = inspect.cleandoc(model.__doc__) if model.__doc__ and model.__doc__ != BaseModel.__doc__ else ""
    lines = [f"## {model.__name__}", "", where, ""]
    if doc:
        lines += [" ".join(doc.split()).replace("``", "`"), ""]
    lines += ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        lines.append("| " + " | ".join(_cell(c) for c in (
            f"`{field.alias or name}`", type_name(field.annotation), default_text(field),
            ", ".join(constraints(field)), field.description or "")) + " |")
    return lines + [""]


def _tree(root: type[BaseModel], top: str, file: str) -> list[str]:
    """``root`` and every model it contains, breadth first, each under the YAML path it lives at."""
    lines: list[str] = []
    queue: list[tuple[type[BaseModel], str]] = [(root, "")]
    seen: set[type[BaseModel]] = set()
    while queue:
        model, key = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += section(model, f"At `{key}` of {file}." if key else top)
        for name, field in model.model_fields.items():
            suffix = "[]" if typing.get_origin(field.annotation) is list else ""
            path = f"{key + '.' if key else ''}{field.alias or name}{suffix}"
            queue += [(inner, path) for inner in _models(field.annotation)]
    return lines


def render() -> str:
    """The whole reference: the parameters file, then the waivers file."""
    lines = [INTRO]
    lines += _tree(Params, "The top level of a parameters file.", "a parameters file")
    lines += _tree(WaiverFile, "The top level of the waivers file that `policy.waivers_file` names.",
                   "the waivers file")
    return "\n".join(lines).rstrip() + "\n"


def generator_main(argv: list[str] | None, *, module: str, description: str, doc: Path | None, name: str,
                   source: str, render: Callable[[], str]) -> int:
    """The command line of a generated page of docs/ (this one, docs/phases.md): write ``render()`` to ``doc``
    (or ``--out``), or with ``--check`` exit 1 when the file differs from what ``source`` says."""
    ap = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    ap.add_argument("--check", action="store_true", help=f"exit 1 when the file differs from {source}")
    ap.add_argument("--out", type=Path, default=doc,
                    help=f"where to write (default: {doc or f'docs/{name} of the source checkout'})")
    args = ap.parse_args(argv)
    if args.out is None:
        ap.error(f"docs/{name} belongs to the source checkout, and this runbook_lib is installed: "
                 "run it from a checkout (make env), or give --out FILE")
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run `python -m {module}`", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return generator_main(argv, module="runbook_lib.params.doc", description=__doc__.splitlines()[0], doc=DOC,
                          name="parameters.md", source="the models", render=render)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
