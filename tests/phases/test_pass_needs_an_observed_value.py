"""A PASS is a judgement on an observed value. Facts are INFO; evidence that
could not be gathered is ERROR; a user is judged by its uid. Real engine and the real demo stack;
the check functions are called directly with a Context, as a phase notebook does."""
from __future__ import annotations

import subprocess

import pytest

from conftest import PARAMS, ROOT

from runbook_lib.run.context import Context
from runbook_lib.params import load_params, with_overrides

DEMO = ROOT / "demo" / "compose.yaml"


def demo_ctx(params_file, *overrides) -> Context:
    """A Context on the test session's own demo stack (``demo_params``), with compose overrides."""
    params = load_params(params_file)
    if overrides:
        params = with_overrides(params, compose_files=[DEMO, *overrides])
    return Context(params=params, progress=lambda s: None)


@pytest.mark.docker
def test_current_state_and_inventories_are_info_never_pass(healthy_demo, demo_params):
    from runbook_lib.phases import preflight, redeploy
    from runbook_lib.results.records import counts

    ctx = demo_ctx(demo_params)
    recs = preflight.current_state(ctx)
    # inventory_before and inventory_after only read: called on the running demo, nothing is redeployed
    recs += redeploy.inventory_before(ctx) + redeploy.inventory_after(ctx)
    facts = {r.id: r for r in recs if r.id != "preflight.orphans"}
    assert set(facts) == {"preflight.current_state", "redeploy.inventory_before", "redeploy.inventory_after"}
    for r in facts.values():
        assert r.status == "INFO", (r.id, r.status, r.actual)
        assert r.evidence and "containers" in r.evidence  # the fact itself is still recorded
    assert counts(facts.values())["PASS"] == 0
    assert "11 of 11 project containers running" in facts["preflight.current_state"].actual
    assert facts["redeploy.inventory_after"].actual.startswith("11 containers (0 recreated)")


@pytest.fixture
def scratch(engine):
    """Containers a test starts by hand (busybox `sleep` in the demo's app image); removed afterwards."""
    made = []

    def run(name: str, labels: dict | None = None, **kw):
        made.append(name)
        return engine.client.containers.run("runbook-demo/app:local", ["300"], entrypoint=["sleep"], name=name,
                                            detach=True, labels=labels or {}, **kw)

    yield run
    for name in made:
        try:
            engine.client.containers.get(name).remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


@pytest.mark.docker
def test_a_stats_sample_without_usage_figures_is_an_error_never_a_pass(engine, scratch):
    """The container stops between the listing and the stats read (a real race): the engine answers
    with an empty sample. Before: PASS "memory n/a, CPU n/a". Now: ERROR, and a real sample still PASSes."""
    from runbook_lib.phases.production import PHASE, judge_sample
    from runbook_lib.results.records import Check

    prod = load_params(PARAMS / "demo.yaml").production
    c = Check("prod.resources", "Inside its resource limits", phase=PHASE, severity="high")
    box = scratch("rbtest-judgements-stats", mem_limit="64m", nano_cpus=500_000_000)
    listed = engine.container(box.name)
    assert listed.running and listed.memory_limit == 64 * 2**20
    box.kill()
    box.wait(timeout=30)
    empty = engine.stats(box.name)
    rec, row = judge_sample(c, "scratch", listed, empty, prod, {}, "")
    assert rec.status == "ERROR", (rec.status, rec.actual)
    assert "no memory and no CPU usage figure" in rec.actual and "n/a" not in rec.actual
    assert row["memory_fraction"] is None  # the chart still shows the container, as n/a

    box.start()
    rec, _ = judge_sample(c, "scratch", engine.container(box.name), engine.stats(box.name), prod, {}, "")
    assert rec.status == "PASS" and rec.actual.startswith("memory ") and "of 64 MiB" in rec.actual, rec.actual


def test_statically_a_user_is_judged_by_uid_and_a_name_other_than_root_is_unknown():
    from runbook_lib.lint import ServiceFacts, judge_user

    def static(user):
        return judge_user(ServiceFacts(service="svc", source="compose", user=user))

    assert static("0").status == static("0:0").status == static("root").status == static("").status == "FAIL"
    assert static("10001:10001").status == "PASS" and "uid 10001" in static("10001:10001").actual
    for name in ("toor", "admin", "app:app"):
        v = static(name)
        assert v.status == "WARN" and "is a name" in v.actual, (name, v.status)
    assert static(None).status == "WARN"


@pytest.fixture
def toor_image(engine):
    """The demo app image plus a uid-0 user named ``toor`` in /etc/passwd, built locally (no registry). Its
    process stays up as uid 0 (a shell that waits): the app itself, as root with ``cap_drop: ALL``, cannot read
    its 0400 secrets and would crash-loop, and a reading between two crashes sees no process at all."""
    dockerfile = ("FROM runbook-demo/app:local\nUSER 0\nRUN echo toor:x:0:0:toor:/root:/bin/sh >> /etc/passwd\n"
                  "USER 10001:10001\n"
                  'ENTRYPOINT ["sh", "-c", "trap \'exit 0\' TERM; while :; do sleep 1; done"]\nCMD []\n')
    subprocess.run(["docker", "build", "-q", "-t", "rbtest/toor:local", "-"], input=dockerfile.encode(),
                   check=True, capture_output=True)
    yield "rbtest/toor:local"
    engine.client.images.remove("rbtest/toor:local", force=True)


@pytest.mark.docker
def test_users_are_judged_by_uid_at_run_time_and_an_unresolved_user_never_passes(healthy_demo, demo_params, toor_image,
                                                                                 tmp_path):
    """chat-service runs as ``toor`` (uid 0 under another name): hardening.non_root FAILs. video-service
    names a user its /etc/passwd does not have (``ghost``; the engine creates the container but cannot
    start it): secrets.mounted, secrets.file_env and hardening.non_root are ERROR naming the user, not
    PASS "readable" / "runs as ghost"."""
    from runbook_lib.phases import security

    override = tmp_path / "users.yaml"
    override.write_text(f"services:\n  chat-service:\n    image: {toor_image}\n    user: toor\n"
                        "  video-service:\n    user: ghost\n")
    try:
        healthy_demo.compose([override]).run("up", "-d", "--no-deps", "chat-service", "video-service", check=False)
        ctx = demo_ctx(demo_params, override)
        recs = security.secrets_mounted(ctx) + security.secret_file_env(ctx) + security.hardening(ctx)
    finally:
        healthy_demo.up(progress=lambda s: None)
    by = {(r.id, r.target): r for r in recs}

    toor = by[("hardening.non_root", "chat-service")]
    assert toor.status == "FAIL" and "uid 0" in toor.actual and "toor" in toor.actual, (toor.actual, toor.evidence)
    assert toor.evidence["uid"] == 0
    assert "sh" in {p["name"] for p in toor.evidence["processes"]}, toor.evidence  # the image's own process, up
    for rule in ("secrets.mounted", "secrets.file_env", "hardening.non_root"):
        r = by[(rule, "video-service")]
        assert r.status == "ERROR", (rule, r.status, r.actual)
        assert "user 'ghost' could not be resolved in the container's /etc/passwd" in r.actual, r.actual
    assert "readable" not in by[("secrets.mounted", "video-service")].actual
    # a uid the container really runs as, and its secrets, still PASS
    assert by[("hardening.non_root", "auth-service")].status == "PASS"
    assert by[("hardening.non_root", "auth-service")].evidence["uid"] == 10001
    assert by[("secrets.mounted", "auth-service")].status == "PASS"
    # uid 0 with cap_drop ALL has no DAC_OVERRIDE: it cannot read the 0400 uid-10001 files, and that is judged
    mounted = by[("secrets.mounted", "chat-service")]
    assert mounted.status == "FAIL" and "not readable by the service's user" in mounted.actual, mounted.actual


def test_secret_modes_judged_on_nothing_observed_are_a_skip_never_a_pass():
    """secrets.file_mode: a service whose secrets could none of them be looked at (no state, or a file not
    found) is SKIP; one with a file observed at 0444 under `fail` is FAIL; at 0400 it is PASS."""
    from runbook_lib.model.facts import FileState, ServiceFacts
    from runbook_lib.lint.judges import judge_secret_modes
    from runbook_lib.params.sections import Security

    facts = ServiceFacts(service="cache", source="engine", secret_targets={"/run/secrets/pw": "pw"})
    strict = Security(readable_by_others="fail")
    assert judge_secret_modes(facts, {}, strict).status == "SKIP"
    assert judge_secret_modes(facts, {"/run/secrets/pw": FileState("/run/secrets/pw", exists=False)}, strict).status == "SKIP"
    seen = lambda mode: {"/run/secrets/pw": FileState("/run/secrets/pw", exists=True, size=8, mode=mode)}  # noqa: E731
    assert judge_secret_modes(facts, seen(0o444), strict).status == "FAIL"
    assert judge_secret_modes(facts, seen(0o400), strict).status == "PASS"
