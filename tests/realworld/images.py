"""The images of the real-world applications (tests/realworld/<app>/), built here from Debian's packages.

No container registry is reachable, so no published image can be pulled. Instead:

1. a Debian base: ``mmdebstrap`` (run on the host, as root) writes a minimal bookworm root filesystem as a tar,
   ``docker import``-ed as ``runbook-realworld/debian:bookworm``;
2. one image per runtime the applications need, from a Dockerfile in ``tests/realworld/images/<name>/`` that
   installs Debian's packages with ``apt-get`` (the build containers reach Debian's package registry), each
   with an entrypoint of ours that offers the documented interface of the official image it stands in for
   (``MYSQL_*``, ``POSTGRES_*``, ``WORDPRESS_DB_*``: the applications' compose files set those).

Caching is the demo images' mechanism (:mod:`runbook_demo.images`): every image carries the
``org.runbook.demo.inputs`` label, a SHA-256 over what went into it (the mmdebstrap arguments; a build
context's files, modes and contents plus the base's digest); an image whose label matches is not rebuilt. What
Debian serves under the same package names can change; ``--force`` rebuilds anyway.

Command line (``make realworld`` runs it first)::

    .venv/bin/python tests/realworld/images.py [APP ...] [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from runbook_demo.images import INPUTS_LABEL, _content_digest, _docker_client, _existing_inputs, _raise_on_stream_error
from runbook_lib.errors import EnvironmentProblem, RunbookError

HERE = Path(__file__).resolve().parent
IMAGES_DIR = HERE / "images"
#: Bump when the way these images are assembled changes, so existing ones are rebuilt.
RECIPE_VERSION = "1"

BASE_IMAGE = "runbook-realworld/debian:bookworm"
MMDEBSTRAP_ARGS = ("--variant=minbase", "--include=ca-certificates", "bookworm")
BASE_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["bash"]')


@dataclass(frozen=True)
class ContextImage:
    """An image built from a Dockerfile in ``images/<context>/`` on top of the base."""

    name: str
    context: Path


IMAGES = {
    "mariadb": ContextImage("runbook-realworld/mariadb:local", IMAGES_DIR / "mariadb"),
    "postgres": ContextImage("runbook-realworld/postgres:local", IMAGES_DIR / "postgres"),
    "wordpress": ContextImage("runbook-realworld/wordpress:local", IMAGES_DIR / "wordpress"),
    "adminer": ContextImage("runbook-realworld/adminer:local", IMAGES_DIR / "adminer"),
}
#: Each application directory and the images its override names.
APPS = {
    "wordpress-mysql": ("mariadb", "wordpress"),
    "postgres-adminer": ("postgres", "adminer"),
}


def base_digest() -> str:
    """The inputs of the base image: the recipe version, the mmdebstrap arguments and the import changes."""
    text = f"recipe={RECIPE_VERSION}\nmmdebstrap {' '.join(MMDEBSTRAP_ARGS)}\n" + "\n".join(BASE_CHANGES)
    return hashlib.sha256(text.encode()).hexdigest()


def context_digest(context: Path, base: str) -> str:
    """SHA-256 over the base's digest and every file of a build context (relative path, mode, contents)."""
    h = hashlib.sha256(f"recipe={RECIPE_VERSION}\nbase={base}\n".encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        h.update(f"f {path.relative_to(context)} {path.stat().st_mode & 0o777:o} ".encode())
        h.update(_content_digest(path))
    return h.hexdigest()


def build_base(client, progress: Callable[[str], None] = print, force: bool = False) -> str:
    """Make the Debian base with mmdebstrap and import it, unless an image with the same inputs exists.
    Returns the base's inputs digest (the Dockerfile images' digests include it)."""
    digest = base_digest()
    old_id, old_digest = _existing_inputs(client, BASE_IMAGE)
    if old_digest == digest and not force:
        return digest
    if shutil.which("mmdebstrap") is None:
        raise EnvironmentProblem("cannot build the real-world images: mmdebstrap is missing. "
                                 "Install it with: apt-get install -y mmdebstrap")
    start = time.monotonic()
    repository, tag = BASE_IMAGE.rsplit(":", 1)
    with tempfile.TemporaryDirectory(prefix="runbook-realworld-") as tmp:
        tar = Path(tmp) / "base.tar"
        proc = subprocess.run(["mmdebstrap", "--quiet", *MMDEBSTRAP_ARGS, str(tar)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RunbookError(f"mmdebstrap failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        out = client.api.import_image(src=str(tar), repository=repository, tag=tag,
                                      changes=[*BASE_CHANGES, f"LABEL {INPUTS_LABEL}={digest}"])
    _raise_on_stream_error(out, BASE_IMAGE)
    _remove_replaced(client, old_id, BASE_IMAGE)
    progress(f"{BASE_IMAGE}: built with mmdebstrap ({time.monotonic() - start:.0f}s)")
    return digest


def build_context_image(client, image: ContextImage, base: str, progress: Callable[[str], None] = print,
                        force: bool = False) -> float:
    """Build one Dockerfile image unless its inputs label matches; returns the seconds spent (0: cached)."""
    digest = context_digest(image.context, base)
    old_id, old_digest = _existing_inputs(client, image.name)
    if old_digest == digest and not force:
        return 0.0
    start = time.monotonic()
    tail: list[str] = []
    for chunk in client.api.build(path=str(image.context), tag=image.name, labels={INPUTS_LABEL: digest},
                                  rm=True, forcerm=True, pull=False, decode=True):
        if chunk.get("stream"):
            tail = (tail + chunk["stream"].splitlines())[-30:]
        if chunk.get("error"):
            raise RunbookError(f"building {image.name} failed: {chunk['error'].strip()}\n" + "\n".join(tail))
    seconds = time.monotonic() - start
    _remove_replaced(client, old_id, image.name)
    size = client.images.get(image.name).attrs.get("Size", 0) / 1e6
    progress(f"{image.name}: built from {image.context.relative_to(HERE)} ({size:.0f} MB, {seconds:.0f}s)")
    return seconds


def _remove_replaced(client, old_id: str | None, name: str) -> None:
    """Remove the image a rebuild replaced, unless a container (or an image built on it) still uses it."""
    import docker.errors
    if old_id and old_id != client.images.get(name).id:
        try:
            client.images.remove(old_id)
        except docker.errors.APIError:
            pass


def build_images(apps: Iterable[str] = tuple(APPS), progress: Callable[[str], None] = print,
                 force: bool = False) -> dict[str, float]:
    """Build the base and the images the named applications need; {image name: seconds spent (0: cached)}."""
    unknown = [a for a in apps if a not in APPS]
    if unknown:
        raise RunbookError(f"unknown real-world application(s): {', '.join(unknown)} (known: {', '.join(APPS)})")
    client = _docker_client()
    start = time.monotonic()
    base = build_base(client, progress, force)
    spent = {BASE_IMAGE: time.monotonic() - start}
    for key in dict.fromkeys(k for a in apps for k in APPS[a]):
        spent[IMAGES[key].name] = build_context_image(client, IMAGES[key], base, progress, force)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the real-world applications' images offline.")
    parser.add_argument("apps", nargs="*", default=list(APPS), help=f"default: all ({', '.join(APPS)})")
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs label matches")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        build_images(args.apps, force=args.force)
    except RunbookError as exc:
        print(f"realworld images: {exc}", file=sys.stderr)
        return 1
    print(f"realworld images: ready in {time.monotonic() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
