"""The README and every page of docs/ link only to files that exist, and to headings that exist on the page
linked (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens). Pages move; links must follow."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    out = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not re.match(r"#{1,6} ", line):
            continue
        heading = line.lstrip("#").strip().lower()
        out.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return out


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_a_heading(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_no_page_cites_an_issue_number():
    cited = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in PAGES
             for m in re.finditer(r"\b[Ii]ssue \d+", p.read_text(encoding="utf-8"))]
    assert not cited, cited


def test_every_source_file_a_page_cites_exists():
    """Modules move: a page citing `runbook_lib/lint/judges.py` (or `lint/judges.py`) or `tests/x/test_y.py`
    must follow."""
    cited = re.compile(r"(?<![\w/.])((?:runbook_lib/)?(?:cli|errors|package_data|(?:lint|run|engine|results|phases|drills|"
                       r"params|model)/[\w/]+)\.py|tests/[\w/]+\.py|benchmarks/\w+\.py|notebooks/\w+\.ipynb)")
    gone = []
    for page in PAGES:
        for path in set(cited.findall(page.read_text(encoding="utf-8"))):
            full = path if path.startswith(("runbook_lib/", "tests/", "benchmarks/", "notebooks/")) else f"runbook_lib/{path}"
            if not (ROOT / full).exists():
                gone.append(f"{page.relative_to(ROOT)}: {path}")
    assert not gone, gone
