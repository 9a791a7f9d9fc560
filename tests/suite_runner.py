"""Run the suite on a target in a subprocess, as a user would, and read its --report-json."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class SuiteRun:
    returncode: int
    output: str
    report: dict | None

    def status(self, name: str) -> str:
        return self.report["functions"][name]["status"]

    def failed_names(self) -> set[str]:
        return {n for n, f in self.report["functions"].items() if f["status"] == "fail"}


def run_suite(target: str | os.PathLike, tmp_path: Path, *extra: str,
              env: dict | None = None, timeout: float = 600,
              tests: str = "test_properties.py") -> SuiteRun:
    """`pytest tests/TESTS --target TARGET --report-json ...` in a subprocess."""
    report = Path(tmp_path) / "report.json"
    command = [sys.executable, "-m", "pytest", str(PROJECT / "tests" / tests),
               "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--target", str(target),
               "--report-json", str(report), *extra]
    environment = {**os.environ, "CI": "true", **(env or {})}
    environment.pop("CONVCHECK_TARGET", None) if env is None or "CONVCHECK_TARGET" not in env \
        else None
    done = subprocess.run(command, cwd=PROJECT, env=environment, capture_output=True, text=True,
                          timeout=timeout)
    data = json.loads(report.read_text()) if report.exists() else None
    return SuiteRun(done.returncode, done.stdout + done.stderr, data)


def write_target(tmp_path: Path, source: str, name: str = "target.py") -> Path:
    path = Path(tmp_path) / name
    path.write_text(source)
    return path
