"""Measure the suite's speed budgets and print a Markdown section for docs/benchmarks.md.

    python benchmarks/suite_timing.py [--repeat N] [--jobs 2] [--skip-corpus] [--skip-selftests]
                                      [--corpus-only] [--corpus-repeat N] [--only SUBSTRING]

Measures (wall clock, this machine, the default `dev` profile unless CI is set):
- `pytest -n JOBS --target reference` and `--target torch`, as a user runs them (the
  properties and the LeNet checks of the target's layers); the LeNet group, serially, as
  `pytest -m lenet` and `pytest -m lenet --target torch`; and plain `pytest -n JOBS` (the
  README's test command: the suite's self-tests as well; no budget);
- for each buggy corpus target, the time from process start to the first failure under `-x`,
  `--corpus-repeat` times, each run in a fresh empty working folder (so no Hypothesis example
  database replays an earlier run's failure: every run is a first run), and the worst case;
- the slowest single tests (pytest --durations) of the reference and torch runs.
Timed here, never as tests: the machines are shared and noisy, so figures are medians.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path = PROJECT) -> tuple[float, str, int]:
    seconds, _, output, code = run_cpu(args, cwd)
    return seconds, output, code


def run_cpu(args: list[str], cwd: Path = PROJECT) -> tuple[float, float, str, int]:
    """(wall seconds, CPU seconds of the pytest process: user + system, output, exit)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, done.stdout + done.stderr, done.returncode


def first_failure(path: Path) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, exit code, failing test) of `pytest -x --target PATH` run
    from a fresh empty folder: Hypothesis keeps failing examples in .hypothesis/ under the
    working folder and replays them first, which would time a replay instead of a search.
    The CPU seconds do not grow with the machine's load as the wall clock does."""
    with tempfile.TemporaryDirectory() as folder:
        seconds, cpu, output, code = run_cpu(["-q", "-x", "-rf", str(PROJECT / "tests" /
                                                                     "test_properties.py"),
                                              "--target", str(path)], cwd=Path(folder))
    failed = re.findall(r"^FAILED \S+::test_property\[cpu-(.*?)\]", output, flags=re.M)
    return seconds, cpu, code, failed[0] if failed else ""


def machine() -> str:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import torch
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), Python "
            f"{platform.python_version()}, torch {torch.__version__}")


def durations(output: str, top: int = 5) -> list[tuple[float, str]]:
    rows = re.findall(r"^([\d.]+)s call\s+(\S.*)$", output, flags=re.M)
    return sorted(((float(s), name) for s, name in rows), reverse=True)[:top]


def timed_runs(args: list[str], repeat: int) -> tuple[list[float], set[int], str]:
    """Wall times and exit codes of `repeat` runs of pytest ARGS, and the last run's output."""
    times, codes, output = [], set(), ""
    for _ in range(repeat):
        seconds, output, code = run(args)
        times.append(seconds)
        codes.add(code)
    return times, codes, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", default="2")
    parser.add_argument("--skip-corpus", action="store_true")
    parser.add_argument("--skip-selftests", action="store_true")
    parser.add_argument("--corpus-only", action="store_true",
                        help="only the time to the first failure of each buggy target")
    parser.add_argument("--corpus-repeat", type=int, default=1,
                        help="runs per buggy target (its median and worst are reported)")
    parser.add_argument("--only", default="",
                        help="only the buggy targets whose file name contains this")
    options = parser.parse_args()
    print(f"## Suite speed\n\nMeasured by `benchmarks/suite_timing.py` on {machine()}; "
          f"profile {'ci' if os.environ.get('CI') else 'dev'}; medians of {options.repeat} "
          "runs.\n")
    commands = [] if options.corpus_only else [["-n", options.jobs, "--target", "reference"],
                ["-n", options.jobs, "--target", "torch"],
                ["-m", "lenet"],  # serial: the LeNet group's own budget (issue 4)
                ["-m", "lenet", "--target", "torch"]]
    if commands and not options.skip_selftests:
        commands.append(["-n", options.jobs])  # the README's test command, self-tests included
    if commands:
        print("| command | median wall (s) | runs (s) | exit |\n|---|---|---|---|")
    slowest: list[tuple[float, str]] = []
    for command in commands:
        times, codes, output = timed_runs(["-q", *command, "--durations=8"], options.repeat)
        if "--target" in command:
            slowest = sorted(slowest + durations(output), reverse=True)[:8]
        shown = " ".join(["pytest", *command])
        print(f"| `{shown}` | {statistics.median(times):.1f} | "
              f"{', '.join(f'{t:.1f}' for t in times)} | {sorted(codes)} |")
    if slowest:
        print("\nSlowest single tests of the runs with a target (last run of each):\n")
    for seconds, name in slowest:
        print(f"- {seconds:.2f} s `{name}`")
    if options.skip_corpus:
        return 0
    print("\n### Time to the first failure (`pytest -x --target BUGGY`)\n")
    print(f"{options.corpus_repeat} run(s) per target, each from a fresh empty folder; load "
          f"average at the start {os.getloadavg()[0]:.1f}.\n")
    print("| buggy target | median (s) | worst (s) | runs (s) | worst CPU (s) | exit | "
          "first failing property |\n|---|---|---|---|---|---|---|")
    medians, worst, worst_cpu = [], (0.0, ""), (0.0, "")
    for path in sorted((PROJECT / "tests" / "corpus" / "buggy").glob("*.py")):
        if options.only not in path.name:
            continue
        runs = [first_failure(path) for _ in range(options.corpus_repeat)]
        times = [seconds for seconds, _, _, _ in runs]
        cpus = [cpu for _, cpu, _, _ in runs]
        medians.append(statistics.median(times))
        worst = max(worst, (max(times), path.name))
        worst_cpu = max(worst_cpu, (max(cpus), path.name))
        failed = sorted({name for _, _, _, name in runs})
        print(f"| {path.name} | {statistics.median(times):.1f} | {max(times):.1f} | "
              f"{', '.join(f'{t:.1f}' for t in times)} | {max(cpus):.1f} | "
              f"{sorted({c for _, _, c, _ in runs})} | {'; '.join(failed)} |", flush=True)
    if medians:
        print(f"\nMedian {statistics.median(medians):.1f} s (of the per-target medians), worst "
              f"case {worst[0]:.1f} s ({worst[1]}) over {len(medians)} buggy targets; worst "
              f"CPU time {worst_cpu[0]:.1f} s ({worst_cpu[1]}); load average at the end "
              f"{os.getloadavg()[0]:.1f}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
