"""docs/parameters.md is generated from the parameter models; it must say what the models say."""
from __future__ import annotations

import subprocess
import sys

from runbook_lib.params import core as P
from runbook_lib.params import doc as params_doc

from conftest import ROOT


def _all_models():
    seen, queue = [], [P.Params, P.WaiverFile]
    while queue:
        m = queue.pop(0)
        if m not in seen:
            seen.append(m)
            queue += [i for f in m.model_fields.values() for i in params_doc._models(f.annotation)]
    return seen


def test_committed_reference_is_up_to_date():
    """Regenerate and compare: when this fails, run `python -m runbook_lib.params.doc` and commit the file."""
    committed = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    assert committed == params_doc.render(), "docs/parameters.md is out of date: python -m runbook_lib.params.doc"


def test_every_section_and_key_is_documented():
    text = params_doc.render()
    for model in _all_models():
        assert f"## {model.__name__}\n" in text
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            assert field.description, f"{model.__name__}.{name} has no Field(description=...)"
            assert f"| `{field.alias or name}` |" in text
    # enum values, defaults, constraints and the YAML path of nested sections
    assert "one of `stop`, `pause`, `disconnect`" in text and "one of `available`, `may_fail`, `must_fail`" in text
    assert "At `smoke.drills[].endpoints[]` of a parameters file." in text
    assert "| `json` |" in text                       # the alias, as written in YAML
    assert "segfault\\|segmentation fault" in text    # table cells escape |


def test_check_mode_reports_an_out_of_date_file(tmp_path):
    stale = tmp_path / "parameters.md"
    stale.write_text("# old\n")
    out = subprocess.run([sys.executable, "-m", "runbook_lib.params.doc", "--check", "--out", str(stale)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "is out of date: run `python -m runbook_lib.params.doc`" in out.stderr
    subprocess.run([sys.executable, "-m", "runbook_lib.params.doc", "--out", str(stale)], check=True, cwd=ROOT,
                   capture_output=True)
    out = subprocess.run([sys.executable, "-m", "runbook_lib.params.doc", "--check", "--out", str(stale)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_installed_without_a_checkout_it_asks_for_out_instead_of_writing_into_site_packages(monkeypatch, capsys):
    import pytest

    assert params_doc.DOC == ROOT / "docs" / "parameters.md", "from the checkout: its docs/"
    monkeypatch.setattr(params_doc, "DOC", None)  # what _checkout_doc() gives in an installed wheel
    with pytest.raises(SystemExit) as exc:
        params_doc.main(["--check"])
    assert exc.value.code == 2 and "belongs to the source checkout" in capsys.readouterr().err
