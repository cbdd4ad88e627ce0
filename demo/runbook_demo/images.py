"""The demo images, assembled offline from files of this machine (split out of :mod:`runbook_demo`).

Each image is a root filesystem assembled into a tar stream and imported with the Docker API
(``docker import``); see :mod:`runbook_demo` for the list. Every image carries the label
``org.runbook.demo.inputs``: a SHA-256 over everything that went into it; a build whose inputs match is
skipped.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from runbook_lib.errors import EngineUnavailable, EnvironmentProblem, RunbookError

APP_DIR = Path(__file__).resolve().parents[1] / "app"  # demo/app of the checkout

OFFLINE_ENV = Path(__file__).resolve().parents[1] / "offline.env"  # demo/offline.env: the default names

APP_IMAGE = "runbook-demo/app:local"
MINIO_IMAGE = "runbook-demo/minio:local"
REDIS_IMAGE = "runbook-demo/redis:local"
PROMETHEUS_IMAGE = "runbook-demo/prometheus:local"
ALERTMANAGER_IMAGE = "runbook-demo/alertmanager:local"
IMAGES = (APP_IMAGE, MINIO_IMAGE, REDIS_IMAGE, PROMETHEUS_IMAGE, ALERTMANAGER_IMAGE)


def image_name(var: str) -> str:
    """The name an image is built under: the environment's ``var`` (APP_IMAGE...) when set, else
    demo/offline.env's. Compose lets the shell environment override ``--env-file`` values the same way,
    so a checkout that exports ``APP_IMAGE=runbook-demo/app:mine`` builds and deploys its own images
    and never rebuilds the shared ones."""
    value = os.environ.get(var, "").strip()
    if value:
        return value
    for line in OFFLINE_ENV.read_text(encoding="utf-8").splitlines():
        key, sep, default = line.partition("=")
        if sep and key.strip() == var:
            return default.strip()
    raise RunbookError(f"{OFFLINE_ENV} sets no {var}: add `{var}=runbook-demo/<name>:local` to it")

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
POSTGRES_ROOT = Path("/usr/lib/postgresql")  # Debian's postgresql-<major>: bin/ and lib/ under <major>/
POSTGRES_FILES = Path(__file__).resolve().parents[1] / "postgres"  # demo/postgres: entrypoint, init step, schema
#: Server modules the demo needs: PL/pgSQL, the text-search dictionaries initdb sets up, encoding conversions.
POSTGRES_MODULES = ("plpgsql.so", "dict_snowball.so", "*_and_*.so")
ZONEINFO_UTC = Path("/usr/share/zoneinfo/Etc/UTC")
TURNSERVER = Path("/usr/bin/turnserver")
STUNCLIENT = Path("/usr/bin/turnutils_stunclient")  # the image's healthcheck: a STUN binding request
COTURN_FILES = Path(__file__).resolve().parents[1] / "coturn"  # demo/coturn: entrypoint and configuration
#: Top-level stdlib entries left out of the images (tests, GUI, installers, the 25 MB static libpython).
STDLIB_PRUNE = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "__pycache__",
                "site-packages", "dist-packages", "config-3.11-x86_64-linux-gnu", "pydoc_data", "venv",
                "sitecustomize.py", "turtle.py"}
PATH_ENV = "/usr/local/bin:/usr/bin:/bin"
FIXED_MTIME = 1_700_000_000  # reproducible tar streams: the same inputs give the same layer


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
            "prometheus prometheus-alertmanager postgresql coturn")


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


def postgres_rootfs() -> tuple[RootFS, str]:
    """base + Debian's PostgreSQL server (postgres, initdb, psql, pg_isready), the server modules it loads,
    its share/ files (man pages left out), the UTC zone, and demo/postgres's scripts. Returns the tree and
    the directory of its binaries (for PATH)."""
    majors = sorted(POSTGRES_ROOT.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not majors:
        raise EnvironmentProblem(f"cannot build the demo images, missing: {POSTGRES_ROOT}/<major>/bin/postgres. "
                                 "Install it with: apt-get install -y postgresql")
    bindir = majors[-1].parent
    major = bindir.parent.name
    share = Path("/usr/share/postgresql") / major
    _require(share / "postgres.bki", ZONEINFO_UTC, POSTGRES_FILES / "entrypoint.sh")
    bins = [bindir / b for b in ("postgres", "initdb", "psql", "pg_isready")]
    modules = sorted({m for pattern in POSTGRES_MODULES for m in (bindir.parent / "lib").glob(pattern)})
    fs = base_rootfs([*bins, *modules])
    for path in (*bins, *modules):
        fs.add_file(str(path).lstrip("/"), path, 0o755)
    for src in sorted(share.rglob("*")):
        if src.is_file() and "man" not in src.relative_to(share).parts[:1]:
            fs.add_file(str(src).lstrip("/"), Path(os.path.realpath(src)), 0o644)
    fs.add_file("usr/share/zoneinfo/Etc/UTC", ZONEINFO_UTC, 0o644)
    fs.add_link("usr/share/zoneinfo/UTC", "Etc/UTC")
    for script in ("entrypoint.sh", "db-init.sh", "db-schema-check.sh"):
        fs.add_file(f"usr/local/bin/{script.replace('.sh', '').replace('entrypoint', 'postgres-entrypoint')}",
                    POSTGRES_FILES / script, 0o755)
    fs.add_file("usr/local/share/demo-db/schema.sql", POSTGRES_FILES / "schema.sql", 0o644)
    return fs, str(bindir)


def coturn_rootfs() -> RootFS:
    """base + Debian's coturn ``turnserver`` and ``turnutils_stunclient`` and demo/coturn's entrypoint and
    configuration."""
    _require(TURNSERVER, STUNCLIENT, COTURN_FILES / "entrypoint.sh")
    fs = base_rootfs([TURNSERVER, STUNCLIENT])
    fs.add_file("usr/bin/turnserver", TURNSERVER, 0o755)
    fs.add_file("usr/bin/turnutils_stunclient", STUNCLIENT, 0o755)
    fs.add_file("usr/local/bin/coturn-entrypoint", COTURN_FILES / "entrypoint.sh", 0o755)
    fs.add_file("etc/coturn/turnserver.conf", COTURN_FILES / "turnserver.conf", 0o644)
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

    postgres, pg_bin = postgres_rootfs()

    return [
        ImageSpec(image_name("APP_IMAGE"), app, [*common, *py_env, "WORKDIR /app", "EXPOSE 8080 8081 8082 8083 8084",
                                   'ENTRYPOINT ["python3", "/app/service.py"]', 'CMD ["serve"]']),
        ImageSpec(image_name("MINIO_IMAGE"), minio, [*common, *py_env, "WORKDIR /data", "EXPOSE 9000",
                                       'ENTRYPOINT ["minio"]', 'CMD ["server", "/data"]']),
        ImageSpec(image_name("REDIS_IMAGE"), redis, [*common, "WORKDIR /data", "EXPOSE 6379",
                                       'CMD ["redis-server", "--dir", "/data"]']),
        ImageSpec(image_name("PROMETHEUS_IMAGE"), prometheus, [*common, "WORKDIR /tmp", "EXPOSE 9090",
                                                 'ENTRYPOINT ["/bin/prometheus"]',
                                                 'CMD ["--config.file=/etc/prometheus/prometheus.yml"]']),
        ImageSpec(image_name("ALERTMANAGER_IMAGE"), alertmanager, [*common, "WORKDIR /tmp", "EXPOSE 9093",
                                                     'ENTRYPOINT ["/bin/alertmanager"]',
                                                     'CMD ["--config.file=/etc/alertmanager/alertmanager.yml"]']),
        ImageSpec(image_name("POSTGRES_IMAGE"), postgres,
                  [f"ENV PATH=/usr/local/bin:{pg_bin}:/usr/bin:/bin", f"USER {CONTAINER_UID}:{CONTAINER_GID}",
                   "ENV TZ=UTC", "ENV PGDATA=/data/pgdata", "WORKDIR /data", "EXPOSE 5432",
                   'ENTRYPOINT ["postgres-entrypoint"]']),
        ImageSpec(image_name("TURN_IMAGE"), coturn_rootfs(), [*common, "WORKDIR /tmp", "EXPOSE 3478/udp 3478/tcp",
                                                              'ENTRYPOINT ["coturn-entrypoint"]']),
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
