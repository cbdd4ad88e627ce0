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

import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import yaml

from runbook_lib.engine.compose import Compose
from runbook_demo.ports import free_ports  # noqa: F401  (demo.free_ports: tests use it)
from runbook_demo.images import (ALERTMANAGER_IMAGE, APP_IMAGE, BUILD_RECIPE_VERSION, CONTAINER_GID, CONTAINER_UID,
                          IMAGES, INPUTS_LABEL, MINIO_IMAGE, PROMETHEUS_IMAGE, REDIS_IMAGE, ImageSpec, RootFS,
                          base_rootfs, build_images, image_specs, python_rootfs, shared_libraries)
from runbook_lib.errors import ComposeError, InputError

# The image names and builders live in runbook_demo.images; re-exported here, beside the stack they build.
__all__ = ["ALERTMANAGER_IMAGE", "APP_IMAGE", "BUILD_RECIPE_VERSION", "CONTAINER_GID", "CONTAINER_UID", "IMAGES",
           "INPUTS_LABEL", "MINIO_IMAGE", "PROMETHEUS_IMAGE", "REDIS_IMAGE", "ImageSpec", "RootFS", "base_rootfs",
           "build_images", "image_specs", "python_rootfs", "shared_libraries", "COMPOSE_FILE", "ENV_FILE", "PROJECT",
           "PORTS", "SECRET_NAMES", "Stack", "DEFAULT", "free_ports", "ensure_secrets", "override_path", "up",
           "down", "status", "STACK_FILE", "SWARM_STACK", "swarm_up", "swarm_down", "swarm_status",
           "ensure_swarm_secrets", "swarm_secret_names"]

# The demo material is the checkout's demo/ directory, beside this package: runbook-demo is installed
# editable from the checkout (scripts/setup.sh: pip install -e demo), never as a wheel (demo/pyproject.toml).
DEMO_DIR = Path(__file__).resolve().parents[1]
COMPOSE_FILE = DEMO_DIR / "compose.yaml"
if not COMPOSE_FILE.is_file():
    raise ImportError(f"runbook_demo runs from the source checkout's demo/ directory (pip install -e demo), "
                      f"and {COMPOSE_FILE} does not exist", name="runbook_demo")
ENV_FILE = DEMO_DIR / "offline.env"
OVERRIDES_DIR = DEMO_DIR / "overrides"
SECRETS_DIR = DEMO_DIR / ".secrets"
PROJECT = "secureconnect-demo"
SECRET_NAMES = ("jwt_secret", "redis_password", "minio_access_key", "minio_secret_key", "demo_user_password",
                "postgres_password", "auth_db_password", "turn_password")
PARAMS_FILE = DEMO_DIR.parent / "parameters" / "demo.yaml"
#: Published host ports: service -> (the compose.yaml variable that sets it, its default).
PORTS: dict[str, tuple[str, int]] = {
    "api-gateway": ("RB_API_GATEWAY_PORT", 8080), "auth-service": ("RB_AUTH_SERVICE_PORT", 8081),
    "chat-service": ("RB_CHAT_SERVICE_PORT", 8082), "video-service": ("RB_VIDEO_SERVICE_PORT", 8083),
    "storage-service": ("RB_STORAGE_SERVICE_PORT", 8084), "prometheus": ("RB_PROMETHEUS_PORT", 9090),
    "alertmanager": ("RB_ALERTMANAGER_PORT", 9093), "coturn": ("RB_COTURN_PORT", 3478)}

# ----------------------------------------------------------------------------------------------------
# secrets
# ----------------------------------------------------------------------------------------------------

def ensure_secrets() -> list[Path]:
    """Create ``demo/.secrets/<name>`` for every name in SECRET_NAMES that is missing or empty.

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
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            # A temporary file of this process's own, then an atomic move: several processes (pytest
            # workers) may make the secrets at once. An existing non-empty file wins, so a value a
            # running stack already uses is never replaced behind it.
            tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(32))
            if not path.is_file() or not path.stat().st_size:
                os.replace(tmp, path)
            else:
                tmp.unlink()
        if as_root:
            os.chown(path, CONTAINER_UID, CONTAINER_GID)
            os.chmod(path, 0o400)
        else:
            os.chmod(path, 0o444)
        paths.append(path)
    return paths


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


_URL_PORT_RE = re.compile(r"127\.0\.0\.1:(\d+)\b")


@dataclass
class Stack:
    """One deployment of the demo: a compose project name and its published host ports.

    ``Stack()`` is what ``runbook demo up`` deploys: project ``secureconnect-demo`` on the ports
    compose.yaml defaults to (8080-8084, 9090, 9093). :meth:`isolated` makes one with a name of its own
    and free ports, written to an extra env file (``RB_*_PORT=...``) that compose.yaml interpolates:
    tests and benchmarks deploy that, so a user's demo or another checkout's is never touched."""

    project: str = PROJECT
    ports: dict[str, int] = field(default_factory=lambda: {s: p for s, (_, p) in PORTS.items()})
    env_file: Path | None = None

    @classmethod
    def isolated(cls, directory: str | Path, prefix: str = "rbtest") -> "Stack":
        project = f"{prefix}-{uuid.uuid4().hex[:8]}"
        ports = dict(zip(PORTS, free_ports(len(PORTS))))
        env_file = Path(directory).resolve() / f"{project}.env"
        env_file.write_text("".join(f"{PORTS[s][0]}={p}\n" for s, p in ports.items()), encoding="utf-8")
        return cls(project, ports, env_file)

    @property
    def env_files(self) -> list[Path]:
        return [ENV_FILE, *([self.env_file] if self.env_file else [])]

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def compose(self, overrides: Sequence[str | Path] = ()) -> Compose:
        """compose.yaml (+ overrides), ``--env-file offline.env`` (+ this stack's ports), ``-p project``."""
        return Compose(files=[COMPOSE_FILE, *(override_path(o) for o in overrides)],
                       project=self.project, env_files=self.env_files)

    def up(self, overrides: Sequence[str | Path] = (), wait: bool = True, timeout: float = 180,
           progress: Callable[[str], None] = print) -> list[dict]:
        """See :func:`up`."""
        ensure_secrets()
        build_images(progress=progress)
        project = self.compose(overrides)
        proc = project.up(wait=wait, timeout=timeout)
        stale = self._created_from_other_files(project)
        if stale:  # e.g. a planted fault's override: Compose leaves a container whose config is unchanged alone,
            progress(f"recreating {', '.join(stale)}: created from other compose files")  # and prod.drift says so
            proc = project.run("up", "-d", "--no-deps", "--force-recreate",
                               *(["--wait", "--wait-timeout", str(int(timeout))] if wait else []), *stale,
                               timeout=timeout + 60, check=False)
        rows = self.status()
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

    def _created_from_other_files(self, project: Compose) -> list[str]:
        """The services whose container was created from other compose files than ``project``'s."""
        from runbook_lib.engine import Engine

        want = [str(Path(f).resolve()) for f in project.files]
        with _engine_call("reading the demo's containers"):
            views = Engine().project_containers(self.project)
        return sorted({v.service for v in views if v.service and [str(Path(f).resolve()) for f in v.config_files] != want})

    def down(self, volumes: bool = False) -> None:
        self.compose().down(volumes=volumes)

    def status(self) -> list[dict]:
        """See :func:`status`."""
        rows = []
        for c in self.compose().ps():
            ports = sorted({f"{p.get('URL')}:{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol')}"
                            for p in c.get("Publishers") or [] if p.get("PublishedPort")})
            rows.append({"service": c.get("Service", ""), "state": c.get("State", ""),
                         "health": c.get("Health", ""), "ports": ports})
        return sorted(rows, key=lambda r: r["service"])

    def params(self, changes: Mapping[str, object] | None = None, base: Path = PARAMS_FILE) -> dict:
        """``base`` (parameters/demo.yaml) for this stack: its project name (also in container-name
        patterns), its ports in every 127.0.0.1 URL, its env file, paths made absolute; then ``changes``
        by dotted key (``{"redeploy.healthy_timeout_s": 40}``; None removes the key)."""
        by_default = {p: self.ports[s] for s, (_, p) in PORTS.items()}
        text = _URL_PORT_RE.sub(lambda m: f"127.0.0.1:{by_default.get(int(m.group(1)), m.group(1))}",
                                base.read_text(encoding="utf-8"))
        data = yaml.safe_load(text.replace(PROJECT, self.project))
        data["compose_files"] = [str((base.parent / f).resolve()) for f in data["compose_files"]]
        env = [str((base.parent / f).resolve()) for f in data.get("env_files", [])]
        data["env_files"] = env + [str(self.env_file)] * bool(self.env_file)
        for section, key in (("signoff", "signing_key"), ("policy", "waivers_file")):
            if (data.get(section) or {}).get(key):
                data[section][key] = str((base.parent / data[section][key]).resolve())
        for key, value in (changes or {}).items():
            target = data
            *parents, last = key.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            if value is None:
                target.pop(last, None)
            else:
                target[last] = value
        return data

    def write_params(self, path: str | Path, changes: Mapping[str, object] | None = None,
                     base: Path = PARAMS_FILE) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.params(changes, base), sort_keys=False), encoding="utf-8")
        return path


DEFAULT = Stack()


def up(overrides: Sequence[str | Path] = (), wait: bool = True, timeout: float = 180,
       progress: Callable[[str], None] = print) -> list[dict]:
    """Bring the demo up: secrets, images (cached builds are a no-op), ``compose up -d``.

    With ``wait`` (the default) returns only when every service is healthy (``up --wait``) and raises
    :class:`~runbook_lib.errors.ComposeError` if one is not within ``timeout`` seconds; an override
    such as ``broken-health`` needs ``wait=False``. Returns :func:`status`.
    """
    return DEFAULT.up(overrides, wait=wait, timeout=timeout, progress=progress)


def down(volumes: bool = False) -> None:
    """Stop and remove the demo containers and network; ``volumes=True`` also deletes the data volumes.
    Images are kept."""
    DEFAULT.down(volumes=volumes)


def status() -> list[dict]:
    """One dict per demo container: ``service``, ``state`` (running, exited...), ``health`` (healthy,
    unhealthy, starting, or "" without a healthcheck) and ``ports`` (["127.0.0.1:8080->8080/tcp"])."""
    return DEFAULT.status()


# ----------------------------------------------------------------------------------------------------
# the demo as a Swarm stack (demo/stack.yaml; `runbook demo up|down|status --swarm`)
# ----------------------------------------------------------------------------------------------------

STACK_FILE = DEMO_DIR / "stack.yaml"
SWARM_STACK = "secureconnect-swarm"
SWARM_PARAMS_FILE = DEMO_DIR.parent / "parameters" / "demo-swarm.yaml"
#: Set on the swarm secrets `runbook demo up --swarm` creates: `down --swarm` removes only those.
SWARM_SECRET_LABEL = "org.runbook.demo"


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"


def swarm_secret_names() -> dict[str, str]:
    """The stack file's secrets: key in the file -> the external swarm secret's name (demo/.secrets/<key>)."""
    doc = yaml.safe_load(STACK_FILE.read_text(encoding="utf-8")) or {}
    return {key: (spec or {}).get("name") or key for key, spec in (doc.get("secrets") or {}).items()}


def _swarm_manager(init_swarm: bool, progress: Callable[[str], None]):
    """The engine DOCKER_HOST names, once it is known to be a swarm manager. Never makes it one unless
    ``init_swarm`` says so. Raises InputError (nothing changed) otherwise."""
    from runbook_lib.engine import Engine

    engine = Engine()
    state = engine.swarm_state()
    if state["state"] != "active":
        if not init_swarm:
            raise InputError(
                f"the engine at {_docker_host()} is not a swarm manager (swarm state: {state['state'] or 'inactive'}); "
                "`runbook demo up --swarm` never turns an engine into one by itself. Point DOCKER_HOST at a manager, "
                "run `docker swarm init` yourself, or add --init-swarm (a single-node swarm advertised on 127.0.0.1; "
                "`docker swarm leave --force` undoes it). Nothing was changed.")
        progress(f"$ docker swarm init --advertise-addr 127.0.0.1   (--init-swarm, on {_docker_host()})")
        with _engine_call("initialising the swarm"):
            engine.client.swarm.init(advertise_addr="127.0.0.1")  # the join tokens are not printed
    elif not state["manager"]:
        raise InputError(f"the engine at {_docker_host()} is a swarm worker: stacks are deployed on a manager. Point "
                         "DOCKER_HOST at a manager of that swarm. Nothing was changed.")
    return engine


class _engine_call:
    """Engine SDK errors of the demo's own calls as RunbookErrors naming what was being done."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        from runbook_lib.errors import RunbookError

        if exc is not None and not isinstance(exc, RunbookError) and isinstance(exc, Exception):
            raise RunbookError(f"engine call failed while {self.what}: {exc}") from exc
        return False


def ensure_swarm_secrets(engine, progress: Callable[[str], None] = print) -> list[str]:
    """Create each external secret of the stack file in the swarm, by name, from demo/.secrets/<key> (the
    files compose.yaml mounts). One that exists is kept: a swarm secret cannot be changed, and the services
    use it. The value goes from the file to the engine API; it is never printed or logged. Returns the names."""
    names = []
    for key, name in swarm_secret_names().items():
        if engine.swarm_objects_named("secret", name):
            progress(f"secret {name}: exists in the swarm (kept)")
        else:
            data = (SECRETS_DIR / key).read_bytes()
            with _engine_call(f"creating swarm secret {name}"):
                engine.api.create_secret(name, data, labels={SWARM_SECRET_LABEL: "1"})
            progress(f"secret {name}: created from demo/.secrets/{key}")
        names.append(name)
    return names


def swarm_up(*, init_swarm: bool = False, timeout: float = 180, stack: str = SWARM_STACK,
             progress: Callable[[str], None] = print) -> list[dict]:
    """The demo as a Swarm stack on the engine DOCKER_HOST names, which must be a swarm manager (or becomes a
    single-node one with ``init_swarm``): secrets files, images, the swarm secrets (by name, from the files),
    ``docker stack deploy --prune --resolve-image never -c demo/stack.yaml STACK``, then a wait until every
    service has converged, with a progress line per change. Raises InputError (nothing changed) when the
    engine is no manager, RunbookError when the stack does not converge within ``timeout``."""
    import time as _time

    from runbook_lib.engine.stack import deploy_command, stack_deploy, wait_converged
    from runbook_lib.errors import RunbookError

    refuse_taken_ports(stack)
    engine = _swarm_manager(init_swarm, progress)
    ensure_secrets()
    build_images(progress=progress)
    ensure_swarm_secrets(engine, progress)
    progress("$ " + " ".join(deploy_command([STACK_FILE], stack, resolve_image="never")))
    started = _time.time()
    stack_deploy([STACK_FILE], stack, prune=True, resolve_image="never")
    services = sorted((yaml.safe_load(STACK_FILE.read_text(encoding="utf-8")) or {}).get("services") or {})
    ok, states, waited = wait_converged(engine, stack, services, timeout, since=started, progress=progress)
    if not ok:
        bad = [s for s in states.values() if not s.converged]
        raise RunbookError(f"stack {stack} deployed, but not converged after {waited}s: "
                           + "; ".join(f"{s.service}: {s.describe()}" for s in bad)
                           + f" (`docker stack ps --no-trunc {stack}`)")
    return swarm_status(stack)


def refuse_taken_ports(stack: str = SWARM_STACK) -> None:
    """Before anything changes: raise InputError in one line naming who holds a host port of demo/stack.yaml
    (the compose demo, another project, a process), unless it is the stack's own task (a redeploy)."""
    from runbook_lib.deploy.port_holders import conflicts_line, engine_shares_this_network, find_conflicts, model_bindings
    from runbook_lib.engine import Engine

    bindings = model_bindings((yaml.safe_load(STACK_FILE.read_text(encoding="utf-8")) or {}).get("services") or {})
    with _engine_call("listing the containers' published ports"):
        engine = Engine()
        published = engine.published_ports() + engine.ingress_ports()
    conflicts = find_conflicts(published, bindings, own=lambda p: p["stack"] == stack,
                               local=engine_shares_this_network())
    if conflicts:
        raise InputError(f"the host ports of {STACK_FILE.name} are taken: {conflicts_line(conflicts)}. Nothing was "
                         "changed: stop what holds them (the compose demo: `runbook demo down`) and run this again.")


def swarm_status(stack: str = SWARM_STACK) -> list[dict]:
    """One row per service of the demo stack: ``service``, ``state`` ("1/1 running"), ``health`` (converged or
    what it waits for) and ``ports`` ("*:8080->8080/tcp (host)")."""
    from runbook_lib.engine import Engine
    from runbook_lib.engine.stack import service_states

    engine = Engine()
    found = {(s.get("Spec") or {}).get("Name", ""): s for s in engine.stack_services(stack)}
    if not found:
        return []
    short = sorted(n[len(stack) + 1:] for n in found)
    rows = []
    for svc, st in service_states(engine, stack, short).items():
        spec = found[st.name].get("Spec") or {}
        ports = [f"*:{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol', 'tcp')} ({p.get('PublishMode', '')})"
                 for p in (spec.get("EndpointSpec") or {}).get("Ports") or []]
        rows.append({"service": svc, "state": f"{st.running}/{st.desired} running",
                     "health": "converged" if st.converged else "waiting", "ports": ports})
    return rows


def swarm_down(volumes: bool = False, stack: str = SWARM_STACK, timeout: float = 60,
               progress: Callable[[str], None] = print) -> None:
    """``docker stack rm STACK``, then (once its containers are gone from this engine) the swarm secrets that
    `up --swarm` created (label org.runbook.demo) and, with ``volumes``, the stack's volumes on this engine.
    The swarm itself is left as it is."""
    import time as _time

    from runbook_lib.engine.stack import stack_rm

    engine = _swarm_manager(False, progress)
    progress(f"$ docker stack rm {stack}")
    stack_rm(stack)
    deadline = _time.monotonic() + timeout
    while engine.stack_containers(stack) and _time.monotonic() < deadline:
        _time.sleep(0.5)
    left = engine.stack_containers(stack)
    if left:
        progress(f"{len(left)} container(s) of {stack} still stopping; secrets and volumes kept (run this again)")
        return
    for name in swarm_secret_names().values():
        for obj in engine.swarm_objects_named("secret", name):
            if obj["labels"].get(SWARM_SECRET_LABEL):
                with _engine_call(f"removing swarm secret {name}"):
                    engine.api.remove_secret(obj["id"])
                progress(f"secret {name}: removed")
    if volumes:
        for v in engine.stack_volumes(stack):
            with _engine_call(f"removing volume {v['name']}"):
                engine.api.remove_volume(v["name"])
            progress(f"volume {v['name']}: removed")
