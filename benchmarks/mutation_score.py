"""Mutation score of the suite over `reference/` (mutmut), on a fixed sample of the mutants.

    python benchmarks/mutation_score.py [--every 10] [--max-children 2]

mutmut (configured in pyproject.toml, `[tool.mutmut]`) mutates the naive reference package and
runs, for each mutant, the tests that cover the mutated function: the properties with the
reference as target, the reference's own tests against torch and scipy, and the LeNet tests.
A mutant is killed when some test fails. All ~2,400 mutants take hours on two cores, so this
script runs the mutants whose name hashes to 0 modulo EVERY (a fixed sample, the same on every
machine and run) and prints a Markdown section for docs/benchmarks.md: the score, by file, and
every surviving mutant's diff. `mutmut run` without names runs them all.

It starts from an empty mutants/ folder: mutmut 3.8's incremental update of which tests cover
which function, after the tests changed, lost most of that map and reported hundreds of
covered mutants as "no tests" (see also the settings in pyproject.toml).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"(reference\.\S+__mutmut_\d+)")
MUTANT_DEF = re.compile(r"^\s*def (x\S+?__mutmut_\d+)\(", re.M)


def mutmut(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=PROJECT,
                          capture_output=True, text=True, env={**os.environ, "CI": "true"})
    return done.stdout


def all_mutants() -> dict[str, str]:
    """Every mutant's name -> its source file (reference/...py), read from the mutated copy
    of reference/ in mutants/, which `mutmut run` with a name that matches no mutant generates
    (with the map of which tests cover which function) before it stops. (`mutmut
    print-time-estimates` would list them too, but mutmut 3.8 empties that map on the way.)"""
    mutmut("run", "reference.generate-and-collect-only")
    names = {}
    for path in sorted((PROJECT / "mutants" / "reference").glob("*.py")):
        module = "reference" if path.stem == "__init__" else f"reference.{path.stem}"
        for mutant in MUTANT_DEF.findall(path.read_text(encoding="utf-8")):
            names[f"{module}.{mutant}"] = f"reference/{path.name}"
    if not names:
        raise SystemExit("mutmut generated no mutants (run `mutmut run` to see why)")
    return names


def in_sample(name: str, every: int) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % every == 0


def statuses() -> dict[str, str]:
    """mutant name -> killed / survived / no tests / timeout / ... (mutmut's words)."""
    found = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if NAME.fullmatch(name):
            found[name] = status
    return found


def rerun_outside_mutmut(name: str, seconds: float = 600) -> str:
    """A "timeout" re-run by hand: the mutant's covering tests under `pytest -x` in mutants/
    with MUTANT_UNDER_TEST set, outside mutmut's forked worker. mutmut 3.8 files any worker
    that exits with status 255 as a timeout; the first such mutant examined by hand
    (reference.functional.x_max_pool2d__mutmut_24) failed a property in 4 s in a plain run.
    Returns "killed", "survived" or "timeout" (still running after `seconds`)."""
    tests = [line.strip() for line in mutmut("tests-for-mutant", name).splitlines()
             if "::" in line]
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly",
                               "-p", "no:cacheprovider", *tests], cwd=PROJECT / "mutants",
                              env={**os.environ, "CI": "true", "MUTANT_UNDER_TEST": name},
                              capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        return "timeout"
    return {0: "survived", 1: "killed"}.get(done.returncode, "timeout")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--max-children", default="2")
    options = parser.parse_args()
    shutil.rmtree(PROJECT / "mutants", ignore_errors=True)
    names = all_mutants()
    sample = sorted(n for n in names if in_sample(n, options.every))
    mutmut("run", "--max-children", options.max_children, *sample)
    status = statuses()
    rerun = {n: rerun_outside_mutmut(n) for n in sample if status.get(n) == "timeout"}
    status.update(rerun)
    counts = Counter(status.get(n, "not checked") for n in sample)
    killed = counts["killed"] + counts["timeout"]
    print(f"## Mutation score\n\n`python benchmarks/mutation_score.py --every {options.every}`: "
          f"{len(sample)} of the {len(names)} mutants of `reference/` (those whose name hashes "
          f"to 0 modulo {options.every}).\n")
    print(f"**Score: {killed}/{len(sample)} = {killed / len(sample):.1%}** killed "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}; a real timeout "
          f"counts as killed). mutmut reported {len(rerun)} timeouts; re-run outside its "
          f"worker they were: {dict(Counter(rerun.values()))}.\n")
    print("| file | sampled | killed | survived | not covered |\n|---|---|---|---|---|")
    by_file: dict[str, Counter] = {}
    for n in sample:
        by_file.setdefault(names[n], Counter())[status.get(n, "not checked")] += 1
    for path, c in sorted(by_file.items()):
        print(f"| {path} | {sum(c.values())} | {c['killed'] + c['timeout']} | {c['survived']} "
              f"| {c['no tests']} |")
    survivors = [n for n in sample if status.get(n) in ("survived", "no tests")]
    print("\n### Surviving mutants\n")
    for n in survivors:
        diff = [line for line in mutmut("show", n).splitlines()
                if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        print(f"- `{n}` ({status[n]})\n\n  ```diff\n" +
              "\n".join(f"  {line}" for line in diff) + "\n  ```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
