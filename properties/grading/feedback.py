"""Per-student feedback: one Markdown file per submission (`--feedback DIR`).

What a student needs and nothing of the suite's insides: the points, a report card (one line
per graded name), the conventions found, and for each failure the property in words, what was
wrong, the named mistake when the suite recognised one, and the minimal example from the
report as a Python block to run on its own. No tracebacks, no Hypothesis internals, no paths
of the grader. The file for `bob/hw6.ipynb` is `DIR/bob/hw6.ipynb.md`.
"""
from __future__ import annotations

from pathlib import Path

from properties.outcomes import first_of_each_property, fix_callees_first
from properties.grading.config import GradingConfig, format_points
from properties.grading.sheet import points_of, write_atomically
from properties.grading.verdict import Verdict

#: What follows a name's status word on the card (nothing for pass and fail).
STATUS_DETAILS = {
    "missing": "not defined in your submission",
    "timeout": "did not finish in time",
    "crash": "the process running it died",
    "memory": "a call ran out of memory",
}
#: How a name's status reads on the card (without its diagnosis).
CARD_WORDS = {
    "pass": "pass",
    "fail": "fail",
    **{status: f"{status}: {detail}" for status, detail in STATUS_DETAILS.items()},
    "error": "not graded",
}

ROW_INTRO = {
    "timeout": "Grading stopped at the time limit ({reason}). Names that had not finished "
               "by then are marked timeout.",
    "crash": "The process grading your submission died ({reason}). Names that had not "
             "finished by then are marked crash.",
    "error": "Your submission could not be graded: {reason}",
}

#: At most this many failures are shown per name (the first ones are the most telling).
FAILURES_SHOWN = 3


def feedback_path(folder: Path, identifier: str) -> Path:
    parts = [p for p in Path(identifier).parts if p not in ("", ".", "..", "/")]
    return Path(folder, *parts[:-1], parts[-1] + ".md")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _fence(code: str) -> str:
    fence = "```"
    while fence in code:
        fence += "`"
    return f"{fence}python\n{code.rstrip()}\n{fence}"


def _failures(verdict: Verdict, name: str) -> list[dict]:
    """The name's failures, the first one of each property."""
    return first_of_each_property(((verdict.report or {}).get("functions") or {}).get(name)
                                  or {})


def card_detail(verdict: Verdict, name: str) -> str:
    """What the card says after a name's status word: its detail (STATUS_DETAILS), then, for
    a failing name, the failing names of the submission it calls or else its first
    diagnosis; '' when nothing."""
    status = verdict.names.get(name, "error")
    parts = [STATUS_DETAILS[status]] if status in STATUS_DETAILS else []
    if status in FAILING:
        failing = failing_callees(verdict, name)
        diagnoses = [f["diagnosis"] for f in _failures(verdict, name) if f.get("diagnosis")]
        if failing:
            parts.append(fix_callees_first(failing))
        else:
            parts += diagnoses[:1]
    return ": ".join(parts)


def card_text(verdict: Verdict, name: str) -> str:
    status = verdict.names.get(name, "error")
    if status not in ("pass", "fail", *STATUS_DETAILS):
        return CARD_WORDS.get(status, status)
    return ": ".join([status, *filter(None, [card_detail(verdict, name)])])


def failing_callees(verdict: Verdict, name: str) -> list[str]:
    """The submission's own names that `name` calls (the report's `calls`) and that fail."""
    entry = ((verdict.report or {}).get("functions") or {}).get(name) or {}
    calls = entry.get("calls") if isinstance(entry.get("calls"), list) else []
    return [callee for callee in calls if verdict.names.get(callee) in FAILING
            or (((verdict.report or {}).get("functions") or {}).get(callee) or {})
            .get("status") == "fail"]


def header(verdict: Verdict, config: GradingConfig) -> list[str]:
    """The feedback's opening lines: the submission, its points, and why it could not be
    graded fully when it could not."""
    earned = points_of(verdict, config)
    lines = [f"# Feedback: {verdict.identifier}", "",
             f"**{format_points(earned)} of {format_points(config.total)} points.**", ""]
    if verdict.status in ROW_INTRO:
        lines += [ROW_INTRO[verdict.status].format(reason=verdict.reason), ""]
    return lines


def render(verdict: Verdict, config: GradingConfig) -> str:
    """The Markdown feedback of one submission."""
    lines = header(verdict, config) + ["| name | result | points |", "|---|---|---|"]
    for name in config.names:
        got = config.points[name] if verdict.names.get(name) == "pass" else 0
        lines.append(f"| {name} | {_cell(card_text(verdict, name))} | "
                     f"{format_points(got)} / {format_points(config.points[name])} |")
    lines.append("")
    conventions = (verdict.report or {}).get("conventions") or {}
    for name, found in conventions.items():
        if name in config.points and isinstance(found, dict) and found:
            lines += [f"Conventions found in your {name}: "
                      + ", ".join(f"{k} {v}" for k, v in found.items()) + ".", ""]
    for note in verdict.notes:
        lines += [f"Note: {note}.", ""]
    failing = [n for n in config.names if verdict.names.get(n) in FAILING]
    if failing:
        lines += ["## What went wrong", ""]
    for name in failing:
        lines += what_went_wrong(verdict, name)
    return "\n".join(lines).rstrip() + "\n"


#: Name statuses whose feedback explains what went wrong.
FAILING = ("fail", "timeout", "crash", "memory")


def what_went_wrong(verdict: Verdict, name: str, level: str = "###") -> list[str]:
    """The Markdown lines about one failing name: each failing property (the first
    FAILURES_SHOWN) in words, what was wrong, the named mistake, the example to run; headings
    at `level`."""
    failures = _failures(verdict, name)
    if not failures:
        return [f"{level} {name}", "", card_text(verdict, name) + ".", ""]
    lines = []
    for failure in failures[:FAILURES_SHOWN]:
        lines += [f"{level} {name}: {failure.get('property') or 'property'}", ""]
        if failure.get("message"):
            lines += [str(failure["message"]), ""]
        if failure.get("diagnosis"):
            lines += [f"**Likely mistake:** {failure['diagnosis']}", ""]
        if failure.get("example"):
            lines += ["Run this on its own to see it:", "", _fence(failure["example"]), ""]
    if len(failures) > FAILURES_SHOWN:
        lines += [f"({len(failures) - FAILURES_SHOWN} more failure(s) of {name} not "
                  "shown: fix these first.)", ""]
    return lines


def write_feedback(folder: Path, verdicts: list[Verdict], config: GradingConfig) -> list[Path]:
    """One Markdown file per submission under `folder`; the paths written."""
    written = []
    for verdict in sorted(verdicts, key=lambda v: v.identifier):
        path = feedback_path(Path(folder), verdict.identifier)
        write_atomically(path, render(verdict, config))
        written.append(path)
    return written
