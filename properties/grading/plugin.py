"""The grader's pytest plugin, loaded into the judge with `-p properties.grading.plugin`.

It adds four options, all used by `python -m properties.grade` only:

--grade-only NAME        run only the properties about contract name NAME (repeatable);
                         the others are deselected, so a grade sheet that leaves a name out
                         does not pay for its properties.
--grade-max-examples N   Hypothesis examples per property (the `ci` profile with
                         max_examples=N), for quick grading and for the grader's tests.
--grade-events PATH      the run's own record, one JSON object per line, flushed as it goes:
                         {"event": "collected", "defined": [...], "items": {name: count}}
                         {"event": "test", "subject": ..., "culprit": ..., "outcome": ...,
                          "failure": {...} | null}
                         {"event": "finished", "exitstatus": N, "report_hmac": ...,
                          "events_hmac": ...}
                         or, when the target could not be loaded (a usage error, no test ran):
                         {"event": "load-error", "kind": "error" | "timeout" | "crash",
                          "message": ...}
                         The grader reads it to keep the names a run finished when the run
                         is stopped at its time limit, and to cross-check --report-json.
--grade-secrets-stdin    read the run's secrets from standard input (one JSON line:
                         {"key": ..., "seed": N | null}) before the target's worker exists.
                         The key signs (HMAC-SHA256) the report (its canonical JSON:
                         sort_keys, compact) and the record's earlier lines, in the
                         "finished" event: only the grader and this process know it, so a
                         report or record written over by anyone else, even after the run,
                         no longer matches (`report_signature`). The seed, when given, is the
                         grading's secret seed: Hypothesis draws every property's inputs from
                         it (not derandomized), so a submission cannot know them in advance.

Everything here runs in the judge (the pytest process), never in the target's worker: the
worker is started by the convcheck plugin's pytest_configure (properties.session), after this
plugin's (tryfirst) one has read the secrets, made the judge a child subreaper (processes that
leave the worker's tree are adopted here, then by the grader: grade_reaper) and imported
everything the judge will need (PRELOADED), so nothing the worker could plant is imported
later, whatever the sandbox lets it write.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest

from properties.contract import TRAINED_NAMES
from properties.grading import reaper
from properties.grading.safefile import create_new
from properties.outcomes import FAILURE_FIELDS, outcome_of

GRADE_PROFILE = "convcheck-grade"


def pytest_addoption(parser):
    group = parser.getgroup("convcheck-grade", "convcheck grader (python -m properties.grade)")
    group.addoption("--grade-only", action="append", default=[], metavar="NAME",
                    help="run only the properties about contract name NAME (repeatable)")
    group.addoption("--grade-max-examples", type=int, default=None, metavar="N",
                    help="Hypothesis examples per property (derandomized ci profile)")
    group.addoption("--grade-events", default=None, metavar="PATH",
                    help="append the run's record to PATH as JSON lines")
    group.addoption("--grade-secrets-stdin", action="store_true",
                    help="read a signing key and a seed from stdin (one JSON line)")


def canonical_json(value) -> bytes:
    """The bytes a report is signed as: key order and spacing do not matter."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def report_signature(key: bytes, report) -> str:
    return hmac.new(key, canonical_json(report), hashlib.sha256).hexdigest()


def events_signature(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _read_secrets() -> dict:
    """The JSON line on file descriptor 0, read to its end."""
    chunks = []
    while True:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    try:
        secrets = json.loads(b"".join(chunks))
    except json.JSONDecodeError:
        raise pytest.UsageError("--grade-secrets-stdin: standard input is not one JSON "
                                "object") from None
    if not isinstance(secrets, dict) or not isinstance(secrets.get("key"), str):
        raise pytest.UsageError("--grade-secrets-stdin: no key on standard input")
    return secrets


#: Modules the judge would otherwise import only after the worker started (the properties,
#: their oracles' scipy parts, and what pytest and Hypothesis load on a failure).
PRELOADED = ("properties.suite", "properties.catalog", "scipy.signal", "scipy.ndimage",
             "pdb", "code", "codeop", "cmd", "fileinput", "pydoc", "secrets")


def _preload() -> None:
    import importlib
    for name in PRELOADED:
        importlib.import_module(name)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    secrets = _read_secrets() if config.getoption("--grade-secrets-stdin") else {}
    key = secrets["key"].encode() if secrets else None
    if secrets:
        reaper.become_subreaper()
        _preload()
    elif config.getoption("--grade-events"):
        import properties.catalog  # noqa: F401
    examples = config.getoption("--grade-max-examples")
    seed = secrets.get("seed")
    if examples is not None or seed is not None:
        from hypothesis import settings

        # The suite's profiles, loaded now: importing them later (properties.session does)
        # would load `ci` over the profile loaded here.
        import properties.profiles  # noqa: F401
        changes = {} if examples is None else {"max_examples": max(1, examples)}
        if seed is not None:
            changes["derandomize"] = False
            config.option.hypothesis_seed = str(seed)  # applied by Hypothesis's own plugin
        settings.register_profile(GRADE_PROFILE, settings.get_profile("ci"), **changes)
        settings.load_profile(GRADE_PROFILE)
    path = config.getoption("--grade-events")
    if path:
        config.pluginmanager.register(EventLog(path, key), "convcheck-grade-events")


def item_subject(item) -> str | None:
    """The contract name a collected test is about (None for tests about no name)."""
    prop = getattr(getattr(item, "callspec", None), "params", {}).get("prop")
    subject = getattr(prop, "subject", None)
    return subject or getattr(getattr(item, "function", None), "convcheck_subject", None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    only = set(config.getoption("--grade-only"))
    if not only:
        return
    def graded(item) -> bool:
        # The LeNet checks of other names' layers are not graded (they train networks: slow).
        return item_subject(item) in only and (item.get_closest_marker("lenet") is None
                                                or item_subject(item) in TRAINED_NAMES)
    kept = [item for item in items if graded(item)]
    dropped = [item for item in items if not graded(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


class EventLog:
    """Writes the run's record (see the module docstring) as JSON lines."""

    def __init__(self, path: str, key: bytes | None = None):
        self.handle = create_new(path)  # closed at the end; nothing planted there is followed
        self.key = key
        self.written = bytearray()

    def write(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        self.written += line
        self.handle.write(line)
        self.handle.flush()

    def pytest_collection_finish(self, session):
        counts: dict[str, int] = {}
        for item in session.items:
            subject = item_subject(item)
            if subject is not None:
                counts[subject] = counts.get(subject, 0) + 1
        target = getattr(session.config, "convcheck_target", None)
        self.write({"event": "collected", "items": counts,
                    "defined": list(getattr(target, "defined", []))})

    def pytest_runtest_logreport(self, report):
        found = outcome_of(report)  # what properties.report counts, read the same way
        if found is None or not found.counted:
            return
        self.write({"event": "test", "subject": found.subject, "culprit": found.culprit,
                    "outcome": found.outcome,
                    "failure": None if found.failure is None else
                    {k: found.failure.get(k) for k in FAILURE_FIELDS}})

    def pytest_unconfigure(self, config):
        """A target that could not be loaded ends the run before any test (a usage error):
        the record says so, with what happened (properties.contract.TargetLoadError.kind)."""
        problem = getattr(config, "convcheck_load_error", None)
        if problem is not None and not self.handle.closed:
            self.write({"event": "load-error", **problem})
            self.handle.close()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        record = {"event": "finished", "exitstatus": int(exitstatus)}
        collector = getattr(session.config, "convcheck_report", None)
        if self.key is not None:
            record["events_hmac"] = events_signature(self.key, bytes(self.written))
            if collector is not None:
                record["report_hmac"] = report_signature(self.key, collector.as_json())
        self.write(record)
        self.handle.close()
