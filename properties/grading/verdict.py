"""From what a run left behind to a verdict: the row's status and reason, one status per name.

Row status
    ok       the run ended by itself with a report that checks out
    timeout  the run passed its wall-clock limit and was killed, or loading the submission
             did not finish within the suite's bound
    crash    the judge process died (a signal: out of memory, file too large ...)
    error    anything else: the submission cannot be loaded, or the run cannot be trusted

Name status (a sheet cell): pass, fail, missing (not defined), timeout (a call did not
return, or the run stopped before the name was finished), crash (the process running the
submission died during a call of that name), memory (a call of it ran out of memory), error
(the whole row is an error, no property of the name ran, or the suite broke checking it).
A failing name's status comes from its failures' kinds (properties.failures), set where each
failure happened, never from their words.

A report is trusted only if: it exists and parses; its "target" is this submission; it lists
every graded name with a known status; the run's own record (grade_plugin's events, written
by the judge as it goes) reached its end with the same exit status pytest returned and counts
the same passes, failures and skips per name; and the exit status agrees with it (0 exactly
when nothing failed); the record's last line carries signatures (HMAC with a key only the
grader and the judge know) of the report and of the record's other lines, and they match.
A run that exits early with status 0 and no report is "ended the run
early". With --isolate the submission never runs in the judge, so any of these failing means
something wrote over the grader's files or ended processes it should not have.
"""
from __future__ import annotations

import hmac
import json
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

from properties.contract import CONTRACT_NAMES
from properties.grading.plugin import events_signature, report_signature
from properties.grading.run import RunOutcome
from properties.grading.submissions import Submission

ROW_STATUSES = ("ok", "timeout", "crash", "error")
NAME_STATUSES = ("pass", "fail", "missing", "timeout", "crash", "memory", "error")
REPORT_STATUSES = ("pass", "fail", "missing")

#: A failing name's status, from the kinds of its failures (properties.failures), in order
#: of precedence; any other kind is "fail".
KIND_STATUSES = (("timeout", "timeout"), ("memory", "memory"), ("crash", "crash"),
                 ("error", "error"))
#: Where the suite lives; a run's private copy of it is named so in messages.
PROJECT = str(Path(__file__).resolve().parents[2])


@dataclass
class Verdict:
    """One row of the sheet, with everything grades.json and the feedback need."""
    identifier: str
    path: str
    sha256: str
    status: str                                   # ROW_STATUSES
    reason: str                                   # '' when ok
    names: dict[str, str]                         # graded name -> NAME_STATUSES
    report: dict | None = None                    # the (sanitised) report, possibly partial
    duration: float = 0.0
    output_tail: str = ""                         # last lines printed, when not ok
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# --------------------------------------------------------------------------- the run's record

@dataclass
class RunRecord:
    """grade_plugin's events, tallied like properties.report.ReportCollector tallies."""
    collected: dict[str, int] | None = None
    defined: list[str] | None = None
    finished: int | None = None
    passed: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)      # tests finished, by subject
    failures: dict[str, list] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: list[dict]) -> "RunRecord":
        record = cls()
        for event in events:
            kind = event.get("event")
            if kind == "collected":
                record.collected = {k: int(v) for k, v in dict(event.get("items", {})).items()}
                record.defined = [str(n) for n in event.get("defined", [])]
            elif kind == "test":
                subject = event.get("subject")
                if subject not in CONTRACT_NAMES:
                    continue
                record.done[subject] = record.done.get(subject, 0) + 1
                outcome = event.get("outcome")
                if outcome == "failed":
                    culprit = event.get("culprit")
                    culprit = culprit if culprit in CONTRACT_NAMES else subject
                    record.failed[culprit] = record.failed.get(culprit, 0) + 1
                    record.failures.setdefault(culprit, []).append(event.get("failure") or {})
                elif outcome in ("passed", "skipped"):
                    tally = record.passed if outcome == "passed" else record.skipped
                    tally[subject] = tally.get(subject, 0) + 1
            elif kind == "finished":
                record.finished = int(event.get("exitstatus", -1))
        return record

    def finished_name(self, name: str) -> bool:
        """All of the name's collected tests have an outcome."""
        if self.collected is None:
            return False
        return self.done.get(name, 0) >= self.collected.get(name, 0)


# --------------------------------------------------------------------------- helpers

def sanitise(value, replacements: list[tuple[str, str]]):
    """`value` with private paths replaced (strings inside dicts and lists too)."""
    if isinstance(value, str):
        for old, new in replacements:
            if old:
                value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: sanitise(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitise(v, replacements) for v in value]
    return value


def failed_status(failures: list[dict]) -> str:
    """fail, timeout, memory, crash or error, from the kinds of a failing name's failures
    (KIND_STATUSES), never from their words."""
    kinds = {f.get("kind") for f in failures if isinstance(f, dict)}
    return next((status for kind, status in KIND_STATUSES if kind in kinds), "fail")


def _tail_lines(output: str, count: int = 40) -> str:
    return "\n".join(output.splitlines()[-count:])


def usage_error_line(output: str) -> str | None:
    """The last usage-error line pytest printed (exit status 4), without its 'ERROR: '
    prefix: shown as the reason, when the run's record does not say more."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return next((line.removeprefix("ERROR:").strip() for line in reversed(lines)
                 if line.startswith("ERROR:")), None)


def load_error(events: list[dict]) -> dict | None:
    """The run's record of a target that could not be loaded (kind, message), if any."""
    return next((e for e in events if e.get("event") == "load-error"), None)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --------------------------------------------------------------------------- the verdict

def judge(submission: Submission, outcome: RunOutcome, names: list[str], *,
          replacements: list[tuple[str, str]] = (), timeout: float = 0.0) -> Verdict:
    """The verdict on one run (see the module docstring)."""
    replacements = [(outcome.workdir, "."), *replacements]
    if outcome.suite:
        replacements.insert(0, (outcome.suite, str(PROJECT)))
    if outcome.target:  # the run graded a copy: messages name the submission itself
        replacements.insert(0, (str(Path(outcome.target).parent), str(submission.path.parent)))
        replacements.insert(0, (outcome.target, submission.spec))
    report = sanitise(outcome.report, replacements) if outcome.report is not None else None
    record = RunRecord.from_events(sanitise(outcome.events, replacements))
    output = sanitise(outcome.output, replacements)
    verdict = Verdict(identifier=submission.identifier, path=submission.spec,
                      sha256=submission.sha256, status="ok", reason="",
                      names={n: "error" for n in names}, duration=round(outcome.duration, 1))
    code = outcome.returncode

    if outcome.timed_out:
        _partial(verdict, record, names, submission, "timeout",
                 f"did not finish within the time limit of {timeout:g} s")
    elif code == 4:
        problem = load_error(sanitise(outcome.events, replacements))
        line = str(problem["message"]) if problem else usage_error_line(output)
        _error(verdict, line or "the suite could not start (usage error, exit status 4)")
        if problem and problem.get("kind") == "timeout":
            verdict.status = "timeout"
            verdict.names = {n: "timeout" for n in names}
    elif code is not None and code < 0:
        _partial(verdict, record, names, submission, "crash",
                 f"the process grading it died ({_signal_name(-code)}); out of memory?"
                 if -code == signal.SIGKILL else
                 f"the process grading it died ({_signal_name(-code)})")
    elif code == 5:
        _error(verdict, "no property about the graded names ran (pytest collected none)")
    elif code not in (0, 1):
        line = next((ln for ln in reversed(output.splitlines()) if "INTERNALERROR" in ln
                     or ln.startswith("ERROR")), "")
        _error(verdict, f"the suite stopped with exit status {code}"
                        + (f": {line.strip()}" if line.strip() else ""))
    else:
        problem = _untrusted(report, outcome.report_problem, record, code, submission, names) \
            or _unsigned(outcome)
        if problem:
            _error(verdict, problem)
        else:
            _from_report(verdict, report, names)
    if outcome.suite_changes:
        _error(verdict, "changed the suite's own files on disk: "
                        + ", ".join(outcome.suite_changes[:5]))
    if outcome.escaped:
        _error(verdict, f"left {outcome.escaped} process(es) running outside its run "
                        "(killed)", keep_report=True)
    if verdict.status != "ok":
        verdict.output_tail = _tail_lines(output)
    if outcome.output_bytes > 1_000_000:
        verdict.notes.append(f"printed {outcome.output_bytes / 1e6:.1f} MB while graded")
    return verdict


def _error(verdict: Verdict, reason: str, keep_report: bool = False) -> None:
    verdict.status, verdict.reason = "error", reason
    verdict.names = {n: "error" for n in verdict.names}
    if not keep_report:
        verdict.report = None


def _untrusted(report, problem, record: RunRecord, code: int, submission: Submission,
               names: list[str]) -> str | None:
    """Why the report of a run that exited 0 or 1 cannot be trusted, or None."""
    if report is None:
        if code == 0:
            return f"ended the run early: exit status 0 and {problem or 'no report'}"
        return f"the run ended without a usable report ({problem or 'no report'})"
    if report.get("target") != submission.spec:
        return (f"the report is about {str(report.get('target'))[:80]!r}, not this submission "
                "(was it overwritten?)")
    functions = report.get("functions")
    if not isinstance(functions, dict):
        return "the report has no per-name results (was it overwritten?)"
    for name in names:
        entry = functions.get(name)
        if not isinstance(entry, dict) or entry.get("status") not in REPORT_STATUSES:
            return f"the report has no valid result for {name} (was it overwritten?)"
    if record.finished is None:
        return (f"ended the run early: exit status {code} before the run's own record "
                "was complete")
    if record.finished != code:
        return (f"exit status {code} disagrees with the run's own record (which ended with "
                f"{record.finished})")
    for name in CONTRACT_NAMES:
        entry = functions.get(name)
        if not isinstance(entry, dict):
            continue
        counted = (record.passed.get(name, 0), record.failed.get(name, 0),
                   record.skipped.get(name, 0))
        reported = (entry.get("passed"), entry.get("failed"), entry.get("skipped"))
        if counted != reported:
            return (f"the report disagrees with the run's own record for {name} (reported "
                    f"passed/failed/skipped {reported}, recorded {counted}): was it "
                    "overwritten?")
    if record.defined is not None and list(report.get("defined", [])) != record.defined:
        return "the report's defined names disagree with the run's own record"
    failures = any(isinstance(e, dict) and e.get("failed") for e in functions.values())
    if code == 0 and failures:
        return "exit status 0 although the report shows failures"
    if code == 1 and not failures:
        return "exit status 1 although the report shows no failure"
    return None


def _unsigned(outcome: RunOutcome) -> str | None:
    """Why the signatures of the record and the report do not check out, or None.

    The judge signs them with the run's key (grade_plugin, --grade-key-stdin); an outcome
    without a key (built by hand) is not checked."""
    if not outcome.key:
        return None
    data = outcome.events_data.rstrip(b"\n")
    prefix, _, last = data.rpartition(b"\n")
    prefix = prefix + b"\n" if prefix else b""
    try:
        finished = json.loads(last)
    except json.JSONDecodeError:
        finished = None
    if not isinstance(finished, dict) or finished.get("event") != "finished":
        return "the run's own record does not end where the suite ended it (tampered with?)"
    if not hmac.compare_digest(str(finished.get("events_hmac", "")),
                               events_signature(outcome.key, prefix)):
        return "the run's own record was changed after the suite wrote it"
    if not hmac.compare_digest(str(finished.get("report_hmac", "")),
                               report_signature(outcome.key, outcome.report)):
        return "the report was changed after the suite wrote it"
    return None


def _from_report(verdict: Verdict, report: dict, names: list[str]) -> None:
    verdict.report = report
    untested = []
    for name in names:
        entry = report["functions"][name]
        if entry["status"] == "missing":
            verdict.names[name] = "missing"
        elif entry["status"] == "fail":
            verdict.names[name] = failed_status(entry.get("failures") or [])
        elif entry.get("passed"):
            verdict.names[name] = "pass"
        else:
            verdict.names[name] = "error"
            untested.append(name)
    if untested:
        verdict.notes.append("no property ran for " + ", ".join(untested) +
                             " (all skipped): not graded as a pass")


def _partial(verdict: Verdict, record: RunRecord, names: list[str], submission: Submission,
             status: str, reason: str) -> None:
    """A run that did not finish: keep the names it finished, the rest get `status`."""
    verdict.status, verdict.reason = status, reason
    defined = record.defined
    functions = {}
    for name in CONTRACT_NAMES:
        failures = record.failures.get(name, [])
        if defined is not None and name not in defined:
            state = "missing"
        elif failures:
            state = failed_status(failures)
        elif record.finished_name(name) and record.passed.get(name):
            state = "pass"
        else:
            state = status
        functions[name] = {"status": state, "passed": record.passed.get(name, 0),
                           "failed": record.failed.get(name, 0),
                           "skipped": record.skipped.get(name, 0), "failures": failures}
        if name in verdict.names:
            verdict.names[name] = state
    verdict.report = {"target": submission.spec, "defined": defined or [],
                      "conventions": {}, "functions": functions, "partial": True}
