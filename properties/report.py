"""The --report-json object and the report card, counted from the tests' outcomes
(properties.outcomes: what each test report records about its contract name, carried from
xdist workers to the controller), and the text of a failure as a student reads it.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from properties.contract import CONTRACT_NAMES
from properties.failures import CallLine
from properties.outcomes import FAILURE_FIELDS, fix_callees_first, outcome_of


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
        found = outcome_of(report)
        if found is None:
            return
        for name, text in found.notes:
            if name in self.tally:
                self.tally[name].notes.add(text)
        if not found.counted:
            return
        tally = self.tally[found.subject]
        if found.outcome == "passed":
            tally.passed += 1
        elif found.outcome == "skipped":
            tally.skipped += 1
            tally.skip_reasons.add(found.skip_reason)
        else:
            tally = self.tally.get(found.culprit, tally)
            tally.failed += 1
            tally.failures.append({k: found.failure.get(k) for k in FAILURE_FIELDS})

    # -- outputs
    def failing_callees(self, name: str) -> list[str]:
        """The target's own names that `name` calls (properties.dependencies) and that fail."""
        return [callee for callee in getattr(self.target, "dependencies", {}).get(name, ())
                if self.status(callee) == "fail"]

    def any_ran(self) -> bool:
        """Whether any property about any name passed, failed or was skipped in this run."""
        return any(t.passed or t.failed or t.skipped for t in self.tally.values())

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
            calls = getattr(self.target, "dependencies", {}).get(name)
            if calls:
                functions[name]["calls"] = list(calls)
        return {"target": self.target.spec, "defined": list(self.target.defined),
                "conventions": dict(self.target.conventions), "functions": functions,
                "notes": self.notes()}

    def notes(self, names=CONTRACT_NAMES) -> list[str]:
        """The accepted conventions the tests noted about `names`, in contract order."""
        return [text for name in names for text in sorted(self.tally[name].notes)]

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.as_json(), handle, indent=2)
            handle.write("\n")

    def card_lines(self, names=CONTRACT_NAMES) -> list[str]:
        """One line per contract name (of `names`): pass, fail (with its diagnosis) or
        missing."""
        width = max(len(n) for n in CONTRACT_NAMES)
        lines = []
        for name in names:
            status = self.status(name)
            t = self.tally[name]
            if status == "missing":
                text = "missing   (not defined by the target)"
            elif status == "pass" and not (t.passed or t.skipped):
                text = "not run   (none of its properties was selected in this run)"
            elif status == "pass" and not t.passed:
                text = "pass      (no property ran: " + "; ".join(sorted(t.skip_reasons)) + ")"
            elif status == "pass":
                text = (f"pass      ({t.passed} properties hold" if t.passed != 1 else
                        "pass      (1 property holds")
                text += f", {t.skipped} skipped)" if t.skipped else ")"
            else:   # the first failure that names its mistake, else the first
                first = next((f for f in t.failures if f.get("diagnosis")), t.failures[0])
                why = first.get("diagnosis") or first.get("message") or ""
                text = f"FAIL      {t.failed} failed: {first.get('property')}: {why}"
                failing = self.failing_callees(name)
                if failing:
                    text = (f"FAIL      {fix_callees_first(failing)} "
                            f"({t.failed} failed: {first.get('property')}: {why})")
            lines.append(f"{name:<{width}}  {text}")
        lines += [f"note: {text}" for text in self.notes(names)]
        for name, conv in self.target.conventions.items():
            if name in names:
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


def failure_text(failure, nodeid: str, spec: str, hypothesis_notes=(),
                 replay: str = "pytest {nodeid} --target {spec}") -> str:
    """What the terminal shows for a failed property, in the order a student reads it: the
    property in words; the call (argument shapes and parameters); expected against got with the
    first differing element; the diagnosis; the minimal falsifying input as a script that runs
    anywhere; how to replay the test (`replay`, the ini option convcheck_replay, with the node id
    and the SPEC filled in, shell-quoted)."""
    details = list(failure.details)
    calls = [line for line in details if isinstance(line, CallLine)]
    rest = [line for line in details if not isinstance(line, CallLine)]
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
    lines.append("  (it runs this property alone; the other names are not run)")
    return "\n".join(lines)


class FailureText:
    """A failure's text as pytest's failure representation: printed as it is, and as the
    short test summary's message `crash_line` (pytest reads `reprcrash.message`; under xdist
    the text travels as a string)."""

    def __init__(self, text: str, crash_line: str):
        self.text = text
        self.reprcrash = _Crash(crash_line)

    def toterminal(self, out) -> None:
        for line in self.text.splitlines():
            out.line(line)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Crash:
    message: str
