"""images.pinned for a service built locally (``build:``): the image is never pulled, its Dockerfile's
``FROM`` lines are. Each base image is judged as an ``image:`` would be; the Dockerfile is read from the
build context (bounded), never built."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping

from runbook_lib.lint.rules import Verdict

MAX_DOCKERFILE_BYTES = 1 << 20
_FROM_RE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)
_ARG_RE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?", re.IGNORECASE | re.MULTILINE)
_VAR_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}?")


def dockerfile_text(build: Mapping[str, Any]) -> tuple[str | None, str]:
    """(the Dockerfile's text or None, where it was looked for) of a resolved ``build:``."""
    if build.get("dockerfile_inline"):
        return str(build["dockerfile_inline"]), "dockerfile_inline"
    context = str(build.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        return None, f"{context} (a remote context)"
    path = Path(context) / str(build.get("dockerfile") or "Dockerfile")
    try:
        if not path.is_file() or path.stat().st_size > MAX_DOCKERFILE_BYTES:
            return None, str(path)
        return path.read_text(encoding="utf-8", errors="replace"), str(path)
    except OSError:
        return None, str(path)


def base_images(text: str, args: Mapping[str, Any] | None = None) -> list[str]:
    """The images the Dockerfile's FROM lines pull: stage names and ``scratch`` left out, ``${ARG}`` filled
    from the build's args, then the ARG defaults (a reference still holding ``$`` is kept as written)."""
    values = {m.group(1): m.group(2) for m in _ARG_RE.finditer(text) if m.group(2) is not None}
    values.update({str(k): str(v) for k, v in (args or {}).items() if v is not None})
    stages: set[str] = set()
    out = []
    for m in _FROM_RE.finditer(text):
        ref = _VAR_RE.sub(lambda v: values.get(v.group(1)) or v.group(2) or v.group(0), m.group(1))
        if ref.lower() != "scratch" and ref.lower() not in stages:
            out.append(ref)
        if m.group(2):
            stages.add(m.group(2).lower())
    return list(dict.fromkeys(out))


def judge_built_image(spec: Mapping[str, Any], judge: Callable[[Mapping[str, Any]], Verdict]) -> Verdict:
    """images.pinned of a service with ``build:``: each base image of its Dockerfile judged by ``judge``
    (the rule for an ``image:``). SKIP when the Dockerfile cannot be read (a remote context, a missing
    file): nothing was seen."""
    build = spec.get("build") or {}
    build = build if isinstance(build, Mapping) else {"context": str(build)}
    expected = "an explicit version tag or a digest"
    text, where = dockerfile_text(build)
    ev: dict[str, Any] = {"image": spec.get("image") or "", "build": True, "dockerfile": where}
    if text is None:
        return Verdict("SKIP", expected, f"built locally; its Dockerfile could not be read ({where}): the FROM "
                       "lines are not judged", ev)
    bases = base_images(text, build.get("args"))
    ev["base_images"] = bases
    if not bases:
        return Verdict("PASS", expected, "built locally from scratch", ev)
    judged = [(b, judge({"image": b})) for b in bases]
    unresolved = [b for b in bases if "$" in b]
    bad = [f"FROM {b}: {v.actual.split(': ', 1)[-1]}" for b, v in judged if v.status == "FAIL" and b not in unresolved]
    if bad:
        return Verdict("FAIL", expected, f"built locally ({where}); " + "; ".join(bad), ev)
    if unresolved:
        return Verdict("SKIP", expected, f"built locally; base image {', '.join(unresolved)} depends on a build "
                       "argument with no value here", ev)
    return Verdict("PASS", expected, "built locally from " + ", ".join(f"{b} ({v.actual})" for b, v in judged), ev)
