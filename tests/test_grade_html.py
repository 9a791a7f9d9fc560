"""`convcheck grade ... --report-html DIR` (properties.grading.pages): one page per submission
with its card, failures and pictures, and a class overview with the per-name pass counts and
the most common diagnoses. Made-up verdicts for the pages' contents; one real grading (through
tests/grader_runner.py, which checks that the grader never imports torch) whose pages headless
Chromium renders, screenshots checked."""
from __future__ import annotations

import base64
import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import pytest
from browser import dom, has_colour, screenshot
from grader_runner import grade

from properties.grading.config import parse_config
from properties.grading.pages import INDEX_NAME, page_path, write_pages
from properties.grading.run import RunSettings, command
from properties.grading.sheet import write_sheet
from properties.grading.verdict import Verdict

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "grading"
CONFIG = parse_config({"points": {"corr2d": 2, "pool2d": 1.5, "conv2d": 1}})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
FLIPPED = "flipped-kernel: computes convolution"
WRONG = {"property": "agrees with torch", "message": "result differs at [1, 0]",
         "diagnosis": FLIPPED, "example": "print(1)", "kind": "wrong",
         "figure": {"png": PNG, "alt": "corr2d: expected, got <and> got − expected"}}


def verdicts() -> list[Verdict]:
    failing = {"functions": {"corr2d": {"status": "fail", "failures": [WRONG]}},
               "conventions": {}}
    return [
        Verdict("zed.py", "/c/zed.py", "1", "ok", "", {"corr2d": "pass", "pool2d": "pass",
                                                      "conv2d": "missing"}),
        Verdict("sub dir/amy<1>.ipynb", "/c/amy.ipynb", "2", "ok", "",
                {"corr2d": "fail", "pool2d": "pass", "conv2d": "missing"}, report=failing),
        Verdict("cy.py", "/c/cy.py", "4", "ok", "",
                {"corr2d": "fail", "pool2d": "fail", "conv2d": "missing"}, report=failing),
        Verdict("bob.py", "/c/bob.py", "3", "error", "convcheck: cannot load target: "
                "SyntaxError", {"corr2d": "error", "pool2d": "error", "conv2d": "error"}),
    ]


def rows(page: str) -> list[list[str]]:
    """The table rows of a page, each cell's text without its tags."""
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", page)]


def test_the_overview_counts_passes_per_name_and_the_common_diagnoses(tmp_path):
    written = write_pages(tmp_path, verdicts(), CONFIG)
    index = (tmp_path / INDEX_NAME).read_text()
    assert written[0] == tmp_path / INDEX_NAME and len(written) == 5
    table = rows(index)
    assert ["corr2d", "1 / 4", "2 fail, 1 error"] in table
    assert ["pool2d", "2 / 4", "1 fail, 1 error"] in table
    assert ["corr2d", "2", FLIPPED] in table      # once per submission and name
    assert ["zed.py", "3.5 / 4.5", "ok"] in table
    assert "convcheck: 4 submission(s)" in index and "mean 1.25 of 4.5 points" in index
    # every link leads to the submission's page; names are escaped
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == 4
    for link in links:
        assert (tmp_path / unquote(unescape(link))).is_file(), link
    assert "amy&lt;1&gt;.ipynb" in index and "amy<1>" not in index


def test_a_submissions_page_has_its_card_failures_and_pictures(tmp_path):
    write_pages(tmp_path, verdicts(), CONFIG)
    amy = page_path(tmp_path, "sub dir/amy<1>.ipynb")
    assert amy == tmp_path / "sub dir" / "amy<1>.ipynb.html"
    page = amy.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert ["corr2d", f"fail{FLIPPED}", "0 / 2"] in rows(page)
    assert ["pool2d", "pass", "1.5 / 1.5"] in rows(page)
    assert ["conv2d", "missingnot defined in your submission", "0 / 1"] in rows(page)
    assert f'<img src="data:image/png;base64,{PNG}"' in page
    assert "got &lt;and&gt; got" in page
    bob = page_path(tmp_path, "bob.py").read_text()
    assert "could not be graded: convcheck: cannot load target: SyntaxError" in bob
    assert ["corr2d", "not graded", "0 / 2"] in rows(bob)
    assert "<img" not in bob


def test_the_sheet_keeps_no_pictures(tmp_path):
    write_sheet(tmp_path, verdicts(), CONFIG, {})
    document = json.loads((tmp_path / "grades.json").read_text())
    failures = [f for row in document["submissions"] if row["report"]
                for entry in row["report"]["functions"].values() for f in entry["failures"]]
    assert failures and all(f["figure"] is None for f in failures)
    assert verdicts()[1].report["functions"]["corr2d"]["failures"][0]["figure"]  # untouched


def test_the_judge_draws_pictures_only_for_the_pages(tmp_path):
    plain = RunSettings(names=("corr2d",), timeout=60, call_timeout=10, memory_limit_mb=None)
    asked = RunSettings(names=("corr2d",), timeout=60, call_timeout=10, memory_limit_mb=None,
                        figures=True)
    args = [tmp_path / "r.json", tmp_path / "e"]
    assert "--report-figures" not in command(plain, PROJECT, "x.py", *args)
    assert "--report-figures" in command(asked, PROJECT, "x.py", *args)
    assert plain.public() == asked.public()                 # grades.json: the same settings
    assert plain.fingerprint() != asked.fingerprint()       # the journal: not the same


SKIPS_LAST_ROW = '''
import torch


def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0] - 1):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="pictures need matplotlib (plot extra)")
    tmp_path = tmp_path_factory.mktemp("grade-html")
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    for name in ("correct_textbook.py", "buggy_flipped_kernel.py"):
        (class_dir / name).write_bytes((FIXTURES / name).read_bytes())
    (class_dir / "skips_last_row.py").write_text(SKIPS_LAST_ROW)
    pages = tmp_path / "pages"
    done = grade(tmp_path, [class_dir], "--only", "corr2d", "--max-examples", "3",
                 "--timeout", "300", "--jobs", "2", "--report-html", str(pages))
    assert done.returncode == 0, done.stdout + done.stderr
    return pages, done


def test_a_real_grading_writes_the_pages_with_pictures(graded):
    pages, done = graded
    assert f"HTML pages in {pages}" in done.stdout
    table = rows((pages / INDEX_NAME).read_text())
    assert ["corr2d", "1 / 3", "2 fail"] in table
    assert any(row[:2] == ["corr2d", "1"] and row[2].startswith("flipped-kernel: ")
               for row in table if len(row) == 3), table
    skipped = (pages / "skips_last_row.py.html").read_text()
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="corr2d: ', skipped)
    assert "<img" not in (pages / "correct_textbook.py.html").read_text()
    sheet = json.loads((done.out / "grades.json").read_text())
    assert "figure\": {" not in json.dumps(sheet) and "figures" not in sheet["settings"]


def test_headless_chromium_renders_the_overview_and_a_submissions_page(graded, tmp_path):
    pages, _ = graded
    overview = screenshot(pages / INDEX_NAME, tmp_path / "index.png", height=1500)
    assert bool((overview < 0.5).any())                    # text is drawn
    assert bool((overview[:, -8:] > 0.97).all())           # nothing wider than the phone
    assert "Most common diagnoses" in dom(pages / INDEX_NAME)
    page = pages / "skips_last_row.py.html"
    pixels = screenshot(page, tmp_path / "skips.png")
    assert has_colour(pixels, "#ffebe9")                   # the fail badge
    assert has_colour(pixels, "#ff00ff", tolerance=0.15)   # the picture's outline
    assert bool((pixels[:, -8:] > 0.97).all())
