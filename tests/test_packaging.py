"""The wheel, as a user gets it: built from a copy of the project, installed (not editable)
into a fresh virtual environment, and used from folders outside the project — `convcheck
../x/student.py`, `convcheck nb.ipynb`, `convcheck grade subs/*` — and as Gradescope uses it
(docs/gradescope/setup.sh and run_autograder).

Marked `packaging` and left out of the default run (it installs torch into a new environment:
minutes, and the package registry); `.ci/run` runs it as its own step:
`python -m pytest -m packaging`.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from properties.contract import ASSIGNMENTS

pytestmark = pytest.mark.packaging

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT / "tests" / "grading"
#: What a fresh clone does not have.
NOT_IN_A_CLONE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build",
                                        "dist", ".hypothesis", ".pytest_cache", ".tox",
                                        "mutants", ".ruff_cache")


@dataclass
class Installed:
    wheel: Path
    venv: Path
    work: Path           # a folder outside the project for the runs

    def env(self) -> dict[str, str]:
        """The caller's environment with the new venv first on PATH and nothing pointing at
        the project or choosing a target; AUTOGRADER for the Gradescope scripts."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CONVCHECK_TARGET", "PYTHONHOME",
                            "TORCH_INDEX")
               and not k.startswith("PYTEST_")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["CI"] = "true"
        env["AUTOGRADER"] = str(self.venv.parent)
        return env

    def run(self, cwd: Path, *command: str, timeout: float = 900):
        return subprocess.run(list(command), cwd=cwd, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python3*/site-packages"))


def _check(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """`pip install .` as a user does it, in two steps so the wheel can be inspected: the wheel
    built from a copy of the project, then installed into a fresh venv with torch pinned — by
    docs/gradescope/setup.sh, in a folder laid out as Gradescope's /autograder, so the same
    install also proves the Gradescope scripts."""
    work = tmp_path_factory.mktemp("packaging")
    clone = work / "clone"
    shutil.copytree(PROJECT, clone, ignore=NOT_IN_A_CLONE)
    source = work / "autograder" / "source"
    _check(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(source), str(clone)], capture_output=True, text=True,
                          timeout=900))
    wheel, = source.glob("convcheck-*.whl")
    for script in ("setup.sh", "run_autograder"):
        shutil.copy(clone / "docs" / "gradescope" / script, source / script)
    shutil.rmtree(clone)
    installed = Installed(wheel=wheel, venv=work / "autograder" / "venv",
                          work=work / "elsewhere")
    installed.work.mkdir()
    _check(installed.run(work, "bash", str(source / "setup.sh"), timeout=1800))
    return installed


def test_the_wheel_holds_the_suite_its_configuration_and_the_grading_scheme(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for needed in ("properties/suite.py", "properties/suite.ini", "properties/plugin.py",
                   "properties/cli.py", "properties/grading/grading.toml",
                   "properties/diagnosis/core.py", "reference/textbook.py"):
        assert needed in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "convcheck = properties.cli:main" in text
    assert "convcheck = properties.plugin" in text
    done = installed.run(installed.work, "python", "-c",
                         "import properties; print(properties.__file__)")
    _check(done)
    assert Path(done.stdout.strip()).parent == installed.site_packages() / "properties"


def _card(output: str) -> dict[str, str]:
    """The report card's status per name."""
    return dict(re.findall(r"^(\w+) {2,}(pass|FAIL|missing)\b", output, re.M))


def test_convcheck_a_file_in_another_folder(installed):
    (installed.work / "x").mkdir()
    shutil.copy(FIXTURES / "correct_textbook.py", installed.work / "x" / "student.py")
    empty = installed.work / "empty"
    empty.mkdir()
    before = sorted(p.name for p in (installed.site_packages() / "properties").iterdir())
    done = installed.run(empty, "convcheck", "../x/student.py")
    _check(done)
    card = _card(done.stdout)
    assert card["corr2d"] == card["corr2d_multi_in"] == card["pool2d"] == "pass", done.stdout
    assert card["conv2d"] == "missing"
    assert "convcheck target: ../x/student.py" in done.stdout
    # nothing written into the installed package (pytest's cache goes to the current folder)
    after = sorted(p.name for p in (installed.site_packages() / "properties").iterdir())
    assert after == before
    assert (empty / ".pytest_cache").is_dir()


def test_convcheck_a_notebook(installed):
    folder = installed.work / "notebook"
    folder.mkdir()
    shutil.copy(FIXTURES / "notebooks" / "buggy_kernel_height.ipynb", folder / "nb.ipynb")
    done = installed.run(folder, "convcheck", "nb.ipynb")
    assert done.returncode == 1, (done.stdout + done.stderr)[-4000:]
    card = _card(done.stdout)
    assert card["corr2d"] == "FAIL" and card["pool2d"] == "pass", done.stdout
    assert re.search(r"^corr2d .*kernel-height-for-width", done.stdout, re.M)


GRADED = {"correct_textbook.py": "correct.py", "buggy_flipped_kernel.py": "flipped.py",
          "unimportable_syntax.py": "syntax.py"}


def test_convcheck_grade_with_the_shipped_scheme(installed):
    folder = installed.work / "class"
    (folder / "subs").mkdir(parents=True)
    for fixture, name in GRADED.items():
        shutil.copy(FIXTURES / fixture, folder / "subs" / name)
    submissions = sorted(f"subs/{name}" for name in GRADED.values())  # subs/*, as a shell
    done = installed.run(folder, "convcheck", "grade", *submissions, "--max-examples", "5",
                         "--journal", str(installed.work / "journal.jsonl"), "--no-progress",
                         "--feedback", "feedback")
    _check(done)
    rows = {r["identifier"]: r for r in csv.DictReader(open(folder / "grades.csv"))}
    # the default scheme is the packaged grading.toml: the names of its assignment
    scheme = tomllib.loads((PROJECT / "properties" / "grading" / "grading.toml").read_text())
    graded = {n: p for n, p in scheme["points"].items()
              if n in ASSIGNMENTS[scheme["assignment"]]}
    header = list(next(iter(rows.values())))
    assert header[1:header.index("points")] == list(graded)
    assert {r["total"] for r in rows.values()} == {f"{sum(graded.values()):g}"}
    correct, flipped, syntax = rows["correct.py"], rows["flipped.py"], rows["syntax.py"]
    assert (correct["corr2d"], correct["pool2d"], correct["status"]) == ("pass", "pass", "ok")
    assert (flipped["corr2d"], flipped["status"]) == ("fail", "ok")
    assert syntax["status"] == "error" and "SyntaxError" in syntax["reason"]
    feedback = (folder / "feedback" / "flipped.py.md").read_text()
    assert "fail: flipped-kernel" in feedback


def test_the_gradescope_scripts_grade_a_submission(installed):
    """run_autograder, as Gradescope runs it once per submission, on a buggy notebook:
    results.json with a test per graded name, corr2d failed with its mistake named."""
    root = installed.venv.parent
    (root / "submission").mkdir()
    shutil.copy(FIXTURES / "notebooks" / "buggy_kernel_height.ipynb",
                root / "submission" / "hw6.ipynb")
    _check(installed.run(installed.work, "bash", str(root / "source" / "run_autograder")))
    data = json.loads((root / "results" / "results.json").read_text())
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["corr2d"]["status"] == "failed" and tests["pool2d"]["status"] == "passed"
    assert "kernel-height-for-width" in tests["corr2d"]["output"]
    assert data["score"] == tests["pool2d"]["max_score"] > 0
