"""`pytest --target FILE --report-html PATH`, `--save-figures DIR` and `--report-figures`, as a
user runs them (a subprocess): the page holds the report card with the picture of the wrong
result; the scripts and pictures are saved side by side and the scripts run; headless
Chromium renders the page at a phone's width and the screenshot shows the card."""
from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from browser import dom, has_colour, screenshot
from suite_runner import run_suite, write_target

pytest.importorskip("matplotlib", reason="pictures need matplotlib (plot extra)")

SOURCE = '''
import torch


def corr2d(X, K):                     # skips the last row of the output
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0] - 1):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y
'''
SELECTION = "corr2d and torch or pool2d and scipy"
FIRST = "corr2d--agrees-with-torch-s-float64-conv2d"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-html")
    target = write_target(folder, SOURCE, "skips_a_row.py")
    done = run_suite(target, folder, "-k", SELECTION, "-m", "not lenet",
                     "--report-html", str(folder / "report.html"),
                     "--save-figures", str(folder / "figures"))
    return folder, done


def test_the_page_the_json_and_the_saved_files(run):
    folder, done = run
    assert done.returncode == 1, done.output[-3000:]
    page = (folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "convcheck report card" in page
    assert 'cc-badge cc-fail">FAIL' in page and 'cc-badge cc-pass">pass' in page
    assert "outside the tolerance: [1, 0], [1, 1]" in page
    failure = done.report["functions"]["corr2d"]["failures"][0]
    assert base64.b64decode(failure["figure"]["png"]).startswith(b"\x89PNG")
    saved = folder / "figures"
    assert (saved / f"{FIRST}.png").read_bytes() == base64.b64decode(failure["figure"]["png"])
    script = saved / f"{FIRST}.py"
    ran = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "got: tensor([[19., 25.],\n        [ 0.,  0.]])" in ran.stdout


def test_without_an_html_option_the_json_has_no_pictures_unless_asked(tmp_path):
    target = write_target(tmp_path, SOURCE, "skips_a_row.py")
    plain = run_suite(target, tmp_path, "-k", "corr2d and torch", "-m", "not lenet")
    assert plain.report["functions"]["corr2d"]["failures"][0]["figure"] is None
    asked = run_suite(target, tmp_path, "-k", "corr2d and torch", "-m", "not lenet",
                      "--report-figures")
    assert asked.report["functions"]["corr2d"]["failures"][0]["figure"]["png"]


def test_headless_chromium_renders_the_card_at_a_phones_width(run):
    folder, _ = run
    page = folder / "report.html"
    pixels = screenshot(page, folder / "report.png")
    assert has_colour(pixels, "#ffebe9")       # the FAIL badge
    assert has_colour(pixels, "#dafbe1")       # the pass badge
    assert has_colour(pixels, "#ff00ff", tolerance=0.15)   # the picture's outline
    # Nothing wider than the phone: the right-most columns are the page's white margin.
    assert bool((pixels[:, -8:] > 0.97).all())
    rendered = dom(page)
    assert "convcheck report card" in rendered and "data:image/png;base64," in rendered
