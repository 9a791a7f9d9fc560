"""Gradescope's results.json (`convcheck grade SUBMISSION --gradescope RESULTS_JSON`,
properties/grading/gradescope.py): the fields Gradescope reads, on a correct, a buggy and a
hanging submission graded for real, and on a submission folder that is not one file."""
from __future__ import annotations

import json
import shutil

import pytest

from properties.grading.cli import main
from properties.grading.config import load_config
from test_grade import FIXTURES, _grade

NAMES = ["corr2d", "pool2d"]
POINTS = {name: load_config().points[name] for name in NAMES}
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")


def check_fields(data: dict) -> dict[str, dict]:
    """Everything Gradescope's autograder specification asks of results.json; the tests by
    name."""
    assert set(data) == {"score", "execution_time", "output", "output_format", "visibility",
                         "stdout_visibility", "tests"}
    assert isinstance(data["execution_time"], int) and data["execution_time"] >= 0
    assert data["output_format"] == "md" and isinstance(data["output"], str)
    assert data["visibility"] in VISIBILITY and data["stdout_visibility"] in VISIBILITY
    tests = {}
    for number, test in enumerate(data["tests"], start=1):
        assert set(test) == {"name", "number", "score", "max_score", "status", "output",
                             "output_format", "visibility"}
        assert test["number"] == str(number) and test["output_format"] == "md"
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITY
        assert test["score"] == (test["max_score"] if test["status"] == "passed" else 0)
        tests[test["name"]] = test
    assert data["score"] == sum(t["score"] for t in data["tests"])
    return tests


@pytest.mark.parametrize("fixture, statuses, words", [
    ("correct_textbook.py", {"corr2d": "passed", "pool2d": "passed"}, {}),
    ("buggy_flipped_kernel.py", {"corr2d": "failed", "pool2d": "failed"},
     {"corr2d": "flipped-kernel", "pool2d": "missing: not defined in your submission"}),
    ("hangs_on_call.py", {"corr2d": "failed", "pool2d": "passed"},
     {"corr2d": "did not return within 5 s"}),
    ("hangs_at_import.py", {"corr2d": "failed", "pool2d": "failed"},
     {"corr2d": "timeout: did not finish in time", "": "Grading stopped at the time limit"}),
])
def test_results_json_of_a_graded_submission(tmp_path, fixture, statuses, words):
    """`words` holds what each name's output says (under "": the overall output)."""
    submission = tmp_path / "submission" / fixture
    submission.parent.mkdir()
    shutil.copy(FIXTURES / fixture, submission)
    results = tmp_path / "results" / "results.json"
    _grade(tmp_path, [submission.parent], "--gradescope", str(results),
           "--gradescope-visibility", "after_published", *(f"--only={n}" for n in NAMES),
           "--max-examples", "3", "--timeout", "240", "--call-timeout", "5")
    data = json.loads(results.read_text())
    tests = check_fields(data)
    assert list(tests) == NAMES
    assert data["visibility"] == "after_published"
    assert {name: t["status"] for name, t in tests.items()} == statuses
    assert {name: t["max_score"] for name, t in tests.items()} == POINTS
    assert data["score"] == sum(POINTS[n] for n, s in statuses.items() if s == "passed")
    for name, text in words.items():
        assert text in (tests[name]["output"] if name else data["output"])
    if fixture.startswith("buggy"):
        # the failure's feedback: the property, the mistake and an example that runs alone
        assert "**Likely mistake:** flipped-kernel" in tests["corr2d"]["output"]
        assert "```python\nimport torch" in tests["corr2d"]["output"]


def test_a_submission_that_is_not_one_file_gets_results_saying_so(tmp_path, capsys):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "hw6.py").write_text("")
    (folder / "hw6_export.py").write_text("")
    results = tmp_path / "results.json"
    assert main([str(folder), "--gradescope", str(results), "--out", str(tmp_path / "out"),
                 "--journal", str(tmp_path / "journal")]) == 2
    data = json.loads(results.read_text())
    tests = check_fields(data)
    assert data["score"] == 0 and set(tests) == set(load_config().names)
    assert "hw6.py, hw6_export.py" in data["output"]
    assert "exactly one" in capsys.readouterr().err
