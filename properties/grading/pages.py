"""`convcheck grade ... --report-html DIR`: the grading as HTML pages.

    DIR/index.html                 the class overview: points, per graded name how many passed
                                   (and how many failed, timed out, ...), the most common
                                   diagnoses (properties.grading.sheet.summary), and one row per
                                   submission linking to its page
    DIR/<identifier>.html          one page per submission: the points, why it could not be
                                   graded fully when it could not, its card (status and points
                                   per name), the notes and conventions found, and what went
                                   wrong with each failing name — the failures of its report
                                   with their pictures (properties.html)

The pages are rendered from the verdicts alone (their reports), with properties.html, so the
grader still never imports torch. The pictures were drawn by each run's judge: the grader asks
for them (`--report-figures`) when --report-html is given. Every page is self-contained (inline
CSS and images, no script, nothing fetched) and readable on a phone.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from properties import html
from properties.grading.config import GradingConfig, format_points
from properties.grading.feedback import FAILING, ROW_INTRO, card_detail, feedback_path
from properties.grading.sheet import points_of, summary, write_atomically
from properties.grading.verdict import NAME_STATUSES, Verdict

INDEX_NAME = "index.html"
#: The badge colour of each name status (properties.html.badge kinds; the others: "other").
BADGE_KINDS = {"pass": "pass", "fail": "fail", "missing": "missing"}
#: A status's word on its badge, where it is not the status itself.
BADGE_WORDS = {"error": "not graded"}


def page_path(folder: Path, identifier: str) -> Path:
    """The page of a submission: `bob/hw6.ipynb` -> DIR/bob/hw6.ipynb.html."""
    return feedback_path(folder, identifier).with_suffix(".html")


def _link(folder: Path, identifier: str) -> str:
    """The page of `identifier` as a link relative to DIR/index.html."""
    relative = page_path(folder, identifier).relative_to(folder)
    return "/".join(quote(part) for part in relative.parts)


def _points(verdict: Verdict, config: GradingConfig) -> str:
    return f"{format_points(points_of(verdict, config))} / {format_points(config.total)}"


def _status_badge(status: str) -> str:
    return html.badge(BADGE_WORDS.get(status, status), BADGE_KINDS.get(status, "other"))


def submission_page(verdict: Verdict, config: GradingConfig) -> str:
    """The HTML body of one submission's page (module docstring)."""
    parts = [f'<div class="convcheck"><style>{html.CSS}</style>',
             f"<h2>convcheck: {html.esc(verdict.identifier)}</h2>",
             f"<p><b>{html.esc(_points(verdict, config))} points.</b></p>"]
    if verdict.status in ROW_INTRO:
        parts.append(f"<p>{html.esc(ROW_INTRO[verdict.status].format(reason=verdict.reason))}"
                     "</p>")
    rows = []
    for name in config.names:
        status = verdict.names.get(name, "error")
        got = config.points[name] if status == "pass" else 0
        rows.append(f"<tr><td>{html.name_html(name)}</td><td>{_status_badge(status)}"
                    f"{html.esc(card_detail(verdict, name))}</td><td>{format_points(got)} / "
                    f"{format_points(config.points[name])}</td></tr>")
    parts.append('<table class="cc-card"><thead><tr><th>name</th><th>result</th>'
                 "<th>points</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    report = verdict.report or {}
    notes = [f"note: {note}" for note in verdict.notes]
    notes += [f"conventions of {name}: " + ", ".join(f"{k} {v}" for k, v in found.items())
              for name, found in (report.get("conventions") or {}).items()
              if name in config.points and isinstance(found, dict) and found]
    if notes:
        parts.append('<ul class="cc-notes">' + "".join(f"<li>{html.esc(n)}</li>"
                                                       for n in notes) + "</ul>")
    failing = [n for n in config.names if verdict.names.get(n) in FAILING]
    parts.append(html.failures(report, failing))
    parts.append("</div>")
    return "".join(parts)


def overview_page(verdicts: list[Verdict], config: GradingConfig, folder: Path) -> str:
    """The HTML body of the class overview (module docstring)."""
    data = summary(verdicts, config)
    count = data["submissions"]
    parts = [f'<div class="convcheck"><style>{html.CSS}</style>',
             f"<h2>convcheck: {count} submission(s)</h2>",
             f"<p>mean {data['points']['mean']:g} of {format_points(config.total)} points, "
             f"{data['points']['full_marks']} with full marks; "
             + html.esc(", ".join(f"{n} {s}" for s, n in data["statuses"].items())) + "</p>",
             "<h3>Per name</h3>",
             '<table class="cc-card"><thead><tr><th>name</th><th>passed</th><th>others</th>'
             "</tr></thead><tbody>"]
    for name, counts in data["per_name"].items():
        others = ", ".join(f"{counts[s]} {s}" for s in NAME_STATUSES[1:] if counts[s])
        parts.append(f"<tr><td>{html.name_html(name)}</td><td>{counts['pass']} / {count}</td>"
                     f"<td>{html.esc(others)}</td></tr>")
    parts.append("</tbody></table>")
    if data["diagnoses"]:
        parts.append("<h3>Most common diagnoses</h3>"
                     '<table class="cc-card"><thead><tr><th>name</th><th>submissions</th>'
                     "<th>diagnosis</th></tr></thead><tbody>")
        parts += [f"<tr><td>{html.name_html(entry['name'])}</td><td>{entry['submissions']}"
                  f"</td><td>{html.esc(entry['diagnosis'])}</td></tr>"
                  for entry in data["diagnoses"]]
        parts.append("</tbody></table>")
    parts.append("<h3>Submissions</h3>"
                 '<table class="cc-card"><thead><tr><th>submission</th><th>points</th>'
                 "<th>status</th></tr></thead><tbody>")
    for verdict in sorted(verdicts, key=lambda v: v.identifier):
        parts.append(f'<tr><td><a href="{html.esc(_link(folder, verdict.identifier))}">'
                     f"{html.esc(verdict.identifier)}</a></td>"
                     f"<td>{html.esc(_points(verdict, config))}</td>"
                     f"<td>{html.esc(verdict.status)}"
                     + (f": {html.esc(verdict.reason)}" if verdict.reason else "")
                     + "</td></tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def write_pages(folder: Path, verdicts: list[Verdict], config: GradingConfig) -> list[Path]:
    """The overview and one page per submission under `folder`; the paths written."""
    folder = Path(folder)
    written = []
    for verdict in sorted(verdicts, key=lambda v: v.identifier):
        path = page_path(folder, verdict.identifier)
        write_atomically(path, html.page(f"convcheck: {verdict.identifier}",
                                         submission_page(verdict, config)))
        written.append(path)
    index = folder / INDEX_NAME
    write_atomically(index, html.page("convcheck: the class",
                                      overview_page(verdicts, config, folder)))
    return [index, *written]
