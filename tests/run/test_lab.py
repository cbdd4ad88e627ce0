"""`runbook lab` and what a person sees in it: a workspace of copies (the runbook's notebooks never served),
the explorer's session table, the headline status rule, human durations, filtered logs, and the phase
notebooks' summaries; then all of it in one real JupyterLab driven by headless Chromium at 1,000 and 1,600 px."""
from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from runbook_lib.package_data import NOTEBOOKS
from runbook_lib.results import verdict as verdicts
from runbook_lib.results.display import CSS, kv_table, records_table, summary_table
from runbook_lib.results.records import CheckRecord, headline, mix
from runbook_lib.run import explorer, lab
from runbook_lib.run.explorer_session import SessionTable
from runbook_lib.run.explorer_views import filter_logs, line_level, phase_title

from conftest import ROOT, stack_tree

SERVICE = "chat-service"


def _rec(cid: str, target: str, status: str, phase: str = "03_production_mode") -> CheckRecord:
    return CheckRecord(id=cid, phase=phase, title="t", target=target, status=status, severity="high",
                       expected="e", actual=f"{status.lower()} seen", evidence={"seen": 1})


def _git_status(paths: list[Path]) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", *map(str, paths)], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


# -- pure logic ------------------------------------------------------------------------------------------
def test_the_workspace_is_copies_made_when_missing_and_a_persons_copy_is_left_alone(tmp_path):
    ws = tmp_path / "outputs" / "lab"
    made = lab.prepare_workspace(ws)
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert sorted(p.name for p in made) == names and (ws / "README.md").is_file()
    (ws / "explore.ipynb").write_text("{}")  # the person's own changes
    (ws / "compare.ipynb").unlink()
    assert [p.name for p in lab.prepare_workspace(ws)] == ["compare.ipynb"]
    assert (ws / "explore.ipynb").read_text() == "{}"
    with pytest.raises(Exception, match="runbook's own notebooks"):
        lab.prepare_workspace(NOTEBOOKS)
    cmd = lab.lab_command(ws, ["--port", "1"])
    assert f"--ServerApp.root_dir={ws.resolve()}" in cmd and cmd[1] == "lab" and cmd[-2:] == ["--port", "1"]
    assert str(NOTEBOOKS) not in " ".join(cmd)


def test_a_headline_is_the_worst_judged_status_in_the_notebooks_the_summary_and_the_verdict():
    recs = [_rec("prod.observability", t, s) for t, s in (("a", "PASS"), ("b", "SKIP"), ("c", "PASS"), ("d", "SKIP"))]
    assert headline(r.status for r in recs) == "PASS" and mix(r.status for r in recs) == "2 PASS · 2 SKIP"
    assert headline(["SKIP", "INFO"]) == "SKIP" and headline(["INFO"]) == "INFO"
    assert headline(["PASS", "WARN", "SKIP"]) == "WARN" and headline(["FAIL", "ERROR", "PASS"]) == "ERROR"
    table = records_table(recs)
    assert 'st-PASS">PASS</span><br><small>2 PASS · 2 SKIP</small>' in table
    assert 'st-PASS">PASS</span> <small>2 PASS · 2 SKIP</small>' in summary_table(recs)
    from runbook_lib.params import load_params
    from runbook_lib.results.policy import evaluate

    params = load_params(ROOT / "parameters" / "demo.yaml")
    v = verdicts.build(recs, evaluate(recs, params.policy, date.today()), params, started="", on=date.today(),
                       inputs={})
    [cat] = [c for c in v["categories"] if "prod.observability" in c["checks"]]
    assert cat["status"] == "PASS" and cat["counts"] == {"PASS": 2, "SKIP": 2}


def test_nanosecond_durations_are_shown_human_and_ids_break_at_dots_and_badges_never_wrap():
    shown = kv_table({"healthcheck": {"test": ["CMD", "true"], "interval": 3_000_000_000, "timeout": 500_000_000,
                                      "retries": 3}})
    assert "<th>interval</th><td>3s</td>" in shown and "<th>timeout</th><td>500ms</td>" in shown
    assert "3000000000" not in shown and "<th>retries</th><td>3</td>" in shown
    flat = kv_table({"healthcheck": {"interval": 90_000_000_000, "start_period": 1_500_000_000, "retries": 3}})
    assert "interval: 1m 30s; start_period: 1.5s; retries: 3" in flat
    engine = records_table([CheckRecord(id="prod.healthcheck", phase="03_production_mode", title="t", target=t,
                                        status="PASS", severity="high", expected="e", actual="healthy",
                                        evidence={"engine": {"Test": ["CMD", "true"], "Interval": 3_000_000_000,
                                                             "StartPeriod": 10_000_000_000}}) for t in "abcd"])
    assert "3000000000" not in engine and "<th>Interval</th><td>3s</td>" in engine and "<td>10s</td>" in engine
    assert 'prod.<wbr>restart_<wbr>' not in records_table([_rec("prod.restart_policy", "x", "FAIL")])
    assert '<code class="rb-id">prod.<wbr>restart_policy</code>' in records_table([_rec("prod.restart_policy", "x", "FAIL")])
    assert "white-space:nowrap" in CSS.split(".rb-badge{", 1)[1].split("}", 1)[0]
    assert ".rb-id{overflow-wrap:normal" in CSS and "text-align:left" in CSS


def test_logs_are_filtered_by_level_and_text_without_the_probes_newest_first():
    lines = ['2026-12-07T09:13:19.566123456Z {"path":"/health","status":200}', '{"path":"/api/chat","status":503,"event":"request"}',
             "2026-01-01 WARN slow redis", '{"path":"/metrics","status":200}', "INFO started", "GET /healthz 200"]
    kept, read, probes = filter_logs(lines)
    assert (read, probes) == (6, 3) and kept == ["INFO started", "2026-01-01 WARN slow redis",
                                                 '{"path":"/api/chat","status":503,"event":"request"}']
    assert filter_logs(lines, levels=("error",))[0] == ['{"path":"/api/chat","status":503,"event":"request"}']
    assert filter_logs(lines, text="REDIS")[0] == ["2026-01-01 WARN slow redis"]
    assert len(filter_logs(lines, hide_probes=False)[0]) == 6
    assert line_level('{"level":"warning"}') == "warning" and line_level("plain") == ""


def test_the_session_keeps_every_rerun_and_each_services_worst_status_seen():
    s = SessionTable()
    s.add("03_production_mode", "Phase 3", SERVICE, [_rec("prod.drift", SERVICE, "FAIL"), _rec("prod.env", "redis", "PASS")],
          lambda t: t)
    s.add("00_preflight", "Phase 0", SERVICE, [_rec("preflight.x", "proj-chat-service-1", "PASS", "00_preflight")],
          lambda t: {"proj-chat-service-1": SERVICE}.get(t, ""))
    s.add("03_production_mode", "Phase 3", SERVICE, [_rec("prod.drift", SERVICE, "PASS")], lambda t: t)
    assert len(s.reruns) == 3 and len(s.rows) == 4
    assert s.worst_by_service()[SERVICE] == ("FAIL", "1 FAIL · 2 PASS") and s.worst_by_service()["redis"][0] == "PASS"
    assert [r.record.status for r in s.filtered(("FAIL",))] == ["FAIL"]
    assert [r.run for r in s.filtered(service=SERVICE)] == [1, 3, 2]  # the FAIL first, then newest first
    html = s.html(("FAIL",), SERVICE)
    assert "1 of 4 records from 3 re-runs" in html and "prod.<wbr>drift" in html


def test_a_phase_that_cannot_be_rerun_alone_says_why_in_an_operators_words():
    [signoff] = [p for p in explorer.discover_phases() if p.phase == "05_signoff"]
    assert "judges a whole run" in signoff.problem
    assert not re.search(r"CHECKS|MANIFEST|module", signoff.problem)
    assert phase_title("03_production_mode") == "Phase 3 — Production mode"


# -- in JupyterLab, in headless Chromium ------------------------------------------------------------------
def _badges_on_one_line(page) -> list[str]:
    """The text of every status badge drawn on more than one line (none should be)."""
    return page.evaluate("""() => [...document.querySelectorAll('.rb-badge')]
        .filter(b => b.getClientRects().length > 1 || b.getBoundingClientRect().height > 2.2 * parseFloat(getComputedStyle(b).fontSize))
        .map(b => b.textContent)""")


def _explorer_checks(page, box, width: int, shots: Path) -> dict[str, str]:
    """At this width: badges on one line, the overview's worst-seen FAIL for the service, the session table
    with its FAIL; screenshots of the overview and of the session table. Returns the paths."""
    page.set_viewport_size({"width": width, "height": 1300})
    page.wait_for_timeout(500)
    assert not _badges_on_one_line(page), f"badges wrapped at {width} px"
    row = box.locator("tr", has=page.locator(f"td:text-is('{SERVICE}')")).first
    assert "FAIL" in row.inner_text(), row.inner_text()
    box.locator("h4", has_text="All services").scroll_into_view_if_needed()
    overview = shots / f"lab-explorer-overview-{width}.png"
    page.screenshot(path=str(overview))
    session = box.locator("h4", has_text="This session")
    page.evaluate("(el) => el.scrollIntoView({block: 'start'})", session.element_handle())
    page.wait_for_timeout(300)
    shot = shots / f"lab-explorer-session-{width}.png"
    page.screenshot(path=str(shot))
    return {"overview": str(overview), "session": str(shot)}


def _explorer_rendered(page, base: str, token: str):
    """Run the explorer's cells until its widget renders. On a loaded machine a widget created while the
    kernel's connection churns shows as its text, ``VBox(children=...)``, stays "Loading widget...", or says
    "Error displaying widget: model not found" (the widget models' messages never reached the page): run once
    more, as a person would."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from test_explorer import run_all_cells, wait_for_kernel

    box = page.locator(".rb-explorer")
    for attempt in range(2):
        wait_for_kernel(page, base, token, "explore.ipynb")
        run_all_cells(page)
        try:
            box.locator("select").first.wait_for(timeout=120_000)
            return box
        except PlaywrightTimeout:
            body = page.inner_text("body")
            seen = [s for s in ("VBox(children", "Loading widget", "Error displaying widget") if s in body]
            if attempt or not seen:
                raise
            print(f"the explorer's widget did not render ({seen[0]}...): running its cells again")
            with contextlib.suppress(PlaywrightTimeout):  # "Server Connection Error": closed, it reconnects
                page.locator(".jp-Dialog button").first.click(timeout=2_000)
    return box


def _rerun(page, box, title: str) -> None:
    box.locator("button", has_text=f"Re-run {title}").click()
    box.locator(".rb-run", has_text=f"{title} for {SERVICE}").wait_for(timeout=180_000)


def _contents_api_saves_into_the_workspace_only(base: str, token: str, ws: Path) -> None:
    auth = {"Authorization": f"token {token}"}
    listing = httpx.get(f"{base}/api/contents", headers=auth, trust_env=False).json()
    served = {x["name"] for x in listing["content"]}
    assert "explore.ipynb" in served and "03_production_mode.ipynb" in served and "notebooks" not in served
    nb = httpx.get(f"{base}/api/contents/explore.ipynb", headers=auth, trust_env=False).json()["content"]
    nb["metadata"]["explored_by"] = "a person"
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "my notes", "id": "notes"})
    put = httpx.put(f"{base}/api/contents/explore.ipynb", headers=auth, trust_env=False,
                    json={"type": "notebook", "format": "json", "content": nb})
    assert put.status_code == 200, put.text
    assert "my notes" in (ws / "explore.ipynb").read_text()
    # Nothing above the workspace is reachable: ../../notebooks is the project's (empty) notebooks/ here.
    escape = httpx.put(f"{base}/api/contents/%2E%2E/%2E%2E/notebooks/explore.ipynb", headers=auth, trust_env=False,
                       json={"type": "notebook", "format": "json", "content": nb})
    assert 400 <= escape.status_code < 500, escape.status_code
    assert not (ws.parent.parent / "notebooks" / "explore.ipynb").exists()


@pytest.mark.docker
@pytest.mark.slow
def test_runbook_lab_serves_copies_and_the_explorer_and_phase_3_read_well_at_two_widths(healthy_demo, tmp_path):
    from browser import open_page
    from test_explorer import _processes_mentioning, artifacts_dir, assert_no_secret_in, jupyterlab

    product = sorted(NOTEBOOKS.glob("*.ipynb"))
    before = _git_status(product)
    root = stack_tree(healthy_demo, tmp_path / "project")
    ws = root / "outputs" / "lab"
    work = tmp_path / "work"
    work.mkdir()
    shots = artifacts_dir()
    container = f"{healthy_demo.project}-{SERVICE}-1"
    restart = subprocess.run(["docker", "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", container],
                             capture_output=True, text=True, check=True).stdout.strip()
    launcher = [str(Path(sys.executable).parent / "runbook"), "lab", "--dir", str(ws), "--"]
    paths, texts, t0 = {}, [], time.monotonic()
    try:
        with jupyterlab(root, work, launcher) as (base, token):
            _contents_api_saves_into_the_workspace_only(base, token, ws)
            assert _git_status(product) == before, "saving in JupyterLab changed the runbook's notebooks"
            url = f"{base}/lab/tree/explore.ipynb?reset&token={token}"
            with open_page(url, offline=False, allow_hosts=("127.0.0.1",), width=1600, height=1300) as (page, log):
                try:
                    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
                    box = _explorer_rendered(page, base, token)
                    box.locator("select").first.select_option(label=SERVICE)
                    box.locator("h4", has_text="Environment").wait_for(timeout=60_000)
                    logs = box.locator(".rb-count", has_text="newest first").first.inner_text()
                    assert "health/metrics probe" in logs and "hidden" in logs, logs
                    subprocess.run(["docker", "update", "--restart=no", container], check=True, capture_output=True)
                    for title in ("Phase 3 — Production mode", "Phase 0 — Preflight", "Phase 2 — Secrets & security"):
                        _rerun(page, box, title)
                    session = box.locator(".rb-count", has_text="re-runs").first
                    assert "from 3 re-runs" in session.inner_text(), session.inner_text()
                    fails = box.locator(".rb-session tr", has=page.locator("code.rb-id", has_text="prod.restart_policy"))
                    assert "FAIL" in fails.first.inner_text()
                    texts.append(page.inner_text("body"))
                    paths[1600] = _explorer_checks(page, box, 1600, shots)
                    paths[1000] = _explorer_checks(page, box, 1000, shots)
                    box.locator(".rb-session-controls select").first.select_option(label="FAIL")
                    box.locator(".rb-session .rb-count", has_text="of ").first.wait_for()
                    page.wait_for_timeout(500)
                    statuses = box.locator(".rb-session .rb-badge").all_inner_texts()
                    assert statuses and set(statuses) == {"FAIL"}, statuses
                    box.locator("button", has_text="Probe endpoints").click()
                    box.locator("td", has_text=healthy_demo.url(SERVICE, "/health")).first.wait_for(timeout=60_000)
                    box.locator("button", has_text="Save as evidence").click()
                    saved = box.locator("div", has_text="Saved:").last
                    saved.wait_for(timeout=120_000)
                    run_dir = Path(re.search(r"Saved: (\S+)", saved.inner_text()).group(1))
                    texts += [page.inner_text("body"), page.content()]
                    assert not [u for u in log.requests
                                if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))]
                    assert not log.blocked, log.blocked
                except Exception:
                    page.screenshot(path=str(shots / "lab-explorer-failure.png"))
                    raise
            verify = subprocess.run([str(Path(sys.executable).parent / "runbook"), "verify", str(run_dir)],
                                    capture_output=True, text=True)
            assert verify.returncode == 0, verify.stdout + verify.stderr
            v = json.loads((run_dir / "verdict.json").read_text())
            assert v["verdict"] == "NO-GO" and any(b["id"] == "prod.restart_policy" for b in v["blockers"])
            assert (run_dir / "manifest.json.sig").is_file() and "prod.restart_policy" in (run_dir / "report.html").read_text()
            assert run_dir.parent == root / "outputs"
            paths["phase 3"] = _phase_3_reads_well(base, token, shots, texts)
        assert _git_status(product) == before, "the runbook's notebooks changed"
        assert not _processes_mentioning(str(work / "runtime")), "a kernel or server was left running"
    finally:
        subprocess.run(["docker", "update", f"--restart={restart}", container], check=True, capture_output=True)
    assert "secrets." in "".join(texts) and container in texts[0]
    for i, text in enumerate(texts):
        assert_no_secret_in(text, f"the page (snapshot {i})")
    print(f"\nscreenshots: {json.dumps(paths, indent=1)}\nlab test body: {time.monotonic() - t0:.0f} s")


def _phase_3_reads_well(base: str, token: str, shots: Path, texts: list[str]) -> dict[str, str]:
    """Phase 3 by hand in the workspace: no stderr box, the summary table last, durations human."""
    from browser import open_page
    from test_explorer import run_all_cells, wait_for_kernel

    url = f"{base}/lab/tree/03_production_mode.ipynb?reset&token={token}"
    out = {}
    with open_page(url, offline=False, allow_hosts=("127.0.0.1",), width=1600, height=1300) as (page, _log):
        try:
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
            wait_for_kernel(page, base, token, "03_production_mode.ipynb")
            run_all_cells(page)
            summary = page.locator(".jp-OutputArea-output th", has_text="Not PASS")
            summary.wait_for(timeout=300_000)
            body = page.inner_text("body")
            texts.append(body)
            assert page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
            assert "3000000000" not in page.content()
            table = page.locator("table.rb-table", has=page.locator("th", has_text="Not PASS")).last
            row = table.locator("tr", has=page.locator("code.rb-id", has_text="prod.restart_policy")).first
            assert "FAIL" in row.text_content() and SERVICE in row.text_content(), row.text_content()
            observability = table.locator("tr", has=page.locator("code.rb-id", has_text="prod.observability")).first
            texts.append(f"prod.observability in the summary: {observability.text_content()}")
            aligned = page.evaluate("() => [...document.querySelectorAll('table.rb-table td, table.rb-kv td')]"
                                    ".map(td => getComputedStyle(td).textAlign)")
            assert aligned and set(aligned) == {"left"}, set(aligned)
            for width in (1600, 1000):
                page.set_viewport_size({"width": width, "height": 1300})
                page.wait_for_timeout(400)
                assert not _badges_on_one_line(page), f"badges wrapped at {width} px"
                summary.scroll_into_view_if_needed()
                out[width] = str(shots / f"lab-phase3-summary-{width}.png")
                page.screenshot(path=out[width])
        except Exception:
            page.screenshot(path=str(shots / "lab-phase3-failure.png"))
            raise
    return out
