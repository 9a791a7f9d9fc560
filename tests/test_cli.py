"""The `convcheck` command (properties/cli.py): `convcheck TARGET [pytest options]` runs the
installed suite with its own configuration whatever folder it is started from, and
`convcheck grade` is the grader."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from properties import cli

CONVCHECK = Path(sys.executable).with_name("convcheck")
FLIPPED = """\
import torch


def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K.flip(0, 1)).sum()
    return Y
"""


def test_the_command_runs_the_shipped_suite_with_the_shipped_configuration(tmp_path):
    args = cli.pytest_arguments("hw/a b.py", ["-x", "-k", "corr2d"], tmp_path)
    assert args[0] == str(cli.SUITE) and cli.SUITE.is_file()
    assert args[args.index("-c") + 1] == str(cli.SUITE_INI) and cli.SUITE_INI.is_file()
    assert f"--rootdir={cli.SUITE.parent.parent}" in args
    assert f"cache_dir={tmp_path / '.pytest_cache'}" in args
    # the target's value is attached to its option; the user's options come last and win
    assert "--target=hw/a b.py" in args and args[-3:] == ["-x", "-k", "corr2d"]


def test_node_ids_the_report_prints_select_tests_of_the_installed_suite(tmp_path):
    node = "properties/suite.py::test_property[cpu-corr2d agrees with torch's float64 conv2d]"
    args = cli.pytest_arguments("a.py", [node, "-q"], tmp_path)
    assert str(cli.SUITE) not in args  # not the whole suite besides
    assert str(cli.SUITE.parent.parent / node) in args


@pytest.mark.parametrize("argv, status, words", [
    ([], 2, "usage: convcheck TARGET"),
    (["--help"], 0, "usage: convcheck TARGET"),
    (["-x", "a.py"], 2, "the first argument is the target, not the option '-x'"),
    (["--version"], 0, "convcheck 0."),
])
def test_usage(capsys, argv, status, words):
    assert cli.main(argv) == status
    captured = capsys.readouterr()
    assert words in captured.out + captured.err


def test_grade_is_the_grader_under_its_own_name(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["grade", "--help"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("usage: convcheck grade ")


HOSTILE_FOLDER = {
    "properties.py": "raise SystemExit('the folder\'s properties.py was imported')\n",
    "pytest.ini": "[pytest]\naddopts = --an-option-nobody-defines\n",
    "pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-p no:convcheck'\n",
    "conftest.py": "raise SystemExit('the folder\\'s conftest.py was loaded')\n",
}


def test_the_users_folder_does_not_change_the_run_and_the_replay_line_replays(tmp_path):
    """Started in a folder whose pytest.ini, pyproject.toml, conftest.py and properties.py would
    each break a pytest run there, `convcheck buggy.py` reports corr2d failing; the 'to
    replay' command it prints, run as printed, replays that one test; pytest's cache is in the
    folder."""
    assert CONVCHECK.is_file(), "the project's install puts the convcheck command beside python"
    for name, text in HOSTILE_FOLDER.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "buggy.py").write_text(FLIPPED)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONVCHECK_TARGET", "PYTEST_ADDOPTS") and not k.startswith("PYTEST_")}
    env["CI"] = "true"

    def convcheck(*args):
        return subprocess.run([str(CONVCHECK), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    done = convcheck("buggy.py")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert re.search(r"^corr2d {2,}FAIL .*flipped-kernel", done.stdout, re.M), done.stdout
    assert "configfile: properties/suite.ini" in done.stdout
    assert "Warning" not in done.stdout  # e.g. pytest unable to rewrite the plugin's asserts
    assert (tmp_path / ".pytest_cache").is_dir()
    replay = re.search(r"^to replay: (convcheck .*)$", done.stdout, re.M).group(1)
    command = shlex.split(replay)
    assert command[:2] == ["convcheck", "buggy.py"] and len(command) == 3
    again = convcheck(*command[1:])
    assert again.returncode == 1 and re.search(r"\b1 failed in ", again.stdout), again.stdout
