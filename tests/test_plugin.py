"""convcheck's pytest plugin as users meet it (properties/plugin.py, the `pytest11` entry point
`convcheck`): `python -m pytest --target PATH` from the project folder with PATH, in the space
form, naming a file outside the checkout; and a plugin that stays out of the way of every
other pytest project in the same environment."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

PROJECT = Path(__file__).resolve().parent.parent

CORR2D = """\
import torch


def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
"""
FLIPPED = CORR2D.replace("* K).sum()", "* K.flip(0, 1)).sum()")


def _environment(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that chooses a target or adds options."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONVCHECK_TARGET", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
           and not k.startswith("PYTEST_XDIST")}
    return {**env, "CI": "true", **extra}


@pytest.mark.parametrize("source, form, failing", [
    (CORR2D, "absolute", set()),
    (FLIPPED, "relative", {"corr2d"}),
], ids=["correct-absolute", "buggy-relative"])
def test_pytest_target_with_a_space_takes_a_file_outside_the_checkout(
        tmp_path_factory, source, form, failing):
    """`python -m pytest --target PATH`, run from the project folder on a file in a folder of
    its own outside the checkout: a correct file passes (exit 0), a buggy one fails (exit 1)
    under the name that is wrong, and only that one."""
    folder = tmp_path_factory.mktemp("elsewhere")
    assert PROJECT not in folder.parents
    (folder / "student.py").write_text(source)
    path = folder / "student.py"
    spec = str(path) if form == "absolute" else os.path.relpath(path, PROJECT)
    report = folder / "report.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "--target", spec,
                           "--report-json", str(report)],
                          cwd=PROJECT, env=_environment(), capture_output=True, text=True,
                          timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == (1 if failing else 0), output[-3000:]
    data = json.loads(report.read_text())
    assert data["target"] == spec and data["defined"] == ["corr2d"]
    assert {n for n, f in data["functions"].items() if f["status"] == "fail"} == failing
    assert data["functions"]["corr2d"]["passed"] > 0
    card = re.search(r"^corr2d {2,}(pass|FAIL) ", output, re.M)
    assert card and card.group(1) == ("FAIL" if failing else "pass"), output[-3000:]
    if failing:
        assert "flipped-kernel" in data["functions"]["corr2d"]["failures"][0]["diagnosis"]


def test_junitxml_properties_are_json_and_lf_reruns_only_the_failures(tmp_path):
    """pytest's conventions with a target: --junitxml writes convcheck's user properties as JSON
    (pytest writes their str(); a dict's would be a Python repr), and --lf (the cache is on)
    reruns exactly the tests that failed."""
    (tmp_path / "student.py").write_text(FLIPPED)
    common = [sys.executable, "-m", "pytest", f"--target={tmp_path / 'student.py'}",
              "-o", f"cache_dir={tmp_path / 'cache'}", "-p", "no:randomly", "--strict-markers"]

    def run(xml, *extra):
        done = subprocess.run([*common, f"--junitxml={tmp_path / xml}", *extra], cwd=PROJECT,
                              env=_environment(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
        return done, ElementTree.parse(tmp_path / xml).getroot()

    _, first = run("first.xml")
    failed = set()
    for case in first.iter("testcase"):
        values = {p.get("name"): json.loads(p.get("value")) for p in case.iter("property")
                  if p.get("name").startswith("convcheck-")}
        if case.find("failure") is not None:
            failed.add(case.get("name"))
            assert values["convcheck-failure"]["culprit"] == "corr2d"
            assert values["convcheck-failure"]["diagnosis"].startswith("flipped-kernel")
    assert failed
    done, again = run("again.xml", "--lf")
    assert f"rerun previous {len(failed)} failure" in done.stdout
    assert {case.get("name") for case in again.iter("testcase")} == failed


OTHER_PROJECT = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": "import pytest\n\n\n@pytest.fixture\ndef device():\n    return 'mine'\n",
    "test_other.py": (
        "def test_plain():\n    assert 1 + 1 == 2\n\n\n"
        "def test_own_device_fixture(device):\n    assert device == 'mine'\n\n\n"
        "def test_wants_a_target(request):\n    request.getfixturevalue('target')\n"),
}


@pytest.fixture(scope="module")
def other_project(tmp_path_factory):
    """Some other pytest project using the same environment (so convcheck's entry point is
    loaded there too): its own ini, a conftest with a fixture called `device` (a name
    convcheck's session parametrizes), and a test asking for a `target` fixture it does not
    have."""
    folder = tmp_path_factory.mktemp("other-project")
    for name, text in OTHER_PROJECT.items():
        (folder / name).write_text(text)
    return folder


def _pytest(folder: Path, *args: str, python_options: tuple[str, ...] = ()):
    return subprocess.run([sys.executable, *python_options, "-m", "pytest", *args],
                          cwd=folder, env=_environment(), capture_output=True, text=True,
                          timeout=300)


def _without_timing(text: str) -> str:
    return re.sub(r" in [0-9.]+s", "", text)


def test_another_project_runs_as_if_convcheck_were_not_installed(other_project):
    """The same outcomes, the same lines, the same exit status with the plugin loaded as with
    it blocked (`-p no:convcheck`): no option of its changes anything unless a target is
    chosen, and its `target` fixture does not exist there."""
    args = ("-q", "-rA", "-p", "no:cacheprovider", "-p", "no:randomly")
    loaded = _pytest(other_project, *args)
    blocked = _pytest(other_project, *args, "-p", "no:convcheck")
    assert loaded.returncode == blocked.returncode == 1, loaded.stdout
    assert _without_timing(loaded.stdout) == _without_timing(blocked.stdout)
    assert "'target' not found" in loaded.stdout
    assert "1 failed, 2 passed" in loaded.stdout
    # ...while the plugin is there, and turns on when asked
    assert "--target=SPEC" in _pytest(other_project, "--help").stdout.replace(" SPEC", "=SPEC")


def test_another_project_does_not_import_torch(other_project):
    """`python -X importtime -m pytest --co -q` there: convcheck's plugin is imported (the
    entry point is live: what it imports is listed; pytest imports the entry point's own module
    through importlib, which -X importtime does not list) but torch, and the plugin's active
    part, are not."""
    done = _pytest(other_project, "--co", "-q", "-p", "no:cacheprovider",
                   python_options=("-X", "importtime"))
    assert done.returncode == 0, done.stdout + done.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "properties.contract" in imported
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
    assert "properties.session" not in imported
