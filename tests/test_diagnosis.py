"""Diagnosis by recomputation (properties.diagnosis), tested without the property suite.

Every buggy corpus file that declares a diagnosis for a function is called on a fixed set of
revealing inputs; every call whose result is wrong must be diagnosed with exactly the declared
mistake (and at least one call must be wrong). The correct corpus files are called on the same
inputs: none of their results may look wrong, so the diagnosis's idea of "correct" (including
the batch-norm conventions) is the contract's.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

from properties import conventions, diagnosis
from properties.failures import PropertyFailure
from properties.target import Target

CORPUS = Path(__file__).resolve().parent / "corpus"
FUNCTIONS = ("corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
             "pool2d", "batch_norm", "conv2d", "max_pool2d", "avg_pool2d")


def _ints(*shape, low=-6, high=7, dtype=torch.float32, seed=0):
    """Integer-valued tensors (exact in float32/float64), distinct per seed."""
    g = torch.Generator().manual_seed(seed + 17 * len(shape) + sum(shape))
    return torch.randint(low, high, shape, generator=g).to(dtype)


def _rand(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 3 + 0.5).to(dtype)


def textbook_cases(name):
    f64 = torch.float64
    if name == "corr2d":
        return [((_ints(5, 6), _ints(2, 3)), {}),
                ((_ints(6, 5, dtype=f64), _ints(3, 2, dtype=f64)), {}),
                ((_ints(4, 4), _ints(2, 2, seed=1)), {})]
    if name == "corr2d_multi_in":
        return [((_ints(3, 4, 5), _ints(3, 2, 3)), {}), ((_ints(2, 5, 4, dtype=f64),
                                                         _ints(2, 2, 2, dtype=f64)), {})]
    if name == "corr2d_multi_in_out":
        return [((_ints(2, 4, 5), _ints(3, 2, 2, 3)), {})]
    if name == "corr2d_multi_in_out_1x1":
        return [((_ints(3, 3, 4), _ints(2, 3, 1, 1)), {}), ((_ints(2, 2, 3, dtype=f64),
                                                            _ints(3, 2, 1, 1, dtype=f64)), {})]
    if name == "pool2d":
        X = _ints(4, 5)
        return [((X, (2, 3)), {}), ((X, (2, 2), "avg"), {}), ((X, (2, 3)), {"mode": "avg"}),
                ((X, (2, 2)), {"mode": "max"})]
    raise KeyError(name)


def functional_cases(name):
    x = _ints(2, 3, 6, 7, seed=3)
    negative = -_ints(1, 2, 5, 5, low=1, high=9, seed=4)
    if name == "conv2d":
        w = _ints(4, 3, 3, 2, seed=5)
        grouped = _ints(6, 2, 2, 3, seed=6)
        x4 = _ints(2, 4, 6, 7, seed=7)
        return [((x, w, _ints(4, seed=8)), dict(stride=(2, 1), padding=(1, 0), dilation=1,
                                                groups=1)),
                ((x, w, None), dict(stride=1, padding="same", dilation=(1, 2), groups=1)),
                ((x, _ints(4, 3, 2, 2, seed=11), None), dict(padding="same")),
                ((x, w), dict(padding=(2, 1), dilation=2)),
                ((x4, grouped, None), dict(stride=1, padding=1, dilation=1, groups=2)),
                ((x, w, None), dict(stride=2, padding=0, dilation=1, groups=1)),
                ((_rand(2, 3, 6, 7, seed=9), _rand(4, 3, 3, 2, seed=10), None), {})]
    if name == "max_pool2d":
        return [((negative, 3), dict(padding=1)), ((x, (3, 2)), dict(stride=2, padding=(1, 0))),
                ((x, 2), dict(stride=1, dilation=2)), ((negative, 2), dict(stride=2, padding=1,
                                                                         ceil_mode=True)),
                ((x, 2), {})]
    if name == "avg_pool2d":
        return [((x, 3), dict(stride=2, padding=1, count_include_pad=False)),
                ((x, 3), dict(stride=2, padding=1)), ((x, 2), dict(divisor_override=3)),
                ((x, (3, 2)), dict(stride=1, padding=(1, 0), ceil_mode=True)), ((x, 2), {})]
    raise KeyError(name)


def batch_norm_cases(dialect):
    """Training and evaluation calls on (6, 3) and (2, 3, 3, 4) inputs, and on (6, 3) input
    whose channels have means about 1000 and 3000 times their spread (float32)."""
    cases = []
    for shape, offset in (((6, 3), 0.0), ((2, 3, 3, 4), 0.0), ((6, 3), 1000.0)):
        c = shape[1]
        stat = (1, c) if len(shape) == 2 else (1, c, 1, 1)
        X = _rand(*shape, seed=11) + offset * torch.tensor([1.0, -3.0, 0.0]).reshape(stat)
        gamma, beta = _rand(*stat, seed=12), _rand(*stat, seed=13)
        mean, var = _rand(*stat, seed=14), _rand(*stat, seed=15).abs() + 0.5
        if dialect == "functional":
            vec = lambda t: t.reshape(-1).clone()
            for training in (True, False):
                cases.append((None, (X, vec(mean), vec(var), vec(gamma), vec(beta)),
                              dict(training=training, momentum=0.1, eps=1e-5)))
        else:
            momentum = 0.9 if dialect == "d2l-1st" else 0.1
            for training in (True, False):
                args = (X, gamma, beta, mean, var, 1e-5, momentum)
                if dialect == "d2l-1st":
                    cases.append((None, (training, *args), {}))
                else:
                    cases.append((training, args, {}))
    return cases


def cases_for(target, name):
    """(grad mode or None, args, kwargs) of the revealing calls of `name`."""
    if name == "batch_norm":
        return batch_norm_cases(target.dialect(name))
    found = textbook_cases(name) if target.dialect(name) == "textbook" else \
        functional_cases(name)
    return [(None, args, kwargs) for args, kwargs in found]


def calls(target, name):
    """The CallResults of the revealing calls (a call caught changing its input included)."""
    for grad, args, kwargs in cases_for(target, name):
        try:
            yield target.call_in_grad_mode(grad, name, *args, **kwargs)
        except PropertyFailure as failure:
            if failure.call is not None:
                yield failure.call


def declared(path: Path) -> dict[str, str]:
    text = path.read_text()
    return dict(re.findall(r"convcheck-diagnosis:\s*(\w+)\s+([\w-]+)", text))


DIAGNOSED = [(path, name, mistake) for path in sorted((CORPUS / "buggy").glob("*.py"))
             for name, mistake in declared(path).items() if name in FUNCTIONS]


def _open(path):
    target = Target.open(str(path), timeout=30)
    target.conventions = conventions.detect(target)
    return target


@pytest.mark.parametrize("path,name,mistake", DIAGNOSED,
                         ids=[f"{p.stem}" for p, _, _ in DIAGNOSED])
def test_buggy_corpus_calls_are_diagnosed_with_their_mistake(path, name, mistake):
    target = _open(path)
    try:
        seen = []
        for call in calls(target, name):
            view = diagnosis.view_of(call, target.dialect(name),
                                     target.conventions.get(name))
            if view.is_wrong():
                # the whole naming rule, the second call included; it never breaks (a
                # warning is how explain reports its own error): no internal error reaches
                # a student
                failure = call.failure("result differs")
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    diagnosis.explain(failure, target)
                seen.append((call.description, failure.diagnosis))
        # a target declaring `none` may show its mistake only by raising, a dtype or inputs
        # these calls do not draw
        assert seen or mistake == "none", f"no revealing input makes {path.name}'s {name} wrong"
        wrong = [(d, f) for d, f in seen if not (f is None if mistake == "none" else
                                                (f or "").startswith(mistake + ":"))]
        assert not wrong, f"expected {mistake} for every wrong call, got {wrong}"
    finally:
        target.close()


CORRECT = sorted((CORPUS / "correct").glob("*.py"))


@pytest.mark.parametrize("path", CORRECT, ids=[p.stem for p in CORRECT])
def test_correct_corpus_calls_are_not_wrong(path):
    target = _open(path)
    try:
        checked = 0
        for name in FUNCTIONS:
            if not target.defines(name):
                continue
            for call in calls(target, name):
                view = diagnosis.view_of(call, target.dialect(name),
                                         target.conventions.get(name))
                assert not view.is_wrong(), (call.description, view.correct.keys())
                checked += 1
        assert checked
    finally:
        target.close()


def test_a_failure_without_a_call_has_no_diagnosis():
    assert diagnosis.diagnose(PropertyFailure("corr2d", "raised")) is None


def test_bare_mistake_ids_are_spelled_out():
    failure = PropertyFailure("Conv2D", "weight is a plain tensor",
                              diagnosis="parameters-not-nn-parameter")
    diagnosis.explain(failure)
    assert failure.diagnosis.startswith("parameters-not-nn-parameter: ")
    assert "nn.Parameter" in failure.diagnosis


def test_a_mistake_seen_on_a_degenerate_input_only_is_not_named():
    """On X = [[0, 1]], K = [[0, 1]] a corr2d returning zeros agrees with the flipped kernel;
    a second call with generic values of the same shapes shows it is not that mistake."""
    target = _open(CORPUS / "buggy" / "corr2d_comparison_not_assignment.py")
    try:
        call = target.call("corr2d", torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.0]]))
        failure = call.failure("result differs")
        assert diagnosis.diagnose(failure, "textbook").startswith("flipped-kernel:")
        diagnosis.explain(failure, target)
        assert failure.diagnosis is None
    finally:
        target.close()


def test_a_mistake_is_still_named_when_the_second_input_confirms_it():
    target = _open(CORPUS / "buggy" / "corr2d_flipped_kernel.py")
    try:
        call = target.call("corr2d", torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.0]]))
        failure = call.failure("result differs")
        diagnosis.explain(failure, target)
        assert failure.diagnosis.startswith("flipped-kernel:")
    finally:
        target.close()


def test_wrong_axes_is_named_from_the_running_statistics_alone():
    """gamma = 0 hides the wrong normalisation (Y = beta either way); the new moving mean of a
    batch norm over the wrong axes still shows it."""
    target = _open(CORPUS / "buggy" / "batch_norm_d2l1_wrong_axes.py")
    try:
        zero, one = torch.zeros(1, 1), torch.ones(1, 1)
        call = target.call("batch_norm", True, torch.tensor([[1.0], [-1.0]]), zero, zero,
                           zero, one, 1e-5, 0.9)
        view = diagnosis.view_of(call, "d2l-1st", target.conventions.get("batch_norm"))
        assert (diagnosis.diagnose_view(view) or "").startswith("bn-wrong-axes:")
    finally:
        target.close()


def test_every_mistake_a_signature_lists_is_declared_and_applies_to_it():
    """The signatures' mistake lists and the declared mistakes agree: each listed id exists
    and recognises results of that name (a call's, or an observation's of a module)."""
    from properties.diagnosis.mistakes import MISTAKES
    from properties.signatures import SIGNATURES
    for sig in SIGNATURES.values():
        for mistake in sig.mistakes:
            assert mistake in MISTAKES, (sig.key, mistake)
            subjects = MISTAKES[mistake].shows_in
            assert any(s == sig.name or s.startswith(sig.name + ":") for s in subjects), \
                (sig.key, mistake)
    listed = {m for sig in SIGNATURES.values() for m in sig.mistakes}
    assert listed == set(MISTAKES), set(MISTAKES) ^ listed


def test_a_right_result_on_the_generic_input_refutes_a_mistake_that_changes_it():
    """A one-pass-variance batch norm on data with a large offset and a unit width: on that
    input its noise agrees with statistics over the width alone (bn-wrong-axes, within that
    variant's wide bound) and with half precision; on the generic input its result is right,
    which neither of those computes, so only bn-one-pass-variance is named (found by
    benchmarks/bn_conditioning.py, seed 17)."""
    target = _open(CORPUS / "buggy" / "batch_norm_d2l2_one_pass_variance.py")
    try:
        X = torch.zeros(2, 3, 3, 1)
        X[0, 0, :, 0] = torch.tensor([10000.0, 10000.0, 10000.0])
        X[1, 0, :, 0] = torch.tensor([10003.0, 10003.0, 9999.0])
        ones, zeros = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
        call = target.call("batch_norm", X, ones, zeros, zeros, zeros, 1e-5, 0.1)
        view = diagnosis.view_of(call, "d2l-2nd", target.conventions.get("batch_norm"))
        assert [m.id for m in diagnosis.shown_mistakes(view)][:2] == [
            "bn-wrong-axes", "bn-one-pass-variance"]   # the minimal input alone cannot tell
        failure = call.failure("result differs")
        diagnosis.explain(failure, target)
        assert failure.mistake == "bn-one-pass-variance"
        assert "also consistent" not in failure.diagnosis, failure.diagnosis
    finally:
        target.close()


@pytest.mark.parametrize("mistake", ["bn-momentum-mixed", "bn-momentum-inverted",
                                     "bn-running-var-biased", "bn-running-stats-not-in-place",
                                     "bn-wrong-axes", "bn-eps-outside-sqrt",
                                     "half-precision-accumulation",
                                     "bn-input-normalised-in-place"])
def test_a_right_generic_training_call_is_not_explained_by_a_mistake_that_changes_it(mistake):
    """Rule 2's second call: a right result on a generic training input (momentum 0.1, no unit
    sizes) is not what these mistakes compute there, so it does not confirm them."""
    from properties.diagnosis.mistakes import MISTAKES
    target = _open(CORPUS / "correct" / "torch_wrappers.py")
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(5, 3, 4, 6, generator=g)
        mean, var = torch.randn(3, generator=g), torch.rand(3, generator=g) + 0.5
        call = target.call("batch_norm", x, mean, var, torch.randn(3, generator=g),
                           torch.randn(3, generator=g), True, 0.1, 0.25)
        view = diagnosis.view_of(call, "functional", target.conventions.get("batch_norm"))
        assert not view.is_wrong()
        assert not MISTAKES[mistake].explains(view)
    finally:
        target.close()


def test_a_right_average_pool_is_not_an_unrecognised_mode():
    from properties.diagnosis.mistakes import MISTAKES
    target = _open(CORPUS / "correct" / "d2l_second_edition.py")
    try:
        x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
        call = target.call("pool2d", x, (2, 3), "avg")
        view = diagnosis.view_of(call, "textbook")
        assert not view.is_wrong() and not MISTAKES["mode-name-unrecognised"].explains(view)
    finally:
        target.close()
