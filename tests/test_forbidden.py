"""Forbidden operations (properties.forbidden): the guard itself, and a suite run with --forbid."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from properties.forbidden import ForbiddenOperation, Guard, RuleError, parse_rule
from properties.grading.config import ConfigError, parse_config
from suite_runner import run_suite, write_target

LIBRARY = ("torch.nn.functional.conv2d", "scipy.signal.*", "numpy.convolve")


def library_conv(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]


def through_another_name(X, K):
    return torch.conv2d(X[None, None], K[None, None])[0, 0]


def through_a_module(X, K):
    layer = torch.nn.Conv2d(1, 1, tuple(K.shape), bias=False)
    return layer(X[None, None])[0, 0]


def swallowing(X, K):
    try:
        return library_conv(X, K)
    except BaseException:  # noqa: BLE001 - the attempt to hide the use
        return torch.zeros(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)


def through_scipy(X, K):
    import scipy.signal
    return torch.from_numpy(scipy.signal.correlate2d(X.numpy(), K.numpy(), "valid"))


def loops(X, K):
    h, w = K.shape
    Y = torch.zeros(X.shape[0] - h + 1, X.shape[1] - w + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


@pytest.fixture(scope="module")
def guard():
    guard = Guard({"corr2d": LIBRARY})
    guard.install()
    return guard


@pytest.mark.parametrize("function, operation", [
    (library_conv, "torch.nn.functional.conv2d"),
    (through_another_name, "torch.nn.functional.conv2d"),   # the same function object
    (through_a_module, "torch.nn.functional.conv2d"),
    (swallowing, "torch.nn.functional.conv2d"),
    (through_scipy, "scipy.signal.correlate2d"),
])
def test_a_forbidden_operation_is_caught_however_it_is_reached(guard, function, operation):
    corr2d = guard.wrap({"corr2d": function})["corr2d"]
    with pytest.raises(ForbiddenOperation) as caught:
        corr2d(torch.randn(5, 5), torch.randn(2, 2))
    assert str(caught.value) == f"uses {operation}, which this assignment forbids"
    assert "test_forbidden.py" in caught.value.where and "line" in caught.value.where


def test_only_the_named_function_is_held_to_its_rules(guard):
    wrapped = guard.wrap({"corr2d": loops, "pool2d": library_conv})
    X, K = torch.randn(5, 5), torch.randn(2, 2)
    assert torch.allclose(wrapped["corr2d"](X, K), library_conv(X, K), atol=1e-5)
    wrapped["pool2d"](X, K)          # no rule for pool2d
    library_conv(X, K)               # nor outside any call of a guarded name


def test_aten_operators_are_caught_where_torch_dispatches_them():
    guard = Guard({"corr2d": ("aten.*convolution*",)})
    guard.install()
    corr2d = guard.wrap({"corr2d": through_a_module})["corr2d"]
    with pytest.raises(ForbiddenOperation, match="uses aten.convolution"):
        corr2d(torch.randn(5, 5), torch.randn(2, 2))


@pytest.mark.parametrize("text, words", [
    ("corr2d", "expected NAME=OPERATION"),
    ("corr2D=torch.conv2d", "not a contract name"),
    ("corr2d=import os", "expected a dotted name"),
])
def test_a_rule_that_cannot_be_used_is_refused(text, words):
    with pytest.raises(RuleError, match=words):
        parse_rule(text)


def test_the_grading_config_takes_forbidden_operations_per_name():
    config = parse_config({"points": {"corr2d": 1}, "forbidden": {"corr2d": list(LIBRARY),
                                                                  "pool2d": "numpy.max"}})
    assert config.forbidden == {"corr2d": LIBRARY, "pool2d": ("numpy.max",)}
    with pytest.raises(ConfigError, match="not a contract name"):
        parse_config({"points": {"corr2d": 1}, "forbidden": {"corr2D": ["numpy.max"]}})
    with pytest.raises(ConfigError, match="list of dotted names"):
        parse_config({"points": {"corr2d": 1}, "forbidden": {"corr2d": [1]}})


LIBRARY_TARGET = """
import torch.nn.functional as F

def corr2d(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]
"""


def test_the_suite_fails_a_name_that_uses_a_forbidden_operation(tmp_path):
    forbid = [f"--forbid=corr2d={operation}" for operation in LIBRARY]
    run = run_suite(write_target(tmp_path, LIBRARY_TARGET), tmp_path, "--isolate", *forbid,
                    "-k", "corr2d and not multi")
    assert run.returncode == 1, run.output
    failures = run.report["functions"]["corr2d"]["failures"]
    assert failures and all(f["message"].startswith(
        "uses torch.nn.functional.conv2d, which this assignment forbids [called from ")
        and "line 5, in corr2d: return F.conv2d(" in f["message"] for f in failures)
    assert run.report["functions"]["corr2d"]["passed"] == 0
    allowed = run_suite(write_target(tmp_path, LIBRARY_TARGET), tmp_path, "--isolate",
                        "-k", "corr2d and not multi")
    assert allowed.returncode == 0, allowed.output


def test_forbid_needs_the_isolated_worker(tmp_path):
    run = run_suite(write_target(tmp_path, LIBRARY_TARGET), tmp_path,
                    "--forbid=corr2d=torch.nn.functional.conv2d")
    assert run.returncode == 4 and "--forbid needs --isolate" in run.output
