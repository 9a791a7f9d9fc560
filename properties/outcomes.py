"""A test's outcome about a contract name, as data, from its pytest report.

A test about a contract name carries, in its report's user_properties, JSON strings (so that
`--junitxml` shows them as JSON, and xdist carries them from its workers):

    ("convcheck-subject", '"corr2d"')              the name the test is about
    ("convcheck-failure", '{"culprit": ..., ...}')  when it failed: `failure_record`
    ("convcheck-note", '["corr2d", "text"]')        accepted conventions its calls noted

`annotate` writes them (properties.session, as each test's report is made, on the report and
on the item, as pytest's record_property does, so --junitxml writes them); `outcome_of`
reads them back, the one reading both the report card and --report-json (properties.report)
and the grader's record of a run (properties.grading.plugin) count from.

A failure record: {"culprit", "property", "message", "diagnosis", "example", "kind",
"figure"}, where `culprit` is the name the failure is filed under, `kind` what happened
(properties.failures.KINDS, or "error" when the suite's own check broke) and `figure` the
picture of a wrong tensor result ({"png": base64, "alt": words}, properties.figures) when
one was asked for (`record_of(..., figure=True)`) and can be drawn, else null.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from properties.failures import PropertyFailure, find_property_failure

SUBJECT_KEY = "convcheck-subject"
FAILURE_KEY = "convcheck-failure"
NOTE_KEY = "convcheck-note"
#: The fields of a failure in --report-json (the culprit is where it is filed).
FAILURE_FIELDS = ("property", "message", "diagnosis", "mistake", "example", "kind",
                  "figure")
#: The kind of a failure that is the suite's own error, not the target's.
SUITE_ERROR = "error"


@dataclass(frozen=True)
class Outcome:
    """What one test report says about its contract name.

    counted   whether this report decides the test's outcome (the call, or a setup that did
              not pass): the other phases only carry notes
    outcome   'passed', 'failed' or 'skipped'
    """
    subject: str
    counted: bool
    outcome: str
    culprit: str
    failure: dict | None
    notes: tuple[tuple[str, str], ...]
    skip_reason: str


def failure_record(failure: PropertyFailure, title: str, figure: bool = False) -> dict:
    """A PropertyFailure as data (the property's title when the failure names none), with
    the picture of its wrong value when `figure` asks for one (drawn here: properties.
    figures, which needs torch, is imported only then)."""
    picture = None
    if figure:
        from properties.figures import figure_record
        picture = figure_record(failure)
    return {"culprit": failure.culprit, "property": failure.prop or title,
            "message": failure.one_line(), "diagnosis": failure.diagnosis,
            "mistake": failure.mistake, "example": failure.example, "kind": failure.kind,
            "figure": picture}


def first_of_each_property(entry: dict) -> list[dict]:
    """Of a name's entry in --report-json, its failure records, the first of each property (a
    property that failed on one input says all a student needs; a hang shows up once, not
    once per later call)."""
    seen, kept = set(), []
    for failure in entry.get("failures") or []:
        if isinstance(failure, dict) and failure.get("property") not in seen:
            seen.add(failure.get("property"))
            kept.append(failure)
    return kept


def fix_callees_first(failing: list[str]) -> str:
    """What the report card and the grader's feedback say of a failing name that calls
    failing names of the target's own (`failing`, from the report's "calls"): fix those
    first."""
    return f"calls your {', '.join(failing)}, which fails: fix it first"


def error_record(subject: str, title: str, exc: BaseException) -> dict:
    """An exception the suite's own code raised while checking `subject`."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return {"culprit": subject, "property": title, "message": f"{type(exc).__name__}: {first}",
            "diagnosis": None, "mistake": None, "example": None, "kind": SUITE_ERROR,
            "figure": None}


def record_of(exc: BaseException, subject: str, title: str, figure: bool = False) -> dict:
    """The failure record of a test about `subject` that raised `exc`: its PropertyFailure's
    (failure_record), else the suite's own error (error_record)."""
    failure = find_property_failure(exc)
    if failure is None:
        return error_record(subject, title, exc)
    return failure_record(failure, title, figure)


def annotate(report, subject: str, failure: dict | None = None,
             notes: list[tuple[str, str]] = (), item=None) -> None:
    """Write the subject, the failure and the notes into the report and the item (module
    docstring)."""
    entries = [(SUBJECT_KEY, json.dumps(subject))]
    entries += [(NOTE_KEY, json.dumps(list(note))) for note in notes]
    if failure is not None:
        entries.append((FAILURE_KEY, json.dumps(failure, sort_keys=True)))
    for holder in (report, item):
        if holder is not None:
            holder.user_properties.extend(e for e in entries
                                          if e[0] != SUBJECT_KEY or e not in holder.user_properties)


def outcome_of(report) -> Outcome | None:
    """The outcome a test report records about its contract name; None for a test that is
    about no name (the suite's self-tests)."""
    values: dict[str, list] = {}
    for key, value in report.user_properties:
        if key in (SUBJECT_KEY, FAILURE_KEY, NOTE_KEY):
            values.setdefault(key, []).append(json.loads(value))
    if SUBJECT_KEY not in values:
        return None
    subject = values[SUBJECT_KEY][0]
    notes = tuple(tuple(note) for note in values.get(NOTE_KEY, ()))
    counted = report.when == "call" or (report.when == "setup" and not report.passed)
    outcome = "passed" if report.passed else "skipped" if report.skipped else "failed"
    failure = None
    if counted and outcome == "failed":
        failure = (values.get(FAILURE_KEY) or [None])[0] or {
            "culprit": subject, "property": report.head_line or "property",
            "message": _last_line(report.longreprtext), "diagnosis": None, "example": None,
            "kind": SUITE_ERROR, "figure": None}
    skip_reason = ""
    if counted and outcome == "skipped" and isinstance(report.longrepr, tuple):
        skip_reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    culprit = (failure or {}).get("culprit") or subject
    return Outcome(subject, counted, outcome, culprit, failure, notes, skip_reason)


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
