"""docs/phases.md is generated from the check registry; it must say what the registry says."""
from __future__ import annotations

import subprocess
import sys

import pytest

from runbook_lib.results import phases_doc, registry

from conftest import ROOT


def test_committed_phases_page_is_up_to_date():
    """Regenerate and compare: when this fails, run `python -m runbook_lib.results.phases_doc` and commit the file."""
    committed = (ROOT / "docs" / "phases.md").read_text(encoding="utf-8")
    assert committed == phases_doc.render(), "docs/phases.md is out of date: python -m runbook_lib.results.phases_doc"


def test_every_declared_check_is_on_the_page_with_its_phase_category_and_severity():
    text = phases_doc.render()
    sections = {}
    for block in text.split("\n## ")[1:]:
        heading, _, body = block.partition("\n")
        sections[heading] = body
    for spec in registry.specs().values():
        check_id = f"{spec.id}.*" if spec.family else spec.id
        section = next(body for heading, body in sections.items()
                       if heading.startswith(f"{spec.phase}:") or heading == phases_doc.PHASES[spec.phase][0])
        row = next(line for line in section.splitlines() if line.startswith(f"| `{check_id}` |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[2] == spec.category and cells[3] == spec.severity and cells[4] == (spec.cis or "-"), cells
        assert (cells[5] == "yes") == spec.changes_deployment, cells


def test_every_phase_notebook_has_a_section():
    text = phases_doc.render()
    for notebook in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        assert f"## {notebook.stem}: " in text and f"`notebooks/{notebook.name}`" in text


def test_check_mode_reports_an_out_of_date_file(tmp_path):
    stale = tmp_path / "phases.md"
    stale.write_text("# old\n")
    cmd = [sys.executable, "-m", "runbook_lib.results.phases_doc", "--check", "--out", str(stale)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "is out of date: run `python -m runbook_lib.results.phases_doc`" in out.stderr
    subprocess.run(cmd[:3] + ["--out", str(stale)], check=True, cwd=ROOT, capture_output=True)
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_installed_without_a_checkout_it_asks_for_out(monkeypatch, capsys):
    assert phases_doc.DOC == ROOT / "docs" / "phases.md", "from the checkout: its docs/"
    monkeypatch.setattr(phases_doc, "DOC", None)
    with pytest.raises(SystemExit) as exc:
        phases_doc.main(["--check"])
    assert exc.value.code == 2 and "belongs to the source checkout" in capsys.readouterr().err
