"""The report card as HTML: for `--report-html PATH`, the notebook check (`convcheck.check()`)
and the grader's pages (properties.grading.html).

Everything is rendered from the --report-json object (properties.report.ReportCollector.
as_json, or the report a grader's verdict keeps), never from a test run's objects, so the
grader — which never imports torch — renders the same cards:

    card(report, header=..., names=...)   the card as an HTML fragment (a <div> with its own
                                          scoped <style>: a notebook cell's output)
    failures(report, names)               the "what went wrong" part alone (the grader's pages)
    page(title, body)                     a whole document: self-contained (inline CSS and
                                          images, no script, nothing fetched), readable on
                                          a phone (viewport meta, one column, wrapping text)

Each failure shows its property, message, diagnosis, its figure (the record's `figure`, a PNG
drawn by properties.figures, embedded as a data: URI once it checks out as base64 PNG) and the
minimal failing call in a collapsed block. Every text is escaped.
"""
from __future__ import annotations

import base64
import binascii
import html

from properties.contract import CONTRACT_NAMES
from properties.outcomes import first_of_each_property

#: At most this many failures are shown in full per name (the first ones are the most telling).
FAILURES_SHOWN = 3

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
.convcheck{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:15px;
 line-height:1.45;color:#1f2328;max-width:60rem;overflow-wrap:anywhere}
.convcheck h2{font-size:1.3em;margin:.2em 0 .5em}
.convcheck h3{font-size:1.1em;margin:1.2em 0 .4em}
.convcheck h4{font-size:1em;margin:.2em 0 .4em}
.convcheck code,.convcheck pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
 font-size:.9em}
.convcheck pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.6em;
 overflow-x:auto;white-space:pre;overflow-wrap:normal}
.convcheck .cc-header{color:#57606a;font-size:.85em;margin:0 0 .8em;padding-left:1.1em}
.convcheck table.cc-card{border-collapse:collapse;width:100%;margin:.3em 0 .6em}
.convcheck table.cc-card td,.convcheck table.cc-card th{border-bottom:1px solid #d0d7de;
 padding:.35em .5em;text-align:left;vertical-align:top}
.convcheck table.cc-card th{font-size:.85em;color:#57606a}
.convcheck table.cc-card td:first-child,.convcheck table.cc-card th:first-child{
 overflow-wrap:normal;word-break:normal}
.convcheck .cc-badge{display:inline-block;min-width:4.2em;text-align:center;border-radius:1em;
 padding:.05em .6em;font-weight:600;font-size:.85em;margin-right:.4em}
.convcheck .cc-pass{background:#dafbe1;color:#116329}
.convcheck .cc-fail{background:#ffebe9;color:#a40e26}
.convcheck .cc-other{background:#fff8c5;color:#7d4e00}
.convcheck .cc-missing{background:#eaeef2;color:#57606a}
.convcheck .cc-notes{color:#57606a;font-size:.9em;padding-left:1.1em}
.convcheck .cc-failure{border-left:4px solid #cf222e;padding:.3em 0 .3em .8em;margin:.8em 0}
.convcheck .cc-message{margin:.3em 0}
.convcheck .cc-diagnosis{margin:.3em 0;background:#fff8c5;padding:.3em .5em;border-radius:4px}
.convcheck figure{margin:.5em 0}
.convcheck figure img{max-width:100%;height:auto;border:1px solid #d0d7de;border-radius:4px}
.convcheck figcaption{font-size:.8em;color:#57606a}
.convcheck details summary{cursor:pointer;color:#0969da}
@media (max-width:600px){.convcheck{font-size:14px}
 .convcheck table.cc-card td,.convcheck table.cc-card th{padding:.3em .25em}}
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def name_html(name: str) -> str:
    """A contract name in code type, breakable after its underscores (narrow screens)."""
    return "<code>" + esc(name).replace("_", "_<wbr>") + "</code>"


def badge(word: str, kind: str) -> str:
    """A coloured status word; `kind` is pass, fail, other or missing."""
    return f'<span class="cc-badge cc-{kind}">{esc(word)}</span>'


def name_status(entry: dict) -> tuple[str, str, str]:
    """(badge word, badge kind, words after it) for one name of a report's "functions"."""
    status = entry.get("status")
    passed, failed, skipped = (int(entry.get(k) or 0) for k in ("passed", "failed", "skipped"))
    if status == "missing":
        return "missing", "missing", "not defined"
    if status == "fail":
        first = (entry.get("failures") or [{}])[0]
        words = f"{failed} failed, first: {first.get('property') or 'a property'}"
        if first.get("diagnosis"):
            words += f" (likely mistake: {first['diagnosis']})"
        return "FAIL", "fail", words
    if not passed:
        return ("not run", "missing", "none of its properties ran" +
                (f" ({skipped} skipped)" if skipped else ""))
    words = "1 property holds" if passed == 1 else f"{passed} properties hold"
    return "pass", "pass", words + (f", {skipped} skipped" if skipped else "")


def figure_html(figure) -> str:
    """The record's figure ({"png": base64, "alt": text}) as an inline image, or '' when it is
    absent or not a base64 PNG."""
    if not isinstance(figure, dict) or not isinstance(figure.get("png"), str):
        return ""
    data = figure["png"]
    try:
        if not base64.b64decode(data, validate=True).startswith(_PNG_SIGNATURE):
            return ""
    except (binascii.Error, ValueError):
        return ""
    alt = esc(figure.get("alt") or "expected, got and their difference")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{alt}</figcaption></figure>")


def failure_html(name: str, failure: dict) -> str:
    """One failure: the property, what was wrong, the likely mistake, the picture, the call."""
    parts = [f'<section class="cc-failure"><h4>{name_html(name)} — '
             f"{esc(failure.get('property') or 'property')}</h4>"]
    if failure.get("message"):
        parts.append(f'<p class="cc-message">{esc(failure["message"])}</p>')
    if failure.get("diagnosis"):
        parts.append(f'<p class="cc-diagnosis"><b>Likely mistake:</b> '
                     f"{esc(failure['diagnosis'])}</p>")
    parts.append(figure_html(failure.get("figure")))
    if failure.get("example"):
        parts.append("<details><summary>the minimal failing call, as a script that runs on its "
                     f"own</summary><pre><code>{esc(failure['example'])}</code></pre></details>")
    parts.append("</section>")
    return "".join(parts)


def failures(report: dict, names=CONTRACT_NAMES) -> str:
    """The failures of `names` in a report (the first FAILURES_SHOWN of each), or ''."""
    functions = report.get("functions") or {}
    parts = []
    for name in names:
        kept = first_of_each_property(functions.get(name) or {})
        parts += [failure_html(name, f) for f in kept[:FAILURES_SHOWN]]
        if len(kept) > FAILURES_SHOWN:
            parts.append(f"<p>({len(kept) - FAILURES_SHOWN} more failing properties of "
                         f"<code>{esc(name)}</code> not shown: fix these first.)</p>")
    return "<h3>What went wrong</h3>" + "".join(parts) if parts else ""


def card(report: dict, *, header=(), names=CONTRACT_NAMES, heading="convcheck report card",
         footer=()) -> str:
    """The report card of `names` as an HTML fragment (module docstring): `header` lines
    above it, one row per defined name, the names not defined on one line, the notes and
    conventions, the failures, `footer` lines."""
    functions = report.get("functions") or {}
    rows, missing = [], []
    for name in names:
        entry = functions.get(name) or {"status": "missing"}
        word, kind, words = name_status(entry)
        if kind == "missing" and word == "missing":
            missing.append(name)
            continue
        rows.append(f"<tr><td>{name_html(name)}</td><td>{badge(word, kind)}"
                    f"{esc(words)}</td></tr>")
    parts = [f'<div class="convcheck"><style>{CSS}</style><h2>{esc(heading)}</h2>']
    if header:
        parts.append('<ul class="cc-header">' + "".join(f"<li>{esc(line)}</li>"
                                                        for line in header) + "</ul>")
    if rows:
        parts.append('<table class="cc-card"><thead><tr><th>name</th><th>result</th></tr>'
                     "</thead><tbody>" + "".join(rows) + "</tbody></table>")
    if missing:
        parts.append(f"<p>{badge('missing', 'missing')}not defined: "
                     + ", ".join(name_html(n) for n in missing) + "</p>")
    notes = [f"note: {n}" for n in report.get("notes") or []]
    notes += [f"conventions of {name}: " + ", ".join(f"{k} {v}" for k, v in found.items())
              for name, found in (report.get("conventions") or {}).items()
              if name in names and isinstance(found, dict)]
    if notes:
        parts.append('<ul class="cc-notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes)
                     + "</ul>")
    parts.append(failures(report, names))
    parts += [f'<p class="cc-notes">{esc(line)}</p>' for line in footer]
    parts.append("</div>")
    return "".join(parts)


def page(title: str, body: str) -> str:
    """A whole HTML document around `body` (module docstring)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title>"
            "<style>body{margin:0;padding:12px;background:#fff}</style></head>"
            f"<body>{body}</body></html>\n")


def write_page(path, title: str, body: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page(title, body))
