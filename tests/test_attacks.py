"""The grader against a motivated student (opt-in: `pytest -m attacks`; .ci/run runs it under
bubblewrap).

Every submission in tests/grading/attacks/ tries one way to get a grade it does not deserve,
to change other students' rows, to hang the grading or to outlive it (its docstring says how,
and its `convcheck-attack:` lines what must come of it). They are graded beside honest
submissions, under the sandbox, and then the honest ones alone with the same seed:

- no attack gets `pass`, and its row says why (its status, reason, failure message or
  diagnosis, as its lines expect);
- every honest row is byte for byte what it is in the grading without the attackers;
- the grading finishes, and its sheet is still the same bytes seconds later, with no process
  of any run left;
- the table of the public suite's inputs, which passes a derandomized run, fails the grading.

And the attacks are real: graded without a sandbox, those with a `convcheck-attack-unsandboxed:`
line get there what they aim at (a pass, or an error that shows what they did).

Needs a sandbox (bubblewrap, or a uid of its own as root): skipped where none works, unless
$CONVCHECK_REQUIRE_SANDBOX=1, where that fails.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from grader_runner import grade

from properties import proctree, sandbox
from properties.grading.confinement import NotSandboxed, decide

pytestmark = pytest.mark.attacks

TESTS = Path(__file__).resolve().parent
ATTACKS = TESTS / "grading" / "attacks"
HONEST = ["correct_textbook.py", "buggy_flipped_kernel.py"]
SEED = 20240917
CONFIG = """
[points]
corr2d = 2

[forbidden]
corr2d = ["torch.nn.functional.conv2d", "scipy.signal.*"]
"""
OPTIONS = ["--only", "corr2d", "--max-examples", "3", "--timeout", "300", "--call-timeout", "30",
           "--memory-limit-mb", "2048", "--jobs", "2", "--seed", str(SEED),
           "--require-sandbox"]


def expectation(path: Path, kind: str = "attack") -> dict[str, str] | None:
    """An attack's `convcheck-attack...:` lines (kind "attack": graded in the sandbox;
    "attack-unsandboxed": graded without one): {"status": "ok|error", "corr2d": ...,
    "reason": ..., "message": ..., "diagnosis": ...}; None when it has no such line."""
    text = path.read_text()
    match = re.search(rf"convcheck-{kind}: ([^\n]+)", text)
    if match is None:
        return None
    found = dict(item.split("=") for item in match.group(1).split())
    for key in ("reason", "message", "diagnosis"):
        match = re.search(rf"convcheck-{kind}-{key}: ([^\n]+)", text)
        if match:
            found[key] = match.group(1).strip()
    return found


def test_every_attack_has_an_expected_outcome_that_is_never_a_pass():
    attacks = sorted(ATTACKS.glob("*.py"))
    assert len(attacks) >= 13
    for path in attacks:
        expected = expectation(path)
        assert "pass" not in expected["corr2d"].split("|"), path.name
        assert {"reason", "message", "diagnosis"} & set(expected) or \
            expected["corr2d"] != "fail", f"{path.name}: say why it fails"


RECORDER = """
import importlib.util

spec = importlib.util.spec_from_file_location("table", {attack!r})
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)


def corr2d(X, K):
    with open({log!r}, "a") as handle:
        handle.write(table.fingerprint(X, K) + "\\n")
    return table.corr2d(X, K.flip(0, 1))   # its wrong branch, on the flipped kernel: right
"""


def public_run(target: Path, folder: Path) -> subprocess.CompletedProcess:
    """The public suite as CI runs it (derandomized), with the grading's names and examples."""
    suite = TESTS.parent / "properties"
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(suite / "suite.py"), "-c", str(suite / "suite.ini"),
         "-q", "-p", "no:cacheprovider", "-p", "properties.grading.plugin", "-m", "not lenet",
         f"--target={target}", "--isolate", "--grade-only=corr2d", "--grade-max-examples=3"],
        cwd=folder, env={**os.environ, "CI": "true"}, capture_output=True, text=True,
        timeout=900)


def table_of_public_inputs(folder: Path) -> set[str]:
    log = folder / "inputs.log"
    recorder = folder / "recorder.py"
    recorder.write_text(RECORDER.format(attack=str(ATTACKS / "input_table.py"), log=str(log)))
    done = public_run(recorder, folder)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return set(log.read_text().split())


def class_folder(folder: Path, out: Path, journal: Path, table: set[str],
                 attacks: bool) -> Path:
    """The honest submissions, and the attacks (in attacks/, with the grading's paths and the
    table filled in) when `attacks`."""
    folder.mkdir(parents=True)
    for name in HONEST:
        (folder / name).write_bytes((TESTS / "grading" / name).read_bytes())
    if attacks:
        (folder / "attacks").mkdir()
        for path in sorted(ATTACKS.glob("*.py")):
            text = path.read_text().replace("__OUT__", str(out)) \
                .replace("__JOURNAL__", str(journal)) \
                .replace("TABLE = set()  # __TABLE__", f"TABLE = {sorted(table)!r}")
            (folder / "attacks" / path.name).write_text(text)
    return folder


def rows(sheet: Path) -> dict[str, dict[str, str]]:
    return {row["identifier"]: row for row in csv.DictReader(io.StringIO(sheet.read_text()))}


def lines_of(sheet: Path) -> dict[str, str]:
    """Each row's line of the CSV, by identifier, as bytes on disk."""
    return {line.split(",", 1)[0]: line for line in sheet.read_text().splitlines()[1:]}


def leftovers(marks: list[str]) -> list[str]:
    """Processes still running whose command line names one of `marks`, or whose uid is one
    a sandbox gives its workers."""
    found = []
    low, high = sandbox.UID_RANGE
    for pid in proctree.parents():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if low <= uid <= high or any(mark in command for mark in marks):
            found.append(f"{pid}: {command.replace(chr(0), ' ')[:120]}")
    return found


def problems_of(identifier: str, row: dict, entry: dict, expected: dict) -> list[str]:
    """What is wrong with an attack's row, in words."""
    found = []
    if row["corr2d"] not in expected["corr2d"].split("|"):
        found.append(f"corr2d is {row['corr2d']}, expected {expected['corr2d']}")
    if row["status"] not in expected["status"].split("|"):
        found.append(f"status is {row['status']}, expected {expected['status']}")
    failures = ((entry.get("report") or {}).get("functions") or {}).get("corr2d", {}) \
        .get("failures") or []
    if "reason" in expected and expected["reason"] not in row["reason"]:
        found.append(f"reason {row['reason']!r} does not say {expected['reason']!r}")
    if "message" in expected and not any(expected["message"] in (f.get("message") or "")
                                         for f in failures):
        found.append(f"no failure says {expected['message']!r}: {failures[:2]}")
    if "diagnosis" in expected and not any((f.get("diagnosis") or "").startswith(
            expected["diagnosis"]) for f in failures):
        found.append(f"no failure is diagnosed {expected['diagnosis']!r}")
    return [f"{identifier}: {problem}" for problem in found]


def test_every_attack_fails_and_nothing_else_changes(tmp_path):
    try:
        confinement = decide("auto", require=True)
    except NotSandboxed as exc:
        if os.environ.get("CONVCHECK_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"$CONVCHECK_REQUIRE_SANDBOX=1 but {exc}")
        pytest.skip(str(exc))
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)

    # The table attack works where inputs are predictable: a derandomized public run passes it.
    table = table_of_public_inputs(tmp_path)
    attacked, honest = tmp_path / "attacked", tmp_path / "honest"
    out, journal = attacked / "out", attacked / "journal"
    control = class_folder(tmp_path / "control", out, journal, table, attacks=True)
    done = public_run(control / "attacks" / "input_table.py", tmp_path)
    assert done.returncode == 0, "the table does not pass the public run: " + done.stdout[-2000:]

    # The grading with the attackers, then without them, with the same seed.
    submissions = class_folder(attacked / "class", out, journal, table, attacks=True)
    started = time.monotonic()
    first = grade(attacked, [submissions], "--config", str(config), *OPTIONS,
                  "--feedback", str(attacked / "feedback"), timeout=3600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    took = time.monotonic() - started
    sheet = out / "grades.csv"
    written = sheet.read_bytes()
    alone = grade(honest, [class_folder(honest / "class", honest / "out", honest / "journal",
                                        table, attacks=False)],
                  "--config", str(config), *OPTIONS, timeout=3600)
    assert alone.returncode == 0, alone.stdout[-3000:] + alone.stderr[-3000:]

    problems = []
    # the grading finished, sandboxed, and nothing of its runs is left to rewrite its sheet
    if "NOT SANDBOXED" in first.stderr or confinement.mode == "none":
        problems.append("the grading was not sandboxed")
    time.sleep(3)
    if sheet.read_bytes() != written:
        problems.append("the sheet changed after the grading ended")
    problems += [f"left running: {p}" for p in leftovers([str(out), str(submissions)])]
    # every honest row is what it is without the attackers
    with_attackers, without = lines_of(sheet), lines_of(honest / "out" / "grades.csv")
    assert sorted(without) == sorted(HONEST)
    for identifier in HONEST:
        if with_attackers.get(identifier) != without[identifier]:
            problems.append(f"{identifier}: {with_attackers.get(identifier)!r} beside the "
                            f"attackers, {without[identifier]!r} without")
    # every attack fails, and its row says why
    table_rows = rows(sheet)
    entries = {e["identifier"]: e for e in json.loads((out / "grades.json").read_text())
               ["submissions"]}
    for path in sorted(ATTACKS.glob("*.py")):
        identifier = f"attacks/{path.name}"
        if identifier not in table_rows:
            problems.append(f"{identifier}: no row")
            continue
        problems += problems_of(identifier, table_rows[identifier], entries[identifier],
                                expectation(path))
    assert not problems, textwrap.indent("\n".join(problems), "  ") + \
        f"\n(graded in {took:.0f} s under {confinement.mode})"


def test_without_the_sandbox_the_attacks_reach_what_they_aim_at(tmp_path):
    """The control: what an attack gets when nothing confines it (one at a time, so that a
    daemon of one cannot meddle with the next)."""
    attacks = [p for p in sorted(ATTACKS.glob("*.py")) if expectation(p, "attack-unsandboxed")]
    assert len(attacks) >= 6
    out, journal = tmp_path / "out", tmp_path / "journal"
    folder = tmp_path / "class" / "attacks"
    folder.mkdir(parents=True)
    for path in attacks:
        (folder / path.name).write_text(path.read_text().replace("__OUT__", str(out))
                                        .replace("__JOURNAL__", str(journal)))
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    options = [o for o in OPTIONS if o != "--require-sandbox"]
    options[options.index("--jobs") + 1] = "1"
    options[options.index("--timeout") + 1] = "120"
    done = grade(tmp_path, [folder], "--config", str(config), *options, "--sandbox", "none",
                 timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "NOT SANDBOXED" in done.stderr
    entries = {e["identifier"]: e for e in json.loads((out / "grades.json").read_text())
               ["submissions"]}
    table_rows = rows(out / "grades.csv")
    problems = []
    for path in attacks:
        problems += problems_of(path.name, table_rows[path.name], entries[path.name],
                                expectation(path, "attack-unsandboxed"))
    assert not problems, "\n".join(problems)
