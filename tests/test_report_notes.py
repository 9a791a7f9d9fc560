"""Accepted conventions are notes in the report card, not failures (issue 3, item 6): a numpy
result, or a textbook-dialect result in lower precision than its input."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from properties.outcomes import annotate
from properties.report import ReportCollector
from properties.target import Target
from suite_runner import write_target

SOURCE = """
import numpy as np
import torch
import torch.nn.functional as F

def corr2d(X, K):                        # the textbook's torch.zeros: float32 for any input
    Y = torch.zeros((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + K.shape[0], j:j + K.shape[1]] * K).sum()
    return Y

def corr2d_multi_in(X, K):               # numpy, in the input's precision
    return np.asarray(sum(corr2d(x.double(), k.double()) for x, k in zip(X, K)).double())

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
"""


def test_calls_leave_notes_for_accepted_conventions_only(tmp_path):
    target = Target.open(str(write_target(tmp_path, SOURCE)))
    try:
        X = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)
        K = torch.ones(2, 2, dtype=torch.float64)
        target.call("corr2d", X, K)
        target.call("corr2d", X.float(), K.float())           # same precision: no note
        target.call("corr2d_multi_in", X[None], K[None])
        target.call("conv2d", X[None, None], K[None, None])  # functional, same dtype: no note
        assert sorted(target.take_notes()) == [
            ("corr2d", "corr2d returns float32 for float64 input (accepted: compared at "
                       "float32)"),
            ("corr2d_multi_in", "corr2d_multi_in returns a numpy array (accepted: compared as "
                                "a tensor)")]
        assert target.take_notes() == []
    finally:
        target.close()


def test_report_card_lists_each_note_once_under_the_names():
    target = SimpleNamespace(defined=["corr2d"], conventions={}, spec="t.py",
                             defines=lambda name: name == "corr2d")
    collector = ReportCollector(target)
    note = ("corr2d", "corr2d returns float32 for float64 input (accepted: compared at float32)")
    for _ in range(2):
        report = SimpleNamespace(when="call", passed=True, skipped=False, user_properties=[])
        annotate(report, "corr2d", notes=[note])
        collector.pytest_runtest_logreport(report)
    lines = collector.card_lines()
    assert lines.count(f"note: {note[1]}") == 1
    assert lines.index(f"note: {note[1]}") > max(i for i, line in enumerate(lines)
                                                   if line.startswith("corr2d "))
    assert collector.as_json()["functions"]["corr2d"]["status"] == "pass"
