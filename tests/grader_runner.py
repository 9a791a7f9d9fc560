"""Run the grader as an instructor would, in a subprocess, on a frozen copy of the suite."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from properties.grading.watch import SuiteSnapshot

PROJECT = Path(__file__).resolve().parent.parent

#: The grader's entry point, plus a check that grading imported no torch (the grader reads
#: reports; only the judges it starts import the suite).
GRADER = ("import sys; from properties.grading.cli import main; status = main(sys.argv[1:]); "
          "sys.stderr.write('THE GRADER IMPORTED TORCH' if 'torch' in sys.modules else ''); "
          "sys.exit(status)")


@dataclass
class Grading:
    returncode: int
    stdout: str
    stderr: str
    out: Path


def grade(tmp_path: Path, paths, *extra: str, env: dict | None = None,
          timeout: float = 1800, wrapper: list[str] = (), **popen) -> Grading:
    """`python -m properties.grade PATHS --out TMP/out --journal TMP/journal EXTRA` from a copy
    of the suite in TMP/project (others may be editing the project meanwhile: a resumed run
    must see the same suite to reuse its journal); `wrapper` is a command to run it under."""
    Path(tmp_path).mkdir(parents=True, exist_ok=True)
    project = Path(tmp_path) / "project"
    if not project.is_dir():
        SuiteSnapshot(PROJECT).write_to(project)
    out = Path(tmp_path) / "out"
    args = [*map(str, paths), "--out", str(out), "--journal", str(Path(tmp_path) / "journal"),
            "--no-progress", *extra]
    environment = {**os.environ, "PYTHONPATH": str(project), **(env or {})}
    done = subprocess.run([*wrapper, sys.executable, "-c", GRADER, *args], cwd=project,
                          env=environment,
                          capture_output=True, text=True, timeout=timeout, **popen)
    assert "THE GRADER IMPORTED TORCH" not in done.stderr
    return Grading(done.returncode, done.stdout, done.stderr, out)
