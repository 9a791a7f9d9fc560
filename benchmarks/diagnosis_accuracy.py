"""Diagnosis accuracy over the self-test corpus: precision and recall of the named mistakes.
Prints Markdown for docs/benchmarks.md ("Diagnosis accuracy").

    python benchmarks/diagnosis_accuracy.py [--only SUBSTRING] [--jobs N] [--json PATH]

Runs the suite on every corpus target exactly as tests/test_corpus.py does (its TARGETS, its
`pytest --target FILE --report-json` command through tests/suite_runner.py, its example budget
and LeNet selection), `--jobs` targets at a time (each run is serial, `-n 0`, as there), and
reads each report's failures:

- a *named diagnosis* is a distinct (target, contract name, mistake id) among the failures'
  `diagnosis` fields (the first id of the line; "also consistent with: ..." is not counted);
- it is *right* when the target's docstring declares that mistake for that name
  (`convcheck-diagnosis: NAME MISTAKE-ID`), and wrong otherwise: the target declares another
  mistake, declares `none`, declares nothing for that name, or is a correct target;
- *precision* = right named diagnoses / named diagnoses;
- *recall* = declared (target, name, mistake) triples (buggy targets, mistake not `none`) that
  at least one failure of that name names / all such triples.
Every wrong and every missing name is listed, with the failure's property and message.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))

import test_corpus  # noqa: E402  (the corpus, its expectations and how it is run)
from suite_runner import run_suite  # noqa: E402


@dataclass
class Outcome:
    """One target's run: what it declares and what its report names."""
    target: str
    failing: set[str]
    declared: dict[str, str]
    observed: set[str] = field(default_factory=set)
    named: dict[tuple[str, str], dict] = field(default_factory=dict)   # (name, id) -> failure
    seconds: float = 0.0
    error: str = ""


def label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def run_target(path: Path) -> Outcome:
    """The suite on one corpus target, as test_corpus.test_corpus_target_gets_its_verdict."""
    failing, declared = test_corpus.expectations(path)
    outcome = Outcome(label(path), failing, declared)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        run = run_suite(path, Path(folder), "-n", "0", "-p", "properties.grading.plugin",
                        "--grade-max-examples", str(test_corpus.CORPUS_EXAMPLES),
                        *test_corpus.lenet_tests(failing), timeout=test_corpus.RUN_TIMEOUT)
    outcome.seconds = time.perf_counter() - start
    if run.report is None:
        outcome.error = f"no report (exit {run.returncode})"
        return outcome
    return read_report(outcome, run.report)


def read_report(outcome: Outcome, report: dict) -> Outcome:
    """The failing names and the named mistakes (a failure's `mistake`) of one report."""
    outcome.observed = {n for n, f in report["functions"].items() if f["status"] == "fail"}
    for name, entry in report["functions"].items():
        for failure in entry["failures"]:
            if failure.get("mistake"):
                outcome.named.setdefault((name, failure["mistake"]), failure)
    return outcome


def from_reports(folder: Path, paths: list[Path]) -> list[Outcome]:
    """The outcomes of a `pytest -m corpus --basetemp FOLDER` run, read from the report.json
    each corpus test left in its temporary folder (the same runs this script makes)."""
    by_target = {}
    for found in folder.glob("*/*/report.json"):
        report = json.loads(found.read_text())
        by_target[Path(report["target"]).resolve()] = report
    outcomes = []
    for path in paths:
        failing, declared = test_corpus.expectations(path)
        outcome = Outcome(label(path), failing, declared)
        report = by_target.get(path.resolve())
        if report is None:
            outcome.error = "no report in the run"
            outcomes.append(outcome)
        else:
            outcomes.append(read_report(outcome, report))
    return outcomes


def judge(outcomes: list[Outcome]) -> dict:
    """Precision and recall, with every wrong and every missing name."""
    right, wrong, missing, declared_total = [], [], [], 0
    for o in outcomes:
        for (name, mistake), failure in sorted(o.named.items()):
            wanted = o.declared.get(name)
            if wanted == mistake:
                right.append((o.target, name, mistake))
                continue
            why = ("a correct target" if not o.failing and o.target.startswith("correct/")
                   else "declares none" if wanted == "none"
                   else f"declares {wanted}" if wanted else "declares no diagnosis for it")
            wrong.append({"target": o.target, "name": name, "named": mistake, "why": why,
                          "property": failure["property"],
                          "message": failure["message"][:160]})
        for name, mistake in sorted(o.declared.items()):
            if mistake == "none":
                continue
            declared_total += 1
            if (name, mistake) not in o.named:
                shown = sorted(m for n, m in o.named if n == name)
                missing.append({"target": o.target, "name": name, "declared": mistake,
                                "named instead": ", ".join(shown) or "nothing"})
    named = len(right) + len(wrong)
    return {"named": named, "right": len(right), "wrong": wrong, "missing": missing,
            "declared": declared_total,
            "precision": len(right) / named if named else float("nan"),
            "recall": (declared_total - len(missing)) / declared_total if declared_total
            else float("nan")}


def rejudged(recorded: dict, paths: list[Path]) -> list[Outcome]:
    """The outcomes of a previous run (its --json), with each target's declarations read
    again from its file: for checking a corrected declaration without running the suite."""
    by_label = {o["target"]: o for o in recorded["outcomes"]}
    outcomes = []
    for path in paths:
        if label(path) not in by_label:
            continue
        o = by_label[label(path)]
        failing, declared = test_corpus.expectations(path)
        outcome = Outcome(o["target"], failing, declared, set(o["observed"]),
                          seconds=o["seconds"], error=o["error"])
        for name, mistake, prop, message in o["named"]:
            outcome.named[(name, mistake)] = {"property": prop, "message": message}
        outcomes.append(outcome)
    return outcomes


def verdict_problems(outcomes: list[Outcome]) -> list[str]:
    """Targets whose failing names differ from what they declare (test_corpus would fail)."""
    return [f"{o.target}: expected failing {sorted(o.failing)}, observed {sorted(o.observed)}"
            + (f" ({o.error})" if o.error else "")
            for o in outcomes if o.error or o.observed != o.failing]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="only targets whose label contains this")
    parser.add_argument("--json", help="also write the outcomes and figures here")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at the same time")
    parser.add_argument("--from-json", help="no runs: judge the failures a previous --json "
                        "recorded against the declarations as they are now")
    parser.add_argument("--from-reports", metavar="BASETEMP",
                        help="no runs: judge the reports a `pytest -m corpus --basetemp "
                             "BASETEMP` run left")
    options = parser.parse_args()
    paths = [p for p in test_corpus.TARGETS if options.only in label(p)]
    if options.from_json:
        outcomes = rejudged(json.loads(Path(options.from_json).read_text()), paths)
    elif options.from_reports:
        outcomes = from_reports(Path(options.from_reports), paths)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=options.jobs) as pool:
            futures = [pool.submit(run_target, path) for path in paths]
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                print(f"<!-- {outcome.target}: {outcome.seconds:.0f} s, named "
                      f"{sorted(outcome.named) or 'nothing'} -->", flush=True)
        outcomes = [future.result() for future in futures]
    figures = judge(outcomes)
    print("\n## Diagnosis accuracy\n")
    print(f"Measured by `benchmarks/diagnosis_accuracy.py` over {len(outcomes)} corpus targets "
          f"(the `ci` profile, {test_corpus.CORPUS_EXAMPLES} examples per property, as "
          "`tests/test_corpus.py` runs them).\n")
    print(f"- **Precision {figures['precision']:.1%}**: {figures['right']} of "
          f"{figures['named']} named diagnoses (distinct target, name, mistake) are the "
          "declared one.")
    print(f"- **Recall {figures['recall']:.1%}**: {figures['declared'] - len(figures['missing'])}"
          f" of {figures['declared']} declared mistakes are named by at least one failure.\n")
    print("Wrong names:\n")
    print("| target | name | named | why wrong | property: message |\n|---|---|---|---|---|")
    for w in figures["wrong"]:
        print(f"| {w['target']} | {w['name']} | {w['named']} | {w['why']} | "
              f"{w['property']}: {w['message'].replace('|', '/')} |")
    print("\nMissing names:\n")
    print("| target | name | declared | named instead |\n|---|---|---|---|")
    for m in figures["missing"]:
        print(f"| {m['target']} | {m['name']} | {m['declared']} | {m['named instead']} |")
    problems = verdict_problems(outcomes)
    if problems:
        print("\nVerdicts that differ from the declared ones:\n")
        for line in problems:
            print(f"- {line}")
    if options.json:
        Path(options.json).write_text(json.dumps({
            "figures": figures,
            "outcomes": [{"target": o.target, "failing": sorted(o.failing),
                          "observed": sorted(o.observed), "declared": o.declared,
                          "named": [[*k, o.named[k]["property"], o.named[k]["message"]]
                                    for k in sorted(o.named)],
                          "seconds": round(o.seconds, 1), "error": o.error}
                         for o in outcomes]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
