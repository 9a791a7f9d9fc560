"""The report card as HTML (properties.html), from a report object: statuses, failures with
their pictures, everything escaped, nothing fetched, a picture only when it is a PNG."""
from __future__ import annotations

import base64
import re

from properties import html

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def report(**functions) -> dict:
    base = {name: {"status": "missing", "passed": 0, "failed": 0, "skipped": 4, "failures": []}
            for name in html.CONTRACT_NAMES}
    base.update(functions)
    return {"target": "hw.py", "defined": [n for n, e in functions.items()
                                           if e["status"] != "missing"],
            "conventions": {"batch_norm": {"momentum": "new-weighted"}}, "functions": base,
            "notes": ["corr2d returns float32 for float64 input (accepted: compared at "
                      "float32)"]}


def failing(prop="agrees with torch's float64 conv2d", figure=None, diagnosis=None):
    return {"property": prop, "message": "result differs at [1, 0]: expected 37, got 0",
            "diagnosis": diagnosis, "example": "import torch\nprint(corr2d(X, K) < 1)",
            "kind": "wrong", "figure": figure}


def test_card_rows_statuses_notes_and_failures():
    text = html.card(report(
        corr2d={"status": "fail", "passed": 2, "failed": 1, "skipped": 0,
                "failures": [failing(figure={"png": PNG, "alt": "last row <outlined>"},
                                     diagnosis="output-one-short: drops the last row")]},
        pool2d={"status": "pass", "passed": 12, "failed": 0, "skipped": 0, "failures": []},
        batch_norm={"status": "pass", "passed": 0, "failed": 0, "skipped": 0, "failures": []}),
        header=["convcheck target: hw.py"])
    assert 'cc-badge cc-fail">FAIL</span>1 failed, first: agrees with torch&#x27;s' in text
    assert "(likely mistake: output-one-short: drops the last row)" in text
    assert 'cc-badge cc-pass">pass</span>12 properties hold' in text
    assert 'cc-badge cc-missing">not run</span>none of its properties ran' in text
    assert "not defined: <code>corr2d_<wbr>multi_<wbr>in</code>" in text
    assert "<li>note: corr2d returns float32 for float64 input" in text
    assert "<li>conventions of batch_norm: momentum new-weighted</li>" in text
    assert f'<img src="data:image/png;base64,{PNG}" alt="last row &lt;outlined&gt;">' in text
    assert "print(corr2d(X, K) &lt; 1)" in text            # the script, escaped
    assert "<li>convcheck target: hw.py</li>" in text


def test_a_figure_that_is_not_a_base64_png_is_left_out():
    for bad in ({"png": "not base64!"}, {"png": base64.b64encode(b"GIF89a").decode()},
                {"png": 'x" onerror="alert(1)'}, "a string", None):
        assert html.figure_html(bad) == ""
    assert html.figure_html({"png": PNG}).startswith('<figure><img src="data:image/png')


def test_at_most_three_failures_per_name_are_shown_in_full():
    entry = {"status": "fail", "passed": 0, "failed": 5, "skipped": 0,
             "failures": [failing(f"property {i}") for i in range(5)]}
    text = html.failures(report(corr2d=entry))
    assert text.count('class="cc-failure"') == 3
    assert "(2 more failing properties of <code>corr2d</code> not shown" in text


def test_the_page_is_self_contained_and_fits_a_phone():
    page = html.page("convcheck: <hw.py>", html.card(report()))
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<title>convcheck: &lt;hw.py&gt;</title>" in page
    # Nothing is fetched: no script, no link, no URL other than inline data.
    assert not re.search(r"<script|<link|@import|url\(|src=\"(?!data:)|href=", page)
