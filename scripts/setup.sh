#!/usr/bin/env bash
# One script behind the README's two commands. Idempotent, and quiet about what is already in place.
#
#   scripts/setup.sh env    virtual environment + package (`.`) + demo builder (`demo/`), a Docker engine,
#                           the demo images
#   scripts/setup.sh demo   env, then bring the demo stack up and run the whole runbook against it (more
#                           arguments go to `runbook run`: `make demo-rolling` gives --strategy rolling)
#   scripts/setup.sh test   env with the `test` extra (`.[test]`: pytest, playwright), then the test suite
#   scripts/setup.sh realworld  env with the `test` extra, the real-world applications' images (mmdebstrap,
#                           apt-get: docs/realworld.md), then every phase on each application
#   scripts/setup.sh lab    env with the `lab` extra (`.[lab]`: JupyterLab), then `runbook lab`: JupyterLab on
#                           outputs/lab/, copies of the notebooks (never notebooks/ itself)
#
# On a machine where a Docker engine already answers (Docker Desktop, a CI runner) it uses that engine
# and changes nothing system-wide. Only when none answers, and only as root on Debian, does it
# `apt-get install docker.io` and start `dockerd` in the background (log: /var/log/runbook-dockerd.log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RUNBOOK_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
DOCKERD_LOG=/var/log/runbook-dockerd.log
say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $1" >&2; exit "${2:-1}"; }
is_root() { [ "$(id -u)" = 0 ]; }

APT_UPDATED=""
apt_install() {
  # apt_install PKG...: install the Debian packages that are missing (root only).
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  is_root && command -v apt-get >/dev/null || die "missing packages ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" 3
  say "installing ${missing[*]} (apt-get)"
  if [ -z "$APT_UPDATED" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  # ensure_venv [EXTRA]: the package with that extra ("" = the package alone, what `make demo` needs).
  local extra="${1:-}" py="${PYTHON:-python3}"
  command -v "$py" >/dev/null || die "no python3 on PATH (Python 3.10 or newer is needed)" 3
  if [ ! -x "$PY" ]; then
    say "creating the virtual environment in $VENV"
    "$py" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$py" -m venv "$VENV"; }
  fi
  # Reinstall only when a pyproject.toml changed since the last install of this extra (one stamp per extra).
  # Two distributions, both editable: runbook-lib (the toolkit, what a wheel holds) and runbook-demo
  # (demo/: the demo builder, which lives in the checkout only; see demo/pyproject.toml).
  local stamp="$VENV/.runbook-installed${extra:+-$extra}" want
  want="$(cat "$ROOT/pyproject.toml" "$ROOT/demo/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing runbook_lib${extra:+[$extra]}, the demo builder and their dependencies into $VENV"
    "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT${extra:+[$extra]}" -e "$ROOT/demo" \
      2> >(grep -v '^WARNING: Location' >&2)
    echo "$want" > "$stamp"
  fi
}

engine_answers() { "$PY" -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1; }

ensure_engine() {
  engine_answers && return 0
  if [ -n "${DOCKER_HOST:-}" ] || ! is_root || ! command -v apt-get >/dev/null; then
    echo "runbook: no Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}. Start Docker (Docker Desktop, \`sudo systemctl start docker\`, or run this script as root on Debian to start dockerd), then run this again." >&2
    exit 3
  fi
  command -v dockerd >/dev/null || apt_install docker.io
  if pgrep -x dockerd >/dev/null; then
    say "dockerd is running but not answering yet; waiting"
  else
    # A crashed dockerd leaves its pid file and socket behind; both would stop a new one.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
      say "removing stale /var/run/docker.pid"; rm -f /var/run/docker.pid
    fi
    [ -S /var/run/docker.sock ] && { say "removing stale /var/run/docker.sock"; rm -f /var/run/docker.sock; }
    [ -f /run/docker/containerd/containerd.pid ] && ! kill -0 "$(cat /run/docker/containerd/containerd.pid)" 2>/dev/null \
      && rm -f /run/docker/containerd/containerd.pid
    say "starting dockerd in the background (log: $DOCKERD_LOG)"
    setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do engine_answers && { say "Docker engine is up"; return 0; }; sleep 1; done
  tail -n 5 "$DOCKERD_LOG" >&2 2>/dev/null || true
  echo "runbook: dockerd did not answer within 60 s; see $DOCKERD_LOG" >&2
  exit 3
}

ensure_demo_material() {
  # What the offline demo images are built from (no registry here): a static busybox, Debian's
  # Python 3.11 runtime, Redis, Prometheus, Alertmanager, PostgreSQL and coturn. Only installed when
  # missing, and only as root.
  if ! command -v busybox >/dev/null || [ ! -x /usr/bin/python3.11 ] || ! command -v redis-server >/dev/null \
     || [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/prometheus-alertmanager ] \
     || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || [ ! -x /usr/bin/turnserver ]; then
    apt_install busybox-static python3.11 redis-server redis-tools prometheus prometheus-alertmanager postgresql coturn
  fi
}

cmd_env() { ensure_venv "${1:-}"; ensure_engine; ensure_demo_material; "$VENV/bin/runbook" demo build; }

case "${1:-}" in
  env) cmd_env ;;
  demo)
    cmd_env
    shift
    "$VENV/bin/runbook" demo up
    set +e
    # extra arguments go to `runbook run` (`make demo-rolling`: --strategy rolling)
    "$VENV/bin/runbook" run --params "$ROOT/parameters/demo.yaml" --output "$ROOT/outputs" "$@"
    rc=$?
    exit $rc ;;
  test)
    cmd_env test
    # The browser tests drive Debian's chromium through playwright (never a downloaded browser).
    command -v chromium >/dev/null || apt_install chromium
    # tests/realworld/test_realworld.py's smoke form needs WordPress's and MariaDB's images, built offline from Debian's
    # packages with mmdebstrap and apt-get (docs/realworld.md; cached: about a second when up to date). Built
    # here, so a cold build's minutes are not counted against a test's timeout.
    command -v mmdebstrap >/dev/null || apt_install mmdebstrap
    shift
    cd "$ROOT"
    "$PY" tests/realworld/images.py wordpress-mysql || say "the real-world images were not built: tests/realworld/test_realworld.py will say why"
    set +e
    # Three workers (docs/testing.md), whole files each (module fixtures stay per worker); each deploys its own demo
    # stack (tests/conftest.py). `make test` accepts pytest arguments after it: -n 0 runs in one process.
    # --durations: the slowest tests are printed, so a CI log shows where the suite's time went.
    # --no-loadscope-reorder: files are handed out in collection order, the longest first (conftest.LONGEST_FIRST),
    # not re-sorted by their number of tests (xdist's default, which puts the long files of few tests last).
    "$PY" -m pytest -n "${RUNBOOK_TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder --durations=25 "$@"
    rc=$?
    [ $rc -eq 5 ] && { echo "setup: pytest collected no test" >&2; exit 1; }
    exit $rc ;;
  realworld)
    cmd_env test
    command -v mmdebstrap >/dev/null || apt_install mmdebstrap
    shift
    cd "$ROOT"
    "$PY" tests/realworld/images.py
    RUNBOOK_REALWORLD=full "$PY" -m pytest tests/realworld/test_realworld.py -n 0 --durations=0 "$@" ;;
  lab)
    cmd_env lab
    cd "$ROOT"
    # A workspace of copies (outputs/lab/, git-ignored), never the runbook's own notebooks: JupyterLab saves
    # what it opens (docs/lab.md). The copies' params_file "" finds parameters/demo.yaml upward from there.
    shift
    exec "$VENV/bin/runbook" lab --dir "$ROOT/outputs/lab" "$@" ;;
  *) echo "usage: scripts/setup.sh env|demo|test|realworld|lab [pytest args]" >&2; exit 2 ;;
esac
