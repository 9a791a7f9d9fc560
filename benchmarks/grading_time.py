"""Grading time per honest submission: the whole grader, timed from outside.

    python benchmarks/grading_time.py [--project DIR] [--runs N] [--submission PATH]
                                      [-- GRADER OPTION ...]

Grades one submission (default: tests/grading/correct_textbook.py, a correct d2l chapter) with
`python -m properties.grade SUBMISSION --jobs 1` and the default config, run from PROJECT (default:
this checkout; another checkout, e.g. `git worktree add /tmp/before <commit>`, to compare two
versions), into a fresh output folder and journal each time. Prints each run's wall-clock
seconds, start-up included, and their median. Options after `--` go to the grader
(`-- --sandbox none` to time the same version without its sandbox).

Figures, with the machine and the commits they were taken on, are in docs/benchmarks.md
("Grading time per submission").
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def grade_once(project: Path, submission: Path, extra: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="grading-time-") as scratch:
        args = [sys.executable, "-m", "properties.grade", str(submission), "--jobs", "1",
                "--out", os.path.join(scratch, "out"),
                "--journal", os.path.join(scratch, "journal.jsonl"), "--no-progress", *extra]
        started = time.monotonic()
        done = subprocess.run(args, cwd=project, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(project)})
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"the grading failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return elapsed


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=HERE)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--submission", type=Path,
                        default=HERE / "tests" / "grading" / "correct_textbook.py")
    args = parser.parse_args(argv)
    times = []
    for run in range(args.runs):
        times.append(grade_once(args.project.resolve(), args.submission.resolve(), extra))
        print(f"run {run + 1}: {times[-1]:.1f} s", flush=True)
    print(f"median of {len(times)}: {statistics.median(times):.1f} s per honest submission")


if __name__ == "__main__":
    main()
