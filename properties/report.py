"""The --report-json object and the report card, collected from pytest's test reports.

Each property test carries, in its report's user_properties, the contract name it was about
("convcheck-subject") and, when it failed, the failure ("convcheck-failure": culprit,
property, message, diagnosis, example) and any notes the target's calls left
("convcheck-note": (name, text), accepted conventions such as a numpy result). These travel
from xdist workers to the controller, which counts them here. Their values are stored as JSON
text (`encoded`; read back with `decoded_properties`): pytest writes a user property's str()
into --junitxml, which is then JSON rather than a Python repr.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from properties.contract import CONTRACT_NAMES

SUBJECT_KEY = "convcheck-subject"
FAILURE_KEY = "convcheck-failure"
NOTE_KEY = "convcheck-note"
KEYS = (SUBJECT_KEY, FAILURE_KEY, NOTE_KEY)


def encoded(value) -> str:
    """A convcheck user property's value as a test report carries it: JSON text."""
    return json.dumps(value, sort_keys=True)


def decoded_properties(report) -> list[tuple[str, object]]:
    """The report's user properties, convcheck's values decoded from JSON."""
    return [(key, json.loads(value) if key in KEYS else value)
            for key, value in report.user_properties]


@dataclass
class NameTally:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list = field(default_factory=list)
    skip_reasons: set = field(default_factory=set)
    notes: set = field(default_factory=set)


class ReportCollector:
    """A pytest plugin object: tallies property outcomes per contract name."""

    def __init__(self, target):
        self.target = target
        self.tally = {name: NameTally() for name in CONTRACT_NAMES}

    def pytest_runtest_logreport(self, report):
        items = decoded_properties(report)
        props = dict(items)
        subject = props.get(SUBJECT_KEY)
        if subject is None:
            return
        for key, value in items:
            if key == NOTE_KEY and tuple(value)[0] in self.tally:
                self.tally[tuple(value)[0]].notes.add(tuple(value)[1])
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.passed:
                self.tally[subject].passed += 1
            elif report.skipped:
                self.tally[subject].skipped += 1
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
                self.tally[subject].skip_reasons.add(str(reason).removeprefix("Skipped: "))
            else:
                failure = props.get(FAILURE_KEY) or {
                    "culprit": subject, "property": report.head_line or "property",
                    "message": _last_line(report.longreprtext), "diagnosis": None,
                    "example": None}
                culprit = failure.get("culprit") or subject
                tally = self.tally.get(culprit, self.tally[subject])
                tally.failed += 1
                tally.failures.append({k: failure.get(k) for k in
                                       ("property", "message", "diagnosis", "example")})

    # -- outputs
    def status(self, name: str) -> str:
        if not self.target.defines(name):
            return "missing"
        return "fail" if self.tally[name].failed else "pass"

    def as_json(self) -> dict:
        functions = {}
        for name in CONTRACT_NAMES:
            t = self.tally[name]
            functions[name] = {"status": self.status(name), "passed": t.passed,
                               "failed": t.failed, "skipped": t.skipped,
                               "failures": _unique(t.failures)}
        return {"target": self.target.spec, "defined": list(self.target.defined),
                "conventions": dict(self.target.conventions), "functions": functions}

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.as_json(), handle, indent=2)
            handle.write("\n")

    def card_lines(self) -> list[str]:
        """One line per contract name: pass, fail (with its diagnosis) or missing."""
        width = max(len(n) for n in CONTRACT_NAMES)
        lines = []
        for name in CONTRACT_NAMES:
            status = self.status(name)
            t = self.tally[name]
            if status == "missing":
                text = "missing   (not defined by the target)"
            elif status == "pass" and not t.passed:
                text = "pass      (no property ran: " + (
                    "; ".join(sorted(t.skip_reasons)) or "none selected") + ")"
            elif status == "pass":
                text = (f"pass      ({t.passed} properties hold" if t.passed != 1 else
                        "pass      (1 property holds")
                text += f", {t.skipped} skipped)" if t.skipped else ")"
            else:
                first = t.failures[0]
                why = first.get("diagnosis") or first.get("message") or ""
                text = f"FAIL      {t.failed} failed: {first.get('property')}: {why}"
            lines.append(f"{name:<{width}}  {text}")
        for name in CONTRACT_NAMES:
            lines += [f"note: {text}" for text in sorted(self.tally[name].notes)]
        for name, conv in self.target.conventions.items():
            lines.append(f"conventions of {name}: " +
                         ", ".join(f"{k} {v}" for k, v in conv.items()))
        return lines


def _unique(failures: list[dict]) -> list[dict]:
    seen, out = set(), []
    for f in failures:
        key = (f.get("property"), f.get("message"))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def failure_text(failure, nodeid: str, spec: str, hypothesis_notes=(),
                 replay: str = "pytest {nodeid} --target {spec}") -> str:
    """What the terminal shows for a failed property, in the order a student reads it: the
    property in words; the call (argument shapes and parameters); expected against got with the
    first differing element; the diagnosis; the minimal falsifying input as a script that runs
    anywhere; how to replay the test (`replay`, the ini option convcheck_replay, with the node id
    and the SPEC filled in, shell-quoted)."""
    details = list(failure.details)
    calls = [line for line in details if line.startswith("called:")]
    rest = [line for line in details if not line.startswith("called:")]
    lines = [f"{failure.culprit} — {failure.prop or 'property'}",
             *(f"  {line}" for line in calls), f"  {failure.summary}",
             *(f"  {line}" for line in rest)]
    if failure.diagnosis:
        lines.append(f"  diagnosis: {failure.diagnosis}")
    if failure.example:
        lines.append("  minimal failing call, as a script (python script.py, from any folder):")
        lines += [f"    {line}" for line in failure.example.splitlines()]
    lines += [note for note in hypothesis_notes if note.startswith("Falsifying example")]
    lines.append("to replay: " + replay.format(nodeid=shlex.quote(nodeid),
                                               spec=shlex.quote(spec)))
    return "\n".join(lines)


def failure_longrepr(text: str, crash_line: str, path: str):
    """`text` as pytest's failure representation (it survives xdist's serialisation), with
    `crash_line` as the one line of the short test summary."""
    from _pytest._code.code import (ExceptionChainRepr, ReprEntryNative, ReprFileLocation,
                                    ReprTraceback)
    entry = ReprEntryNative([line + "\n" for line in text.splitlines()])
    return ExceptionChainRepr([(ReprTraceback([entry], None, "native"),
                                ReprFileLocation(path, 0, crash_line), None)])
