"""Time of the in-notebook check (`convcheck.check()`, properties.live) of every textbook name.

    python benchmarks/notebook_check.py [--runs N] [--notebook PATH] [--thorough]

Loads the definitions of a d2l chapter-6 notebook (default: tests/notebooks/d2l_chapter6.ipynb,
a correct one) the way `convcheck NOTEBOOK` does, into a dict standing for a kernel's globals,
then times `convcheck.check(namespace=...)` N times in this process (default 5): the first check
and the next ones, as a student who checks after every edit runs it. `import convcheck` (the
suite, torch and scipy) is timed apart: the issue's budget (5 s) is for a check once the suite
is imported. Pictures are not drawn (a correct notebook has no failure to draw).

Prints the machine's load average before and after (wall-clock figures mean little on a busy
machine), each run's wall-clock and CPU seconds of this process (the check runs on one
thread: on an idle machine its wall-clock time is its CPU time), their medians, and what each
name got.
Figures, with the machine and commit they were taken on, are in docs/benchmarks.md
("The in-notebook check").
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
TEXTBOOK_NAMES = ("corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
                  "pool2d", "batch_norm", "Conv2D", "BatchNorm")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--notebook", type=Path,
                        default=HERE / "tests" / "notebooks" / "d2l_chapter6.ipynb")
    parser.add_argument("--thorough", action="store_true",
                        help="check(thorough=True): the profile's full budget")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    started = time.perf_counter()
    import convcheck
    from properties import contract
    print(f"import convcheck: {time.perf_counter() - started:.1f} s")
    namespace = dict(contract.load(str(args.notebook.resolve())).namespace)
    namespace["__name__"] = "notebook"
    missing = [n for n in TEXTBOOK_NAMES if n not in namespace]
    if missing:
        raise SystemExit(f"{args.notebook} does not define {', '.join(missing)}")
    times, cpus = [], []
    for run in range(args.runs):
        started, cpu = time.perf_counter(), time.process_time()
        result = convcheck.check(namespace=namespace, thorough=args.thorough, figures=False)
        times.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        statuses = {n: result.report["functions"][n]["status"] for n in TEXTBOOK_NAMES}
        print(f"run {run + 1}: {times[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU  "
              + " ".join(f"{n}={s}" for n, s in statuses.items()), flush=True)
    print(f"median of {len(times)}: {statistics.median(times):.2f} s wall, "
          f"{statistics.median(cpus):.2f} s CPU "
          f"({'thorough' if args.thorough else 'quick'} check of {len(TEXTBOOK_NAMES)} names)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
