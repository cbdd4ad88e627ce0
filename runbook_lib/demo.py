"""The embedded demo stack ("SecureConnect"): secrets, offline images and compose life cycle.

Backs ``runbook demo up|down|status``. The stack is ``demo/compose.yaml`` (project ``secureconnect-demo``),
always run with ``--env-file demo/offline.env``, which points every image at a local one:

===================================  =============================================================
``runbook-demo/app:local``           busybox + Debian's python3.11 runtime + ``demo/app`` (the five apps)
``runbook-demo/minio:local``         the same runtime; ``minio`` runs ``demo/app/minio_standin.py``
``runbook-demo/redis:local``         busybox + Debian's redis-server and redis-cli
``runbook-demo/prometheus:local``    busybox + Debian's ``prometheus`` (a Go binary that needs only libc)
``runbook-demo/alertmanager:local``  busybox + Debian's ``prometheus-alertmanager``
===================================  =============================================================

No registry is needed: each image is a root filesystem assembled from files of this machine into a tar
stream and imported with the Docker API (``docker import``). Host packages needed (Debian 12):
``busybox-static``, ``redis-server``, ``redis-tools``, ``python3.11``, ``prometheus``,
``prometheus-alertmanager`` (and ``libc-bin`` for ``ldd``).
Every image carries the label ``org.runbook.demo.inputs``: a SHA-256 over everything that went into it
(file paths, modes, owners and contents, plus the image config); a build whose inputs match is skipped.

Secrets are files under ``demo/.secrets/`` (git-ignored), generated on first use; their values are never
printed, logged, put in an image or passed in an environment variable.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .compose import Compose
from .errors import ComposeError, EngineUnavailable, EnvironmentProblem, InputError, RunbookError

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
COMPOSE_FILE = DEMO_DIR / "compose.yaml"
ENV_FILE = DEMO_DIR / "offline.env"
OVERRIDES_DIR = DEMO_DIR / "overrides"
SECRETS_DIR = DEMO_DIR / ".secrets"
APP_DIR = DEMO_DIR / "app"
PROJECT = "secureconnect-demo"
SECRET_NAMES = ("jwt_secret", "redis_password", "minio_access_key", "minio_secret_key", "demo_user_password")

APP_IMAGE = "runbook-demo/app:local"
MINIO_IMAGE = "runbook-demo/minio:local"
REDIS_IMAGE = "runbook-demo/redis:local"
PROMETHEUS_IMAGE = "runbook-demo/prometheus:local"
ALERTMANAGER_IMAGE = "runbook-demo/alertmanager:local"
IMAGES = (APP_IMAGE, MINIO_IMAGE, REDIS_IMAGE, PROMETHEUS_IMAGE, ALERTMANAGER_IMAGE)

#: The user every demo container runs as (compose ``user: "10001:10001"``).
CONTAINER_UID = CONTAINER_GID = 10001
INPUTS_LABEL = "org.runbook.demo.inputs"
#: Bump when the way images are assembled changes, so existing images are rebuilt.
BUILD_RECIPE_VERSION = "1"

BUSYBOX = Path("/bin/busybox")
PYTHON = Path("/usr/bin/python3.11")
PYTHON_STDLIB = Path("/usr/lib/python3.11")
REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
ALERTMANAGER_SHARE = Path("/usr/share/prometheus/alertmanager")
#: Top-level stdlib entries left out of the images (tests, GUI, installers, the 25 MB static libpython).
STDLIB_PRUNE = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "__pycache__",
                "site-packages", "dist-packages", "config-3.11-x86_64-linux-gnu", "pydoc_data", "venv",
                "sitecustomize.py", "turtle.py"}
PATH_ENV = "/usr/local/bin:/usr/bin:/bin"
FIXED_MTIME = 1_700_000_000  # reproducible tar streams: the same inputs give the same layer


# ----------------------------------------------------------------------------------------------------
# secrets
# ----------------------------------------------------------------------------------------------------

def ensure_secrets(force: bool = False) -> list[Path]:
    """Create ``demo/.secrets/<name>`` for every name in SECRET_NAMES that is missing or empty.

    ``force=True`` regenerates all of them (a running stack keeps the old values until recreated).
    Values come from :func:`secrets.token_urlsafe` and are never printed. Returns the secret paths.

    Compose bind-mounts file secrets (``uid``/``gid``/``mode`` are ignored outside swarm), so inside a
    container a secret has the host file's owner and mode. The containers run as uid 10001:

    * as root, each file is chowned to 10001:10001 with mode 0400 - readable by the container user only;
    * otherwise we cannot chown, so the mode is 0444: uid 10001 is "other" to the file's owner and needs
      the world-read bit. The directory stays 0700 either way: the engine resolves a bind-mount source
      as root, and the container sees only the file, never this directory.
    """
    SECRETS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(SECRETS_DIR, 0o700)
    as_root = os.geteuid() == 0
    paths = []
    for name in SECRET_NAMES:
        path = SECRETS_DIR / name
        if force or not path.is_file() or not path.read_text(encoding="utf-8").strip():
            tmp = path.with_name(f".{name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(32))
            os.replace(tmp, path)
        if as_root:
            os.chown(path, CONTAINER_UID, CONTAINER_GID)
            os.chmod(path, 0o400)
        else:
            os.chmod(path, 0o444)
        paths.append(path)
    return paths


def read_secret(name: str) -> str:
    """The value of demo secret ``name`` (for tests that must log in); never print it."""
    if name not in SECRET_NAMES:
        raise InputError(f"unknown demo secret {name!r}; known: {', '.join(SECRET_NAMES)}")
    path = SECRETS_DIR / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"demo secret {path} is unreadable ({exc.strerror}); run ensure_secrets()") from exc


# ----------------------------------------------------------------------------------------------------
# root filesystems
# ----------------------------------------------------------------------------------------------------

@dataclass
class RootFS:
    """What goes into one image: directories, host files (by path) and generated files, by image path."""

    dirs: dict[str, tuple[int, int]] = field(default_factory=dict)          # path -> (mode, uid)
    files: dict[str, tuple[Path | bytes, int]] = field(default_factory=dict)  # path -> (source, mode)
    links: dict[str, str] = field(default_factory=dict)                      # path -> symlink target

    def add_dir(self, path: str, mode: int = 0o755, uid: int = 0) -> None:
        if not path.strip("/"):
            return
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            self.dirs.setdefault("/".join(parts[:i]), (0o755, 0))
        self.dirs[path.strip("/")] = (mode, uid)

    def add_file(self, path: str, source: Path | bytes, mode: int | None = None) -> None:
        path = path.strip("/")
        if os.path.dirname(path) not in self.dirs:
            self.add_dir(os.path.dirname(path))
        if mode is None:
            mode = 0o755 if isinstance(source, Path) and os.access(source, os.X_OK) else 0o644
        self.files[path] = (source, mode)

    def add_link(self, path: str, target: str) -> None:
        path = path.strip("/")
        if os.path.dirname(path) not in self.dirs:
            self.add_dir(os.path.dirname(path))
        self.links[path] = target

    def merge(self, other: "RootFS") -> "RootFS":
        for k, v in other.dirs.items():
            self.dirs.setdefault(k, v)
        self.files.update(other.files)
        self.links.update(other.links)
        return self

    def digest(self, extra: str = "") -> str:
        """SHA-256 over paths, modes, owners, link targets and file contents (plus ``extra``)."""
        h = hashlib.sha256(f"recipe={BUILD_RECIPE_VERSION}\n{extra}\n".encode())
        for path, (mode, uid) in sorted(self.dirs.items()):
            h.update(f"d {path} {mode:o} {uid}\n".encode())
        for path, target in sorted(self.links.items()):
            h.update(f"l {path} {target}\n".encode())
        for path, (source, mode) in sorted(self.files.items()):
            h.update(f"f {path} {mode:o} ".encode())
            h.update(_content_digest(source))
        return h.hexdigest()

    def write_tar(self, fileobj) -> None:
        """An uncompressed tar of the tree, with fixed mtimes, for ``docker import``."""
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path, (mode, uid) in sorted(self.dirs.items()):
                tar.addfile(_tarinfo(path, tarfile.DIRTYPE, mode, uid))
            for path, target in sorted(self.links.items()):
                info = _tarinfo(path, tarfile.SYMTYPE, 0o777, 0)
                info.linkname = target
                tar.addfile(info)
            for path, (source, mode) in sorted(self.files.items()):
                info = _tarinfo(path, tarfile.REGTYPE, mode, 0)
                if isinstance(source, bytes):
                    info.size = len(source)
                    tar.addfile(info, io.BytesIO(source))
                else:
                    with open(source, "rb") as fh:
                        info.size = os.fstat(fh.fileno()).st_size
                        tar.addfile(info, fh)


def _tarinfo(path: str, kind: bytes, mode: int, uid: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.mtime = kind, mode, FIXED_MTIME
    info.uid = info.gid = uid
    info.uname = info.gname = ""
    return info


def _content_digest(source: Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return hashlib.sha256(source).digest()
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


_LDD_RE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)", re.M)


def shared_libraries(binaries: Iterable[Path]) -> set[str]:
    """Absolute paths of every shared library ``ldd`` reports for ``binaries`` (as ldd names them)."""
    libs: set[str] = set()
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        if proc.returncode != 0 and "not a dynamic executable" not in proc.stdout + proc.stderr:
            raise EnvironmentProblem(f"ldd {binary} failed: {proc.stderr.strip()}")
        if "not found" in proc.stdout:
            missing = [line.split()[0] for line in proc.stdout.splitlines() if "not found" in line]
            raise EnvironmentProblem(f"{binary} needs libraries that are not installed: {', '.join(missing)}")
        libs.update(_LDD_RE.findall(proc.stdout))
    return libs


def _require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise EnvironmentProblem(
            f"cannot build the demo images, missing: {', '.join(missing)}. "
            "Install them with: apt-get install -y busybox-static redis-server redis-tools python3.11 "
            "prometheus prometheus-alertmanager")


def base_rootfs(extra_binaries: Sequence[Path] = ()) -> RootFS:
    """busybox (+ applet links), /etc/passwd and /etc/group with user 10001, /tmp, /data (10001)."""
    _require(BUSYBOX)
    fs = RootFS()
    for d in ("bin", "usr/bin", "usr/local/bin", "etc", "lib", "lib64", "run", "var", "app"):
        fs.add_dir(d)
    fs.add_dir("tmp", 0o1777)
    fs.add_dir("data", 0o755, CONTAINER_UID)
    fs.add_dir("home/app", 0o755, CONTAINER_UID)
    fs.add_file("bin/busybox", BUSYBOX, 0o755)
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox":
            fs.add_link(f"bin/{applet}", "busybox")
    fs.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                              b"app:x:10001:10001:app:/home/app:/bin/sh\n"
                              b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644)
    fs.add_file("etc/group", b"root:x:0:\napp:x:10001:\nnogroup:x:65534:\n", 0o644)
    fs.add_file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n", 0o644)
    for lib in sorted(shared_libraries(extra_binaries)):
        # store the resolved file under the name the loader asks for (sonames are symlinks on the host)
        fs.add_file(lib.lstrip("/"), Path(os.path.realpath(lib)), 0o755)
    return fs


def python_rootfs() -> RootFS:
    """base + /usr/bin/python3.11 (python3 link) + its pruned stdlib and every library it loads."""
    _require(PYTHON, PYTHON_STDLIB)
    dynload = sorted((PYTHON_STDLIB / "lib-dynload").glob("*.so"))
    fs = base_rootfs([PYTHON, *dynload])
    fs.add_file("usr/bin/python3.11", PYTHON, 0o755)
    fs.add_link("usr/bin/python3", "python3.11")
    fs.add_link("usr/bin/python", "python3.11")
    stdlib_real = os.path.realpath(PYTHON_STDLIB)
    for root, dirs, files in os.walk(PYTHON_STDLIB):
        rel_root = os.path.relpath(root, PYTHON_STDLIB)
        top = rel_root == "."
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (top and d in STDLIB_PRUNE)
                         and d not in ("test", "tests", "idle_test"))
        fs.add_dir(os.path.normpath(os.path.join(str(PYTHON_STDLIB).lstrip("/"), rel_root)))
        for name in sorted(files):
            if top and name in STDLIB_PRUNE:
                continue
            src = Path(root) / name
            real = os.path.realpath(src)
            if not real.startswith(stdlib_real + os.sep) or not os.path.isfile(real):
                continue  # e.g. Debian's sitecustomize.py -> /etc/python3.11/
            if name.endswith((".pyc", ".pyo", ".exe", ".a")):
                continue
            fs.add_file(str(src).lstrip("/"), Path(real), 0o755 if name.endswith(".so") else 0o644)
    return fs


@dataclass
class ImageSpec:
    name: str
    rootfs: RootFS
    changes: list[str]


def image_specs() -> list[ImageSpec]:
    """The demo images: root filesystems and ``docker import --change`` instructions."""
    _require(APP_DIR / "service.py", APP_DIR / "minio_standin.py", REDIS_SERVER, REDIS_CLI, PROMETHEUS, ALERTMANAGER,
             ALERTMANAGER_SHARE / "default.tmpl")
    common = [f"ENV PATH={PATH_ENV}", f"USER {CONTAINER_UID}:{CONTAINER_GID}"]
    py_env = ["ENV PYTHONDONTWRITEBYTECODE=1", "ENV PYTHONUNBUFFERED=1"]
    python = python_rootfs()
    app_files = {f"app/{p.name}": p for p in sorted(APP_DIR.glob("*.py"))}

    app = RootFS().merge(python)
    for path, src in app_files.items():
        app.add_file(path, src, 0o644)

    minio = RootFS().merge(python)
    for path, src in app_files.items():
        minio.add_file(path, src, 0o644)
    minio.add_file("usr/bin/minio", b'#!/bin/sh\n# MinIO stand-in: see /app/minio_standin.py\n'
                                    b'exec python3 /app/minio_standin.py "$@"\n', 0o755)

    redis = base_rootfs([REDIS_SERVER, REDIS_CLI])
    # redis-server is a symlink to redis-check-rdb on Debian, and redis picks its mode from argv[0]:
    # the copy must be *named* redis-server.
    redis.add_file("usr/bin/redis-server", Path(os.path.realpath(REDIS_SERVER)), 0o755)
    redis.add_file("usr/bin/redis-cli", REDIS_CLI, 0o755)

    # Same paths and entrypoints as the public prom/prometheus and prom/alertmanager images, so
    # compose.yaml's `command:` works with either.
    prometheus = base_rootfs([PROMETHEUS])
    prometheus.add_file("bin/prometheus", PROMETHEUS, 0o755)
    alertmanager = base_rootfs([ALERTMANAGER])
    alertmanager.add_file("bin/alertmanager", ALERTMANAGER, 0o755)
    # Debian's build reads its notification templates (default.tmpl...) from here at start.
    for src in sorted(ALERTMANAGER_SHARE.rglob("*")):
        if src.is_file():
            alertmanager.add_file(str(src).lstrip("/"), src, 0o644)

    return [
        ImageSpec(APP_IMAGE, app, [*common, *py_env, "WORKDIR /app", "EXPOSE 8080 8081 8082 8083 8084",
                                   'ENTRYPOINT ["python3", "/app/service.py"]', 'CMD ["serve"]']),
        ImageSpec(MINIO_IMAGE, minio, [*common, *py_env, "WORKDIR /data", "EXPOSE 9000",
                                       'ENTRYPOINT ["minio"]', 'CMD ["server", "/data"]']),
        ImageSpec(REDIS_IMAGE, redis, [*common, "WORKDIR /data", "EXPOSE 6379",
                                       'CMD ["redis-server", "--dir", "/data"]']),
        ImageSpec(PROMETHEUS_IMAGE, prometheus, [*common, "WORKDIR /tmp", "EXPOSE 9090",
                                                 'ENTRYPOINT ["/bin/prometheus"]',
                                                 'CMD ["--config.file=/etc/prometheus/prometheus.yml"]']),
        ImageSpec(ALERTMANAGER_IMAGE, alertmanager, [*common, "WORKDIR /tmp", "EXPOSE 9093",
                                                     'ENTRYPOINT ["/bin/alertmanager"]',
                                                     'CMD ["--config.file=/etc/alertmanager/alertmanager.yml"]']),
    ]


# ----------------------------------------------------------------------------------------------------
# building
# ----------------------------------------------------------------------------------------------------

def _docker_client():
    try:
        import docker
        client = docker.from_env(timeout=300)
        client.ping()
        return client
    except Exception as exc:  # docker.errors.DockerException, requests errors...
        raise EngineUnavailable(f"no Docker engine answers: {exc}") from exc


def _existing_inputs(client, name: str) -> tuple[str | None, str | None]:
    import docker.errors
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None, None
    return image.id, (image.labels or {}).get(INPUTS_LABEL)


def build_images(progress: Callable[[str], None] = print, force: bool = False) -> dict[str, str]:
    """Build the demo images that are missing or out of date; returns {image name: image id}.

    An image is up to date when its ``org.runbook.demo.inputs`` label equals the digest of what would
    go into it now (so an apt upgrade of python3.11/redis or an edit of ``demo/app`` triggers a rebuild;
    a no-op call takes about a second). ``force=True`` rebuilds regardless. One progress line per image.
    The image a rebuild replaces is removed when no container uses it.
    """
    import docker.errors

    client = _docker_client()
    result: dict[str, str] = {}
    for spec in image_specs():
        start = time.monotonic()
        digest = spec.rootfs.digest("\n".join(spec.changes))
        old_id, old_digest = _existing_inputs(client, spec.name)
        if old_id and old_digest == digest and not force:
            result[spec.name] = old_id  # up to date: nothing to say (set-up is quiet about what is in place)
            continue
        repository, tag = spec.name.rsplit(":", 1)
        with tempfile.NamedTemporaryFile(prefix="runbook-demo-", suffix=".tar") as tmp:
            spec.rootfs.write_tar(tmp)
            tmp.flush()
            try:
                out = client.api.import_image(src=tmp.name, repository=repository, tag=tag,
                                              changes=[*spec.changes, f"LABEL {INPUTS_LABEL}={digest}"])
            except docker.errors.APIError as exc:
                raise RunbookError(f"importing {spec.name} failed: {exc.explanation or exc}") from exc
        _raise_on_stream_error(out, spec.name)
        image = client.images.get(spec.name)
        result[spec.name] = image.id
        if old_id and old_id != image.id:
            try:
                client.images.remove(old_id)
            except docker.errors.APIError:
                pass  # still used by a container: left for `docker image prune`
        progress(f"{spec.name}: built ({image.attrs.get('Size', 0) / 1e6:.1f} MB, "
                 f"{time.monotonic() - start:.1f}s)")
    _remove_stale_images(client)
    return result


def _remove_stale_images(client) -> None:
    """Remove untagged demo images left by earlier rebuilds, once no container uses them."""
    import docker.errors
    for image in client.images.list(filters={"dangling": True, "label": INPUTS_LABEL}):
        try:
            client.images.remove(image.id)
        except docker.errors.APIError:
            pass


def _raise_on_stream_error(out, name: str) -> None:
    text = out.decode() if isinstance(out, bytes) else str(out)
    for line in text.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("error"):
            raise RunbookError(f"importing {name} failed: {msg['error']}")


# ----------------------------------------------------------------------------------------------------
# compose life cycle
# ----------------------------------------------------------------------------------------------------

def override_path(name: str | Path) -> Path:
    """An override by file path, or by name from demo/overrides/ (``"broken-health"``)."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    candidate = OVERRIDES_DIR / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in OVERRIDES_DIR.glob("*.yaml")))
    raise InputError(f"unknown demo override {str(name)!r}; known: {known}")


def compose(overrides: Sequence[str | Path] = ()) -> Compose:
    """The demo project: compose.yaml (+ overrides), ``--env-file offline.env``, project PROJECT."""
    return Compose(files=[COMPOSE_FILE, *(override_path(o) for o in overrides)],
                   project=PROJECT, env_files=[ENV_FILE])


def up(overrides: Sequence[str | Path] = (), wait: bool = True, timeout: float = 180,
       progress: Callable[[str], None] = print) -> list[dict]:
    """Bring the demo up: secrets, images (cached builds are a no-op), ``compose up -d``.

    With ``wait`` (the default) returns only when every service is healthy (``up --wait``) and raises
    :class:`~runbook_lib.errors.ComposeError` if one is not within ``timeout`` seconds; an override
    such as ``broken-health`` needs ``wait=False``. Returns :func:`status`.
    """
    ensure_secrets()
    build_images(progress=progress)
    project = compose(overrides)
    proc = project.up(wait=wait, timeout=timeout)
    rows = status()
    if wait:
        # Compose 2.40 prints "container ... is unhealthy" yet exits 0 from `up --wait`: check ourselves.
        bad = [r for r in rows if r["state"] != "running" or r["health"] not in ("healthy", "")]
        if bad:
            detail = "; ".join(f"{r['service']} is {r['health'] or r['state']}" for r in bad)
            # a port conflict is only in Compose's stderr ("...: bind: address already in use"): say it
            daemon = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip().startswith("Error response")]
            detail += "".join(f" ({ln})" for ln in daemon[:2])
            raise ComposeError(project.command("up", "-d", "--wait"), proc.returncode or 1,
                               f"{proc.stderr.rstrip()}\nnot healthy after up --wait: {detail}")
    return rows


def down(volumes: bool = False) -> None:
    """Stop and remove the demo containers and network; ``volumes=True`` also deletes the data volumes.
    Images are kept."""
    compose().down(volumes=volumes)


def status() -> list[dict]:
    """One dict per demo container: ``service``, ``state`` (running, exited...), ``health`` (healthy,
    unhealthy, starting, or "" without a healthcheck) and ``ports`` (["127.0.0.1:8080->8080/tcp"])."""
    rows = []
    for c in compose().ps():
        ports = sorted({f"{p.get('URL')}:{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol')}"
                        for p in c.get("Publishers") or [] if p.get("PublishedPort")})
        rows.append({"service": c.get("Service", ""), "state": c.get("State", ""),
                     "health": c.get("Health", ""), "ports": ports})
    return sorted(rows, key=lambda r: r["service"])
