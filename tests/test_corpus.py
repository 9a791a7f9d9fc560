"""Meta-tests: the suite, driven through the contract, on every target of the self-test corpus.

Each file in tests/corpus/{buggy,correct}/ states its verdict in its docstring:

    convcheck-expect: fail NAME[, NAME]          these names fail, every other defined one passes
    convcheck-diagnosis: NAME MISTAKE-ID          a failure of NAME is diagnosed as MISTAKE-ID
    convcheck-diagnosis: NAME none                no failure of NAME names a known mistake
    convcheck-expect: pass                        a correct alternative: everything passes

and the two notebooks built from the seed's textbook cells (tests/notebooks/) have theirs in
NOTEBOOKS. Every target is run as a user runs it — `pytest --target FILE --report-json` in a
subprocess (tests/suite_runner.py) — and the verdict is read from the report.

Budget: one pytest subprocess per target, serial inside it (-n 0), the derandomized `ci`
profile with CORPUS_EXAMPLES examples per property (the grader's --grade-max-examples; the
textbook's explicit examples always run too). Fewer examples than a user's run only make
the corpus harder to catch, so a buggy target caught here is caught by a full run; set
CONVCHECK_CORPUS_EXAMPLES to run the corpus with more.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from properties.contract import CONTRACT_NAMES
from suite_runner import run_suite

pytestmark = pytest.mark.corpus
TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "corpus"
CORPUS_EXAMPLES = int(os.environ.get("CONVCHECK_CORPUS_EXAMPLES", "10"))
#: Seconds one target's run may take: a guard against a hung run, not a budget (a loaded
#: 2-core machine needs several minutes for a target that defines every name).
RUN_TIMEOUT = 1800

#: The notebooks' verdicts (a notebook has no module docstring): (failing names, diagnoses).
NOTEBOOKS = {
    TESTS / "notebooks" / "d2l_chapter6.ipynb": (set(), {}),
    TESTS / "notebooks" / "d2l_chapter6_buggy_pool.ipynb": ({"pool2d"},
                                                            {"pool2d": "avg-computes-min"}),
    # A student's five mistakes of their own (tests/notebooks/make_notebooks.py); BatchNorm
    # fails because the batch_norm it calls does (and it passes momentum 0.9 besides).
    TESTS / "notebooks" / "d2l_chapter6_five_mistakes.ipynb": (
        {"corr2d_multi_in_out_1x1", "pool2d", "batch_norm", "BatchNorm", "conv2d"},
        {"corr2d_multi_in_out_1x1": "reshape-scrambles-channels",
         "pool2d": "avg-divisor-wrong", "batch_norm": "bn-eps-outside-sqrt",
         "conv2d": "same-padding-misplaced"}),
}
#: Composites whose failure the report must put down to a name they call: {target: {name:
#: the callee}}.
CAUSES = {TESTS / "notebooks" / "d2l_chapter6_five_mistakes.ipynb": {"BatchNorm": "batch_norm"}}
#: Targets whose first failure's replay snippet is also run on its own (a file, a notebook).
REPLAYED = {CORPUS / "buggy" / "corr2d_flipped_kernel.py": "corr2d",
            TESTS / "notebooks" / "d2l_chapter6_buggy_pool.ipynb": "pool2d"}


def expectations(path: Path) -> tuple[set[str], dict[str, str]]:
    """(names that must fail, {name: mistake id}) from the file's docstring or NOTEBOOKS."""
    if path in NOTEBOOKS:
        return NOTEBOOKS[path]
    text = path.read_text(encoding="utf-8")
    verdict = re.search(r"convcheck-expect:\s*(.+)", text)
    assert verdict, f"{path.name} has no 'convcheck-expect:' line"
    words = verdict.group(1).strip()
    failing = set() if words == "pass" else {
        n.strip() for n in words.removeprefix("fail").split(",") if n.strip()}
    assert failing <= set(CONTRACT_NAMES), f"{path.name}: unknown names {failing}"
    return failing, dict(re.findall(r"convcheck-diagnosis:\s*(\w+)\s+([\w-]+)", text))


TARGETS = [*sorted((CORPUS / "buggy").glob("*.py")), *sorted((CORPUS / "correct").glob("*.py")),
           *NOTEBOOKS]


def lenet_tests(failing: set[str]) -> tuple[str, ...]:
    """The LeNet checks (properties/lenet_checks.py, minutes on a CPU) are left out, except
    LeNet's own for the targets that must fail it. Other targets' LeNet is reported as passing
    with no property run."""
    if "LeNet" not in failing:
        return ("-m", "not lenet")
    return ("-k", "test_property or test_target_lenet")


def _summary(run) -> str:
    """What the report said, name by name, for a failing expectation."""
    if run.report is None:
        return f"no report (exit {run.returncode}); output tail:\n{run.output[-3000:]}"
    lines = [f"exit {run.returncode}"]
    for name, entry in run.report["functions"].items():
        if entry["status"] == "missing":
            continue
        lines.append(f"{name}: {entry['status']} (passed {entry['passed']}, failed "
                     f"{entry['failed']}, skipped {entry['skipped']})")
        lines += [f"    {f['property']}: {f['message'][:200]} -> diagnosis {f['diagnosis']}"
                  for f in entry["failures"]]
    return "\n".join(lines)


@pytest.mark.parametrize("path", TARGETS, ids=[f"{p.parent.name}/{p.name}" for p in TARGETS])
def test_corpus_target_gets_its_verdict(path, tmp_path):
    failing, diagnoses = expectations(path)
    run = run_suite(path, tmp_path, "-n", "0", "-p", "properties.grading.plugin",
                    "--grade-max-examples", str(CORPUS_EXAMPLES), *lenet_tests(failing),
                    timeout=RUN_TIMEOUT)
    assert run.report is not None, _summary(run)
    observed = run.failed_names()
    assert observed == failing, f"expected failing {sorted(failing)}, observed " \
                                f"{sorted(observed)}\n{_summary(run)}"
    assert run.returncode == (1 if failing else 0), _summary(run)
    for name, mistake in diagnoses.items():
        found = [f["diagnosis"] for f in run.report["functions"][name]["failures"]]
        if mistake == "none":
            assert not any(found), f"{name}: expected no diagnosis, got {found}\n{_summary(run)}"
            continue
        assert any(d and (d == mistake or d.startswith(mistake + ":")) for d in found), \
            f"{name}: expected diagnosis {mistake}, got {found}\n{_summary(run)}"
    for name, callee in CAUSES.get(path, {}).items():
        assert callee in run.report["functions"][name].get("calls", []), _summary(run)
        assert f"calls your {callee}, which fails: fix it first" in run.output, _summary(run)
    if path in REPLAYED:
        failure_reads_in_order(run.output, REPLAYED[path])
        replay_differs(run.report["functions"][REPLAYED[path]]["failures"], tmp_path)


def failure_reads_in_order(output: str, name: str) -> None:
    """The terminal shows a failure of `name` as: the property in words, the call with its
    argument shapes, expected against got (first differing element), the diagnosis, the
    minimal input as a script, how to replay the test — in that order, in one failure's text
    (at least one of them)."""
    marks = [f"{name} — ", f"  called: {name}(X: ", " differs from ", " at [", "  expected: ",
             "  got:      ", "  diagnosis: ", "  minimal failing call, as a script",
             f"    got = {name}(", "    print('expected (float64):'", "largest difference",
             "to replay: pytest "]
    blocks = [block for block in output.split("\nto replay: pytest ")[:-1]]
    assert blocks, output[-3000:]

    def in_order(block: str) -> bool:
        block = block[block.rfind(f"\n{name} — "):] + "\nto replay: pytest "
        position = 0
        for mark in marks:
            position = block.find(mark, position)
            if position == -1:
                return False
            position += len(mark)
        return True
    assert any(in_order(b) for b in blocks), output[-3000:]


# --------------------------------------------------------------------------- replay snippets

def printed_tensors(text: str) -> list[torch.Tensor]:
    """Every `tensor(...)` torch printed in `text`, evaluated back into a tensor."""
    found, start = [], text.find("tensor(")
    while start != -1:
        depth, end = 0, start + len("tensor")
        for end in range(start + len("tensor"), len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        found.append(eval(text[start:end + 1], {"tensor": torch.tensor, "torch": torch}))
        start = text.find("tensor(", end)
    return found


def replay_differs(failures: list[dict], folder: Path) -> None:
    """The first failure's example runs on its own — a fresh interpreter, another working
    directory, nothing of the suite's on the path — and prints a result that differs from the
    expected value it prints after it."""
    example = next(f["example"] for f in failures if f["example"])
    script = folder / "replay" / "script.py"
    script.parent.mkdir()
    script.write_text(example)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONVCHECK_TARGET")}
    done = subprocess.run([sys.executable, str(script)], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{example}\n---\n{done.stderr[-2000:]}"
    printed = printed_tensors(done.stdout)
    assert len(printed) == 2, f"expected the result and the expected value:\n{done.stdout}"
    got, expected = printed
    assert got.shape != expected.shape or not torch.allclose(
        got.to(torch.float64), expected.to(torch.float64), rtol=1e-3, atol=1e-3), done.stdout


def test_printed_tensors_reads_back_what_torch_prints():
    values = [torch.tensor([[1.5, -2.0]]), torch.tensor([3.0], dtype=torch.float64)]
    text = f"{values[0]}\nexpected (float64): {values[1]}"
    back = printed_tensors(text)
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(back, values))
