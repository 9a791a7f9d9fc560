"""Properties of the textbook's cross-correlation family: corr2d, corr2d_multi_in,
corr2d_multi_in_out, corr2d_multi_in_out_1x1 (d2l, one sample, no batch axis)."""
from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from properties import oracles
from properties.checks import assert_matches, result_tensor
from properties.registry import Property
from properties.strategies import Case, dtypes, kernel_and_input_sizes, tensors
from properties.tolerance import Expected, compared_dtype


@st.composite
def _textbook_X_K(draw, in_channels=None, out_channels=None, one_by_one=False):
    """X (ci?, h, w) and K ((co?, ci?,) kh, kw) with the kernel no larger than the input."""
    dtype = draw(dtypes(), label="dtype")
    kh, h = (1, draw(st.integers(1, 6), label="h")) if one_by_one else \
        draw(kernel_and_input_sizes(label="height: "))
    kw, w = (1, draw(st.integers(1, 6), label="w")) if one_by_one else \
        draw(kernel_and_input_sizes(label="width: "))
    x_shape, k_shape = (h, w), (kh, kw)
    if in_channels is not None:
        ci = draw(in_channels, label="in channels")
        x_shape, k_shape = (ci, *x_shape), (ci, *k_shape)
    if out_channels is not None:
        k_shape = (draw(out_channels, label="out channels"), *k_shape)
    X = draw(tensors(x_shape, dtype, label="X"))
    K = draw(tensors(k_shape, dtype, label="K"))
    return XK(X, K)


@dataclasses.dataclass(frozen=True, repr=False)
class XK(Case):
    X: torch.Tensor
    K: torch.Tensor


CHANNELS = st.integers(1, 3)

#: The textbook's own examples (d2l 7.2, 7.4), run on every target before anything random.
TEXTBOOK_X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
TEXTBOOK_K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
EDGE_X = torch.ones(6, 8).index_fill_(1, torch.arange(2, 6), 0.0)
EDGE_K = torch.tensor([[1.0, -1.0]])
MULTI_X = torch.stack([TEXTBOOK_X, TEXTBOOK_X + 1])
MULTI_K = torch.stack([TEXTBOOK_K, TEXTBOOK_K + 1])

STRATEGIES = {
    "corr2d": _textbook_X_K(),
    "corr2d_multi_in": _textbook_X_K(in_channels=CHANNELS),
    "corr2d_multi_in_out": _textbook_X_K(in_channels=CHANNELS, out_channels=CHANNELS),
    "corr2d_multi_in_out_1x1": _textbook_X_K(in_channels=CHANNELS, out_channels=CHANNELS,
                                             one_by_one=True),
}
ORACLES = {"corr2d": oracles.corr2d, "corr2d_multi_in": oracles.corr2d_multi_in,
           "corr2d_multi_in_out": oracles.corr2d_multi_in_out,
           "corr2d_multi_in_out_1x1": oracles.corr2d_multi_in_out}
EXAMPLES = {
    "corr2d": (XK(TEXTBOOK_X, TEXTBOOK_K), XK(EDGE_X, EDGE_K), XK(EDGE_X.t().contiguous(), EDGE_K)),
    "corr2d_multi_in": (XK(MULTI_X, MULTI_K),),
    "corr2d_multi_in_out": (XK(MULTI_X, torch.stack([MULTI_K, MULTI_K + 1, MULTI_K + 2])),),
    "corr2d_multi_in_out_1x1": (XK(torch.arange(27.0).reshape(3, 3, 3),
                                   torch.arange(6.0).reshape(2, 3, 1, 1)),),
}


def _call_and_compare(target, name, case, expected: Expected, oracle: str):
    result = target.call(name, case.X, case.K)
    assert_matches(result, expected, input_dtype=case.X.dtype, oracle=oracle)
    return result


# --------------------------------------------------------------------------- generic

def _agrees_with_torch(name):
    def check(target, case):
        _call_and_compare(target, name, case, ORACLES[name](case.X, case.K),
                          "torch's float64 conv2d")
    return Property(name, "agrees with torch's float64 conv2d", STRATEGIES[name], check,
                    examples=EXAMPLES[name])


def check_corr2d_matches_scipy(target, case):
    expected = oracles.corr2d(case.X, case.K).with_value(oracles.scipy_corr2d(case.X, case.K))
    _call_and_compare(target, "corr2d", case, expected, "scipy.signal.correlate2d")


def check_corr2d_matches_flipped_convolution(target, case):
    expected = oracles.corr2d(case.X, case.K).with_value(
        oracles.scipy_convolve_flipped(case.X, case.K))
    _call_and_compare(target, "corr2d", case, expected,
                      "scipy.signal.convolve2d with the flipped kernel")


# --------------------------------------------------------------------------- corr2d

@st.composite
def _asymmetric_kernel_cases(draw):
    """K holds distinct values, so flipping it changes the result of most inputs."""
    case = draw(_textbook_X_K())
    kh, kw = case.K.shape
    if kh * kw == 1:
        wider = torch.zeros(case.X.shape[0], max(case.X.shape[1], 2), dtype=case.X.dtype)
        wider[:, : case.X.shape[1]] = case.X
        return XK(wider, torch.tensor([[1.0, -2.0]], dtype=case.X.dtype))
    order = draw(st.permutations(range(1, kh * kw + 1)), label="kernel values")
    K = torch.tensor(order, dtype=case.X.dtype).reshape(kh, kw)
    return XK(case.X, K)


def check_not_convolution(target, case):
    _call_and_compare(target, "corr2d", case, oracles.corr2d(case.X, case.K),
                      "cross-correlation")


@st.composite
def _bilinear_cases(draw):
    """X1, X2 (or K1, K2) and integer coefficients: every result exactly representable."""
    dtype = draw(dtypes(), label="dtype")
    kh, h = draw(kernel_and_input_sizes(label="height: "))
    kw, w = draw(kernel_and_input_sizes(label="width: "))
    ints = dict(low=-4, high=4, integer_valued=True)
    return Bilinear(draw(tensors((h, w), dtype, label="X1", **ints)),
                    draw(tensors((h, w), dtype, label="X2", **ints)),
                    draw(tensors((kh, kw), dtype, label="K1", **ints)),
                    draw(tensors((kh, kw), dtype, label="K2", **ints)),
                    draw(st.integers(-3, 3), label="a"), draw(st.integers(-3, 3), label="b"))


@dataclasses.dataclass(frozen=True, repr=False)
class Bilinear(Case):
    X1: torch.Tensor
    X2: torch.Tensor
    K1: torch.Tensor
    K2: torch.Tensor
    a: int
    b: int


def _checked_corr(target, X, K) -> torch.Tensor:
    """The target's corr2d(X, K) as a tensor, once its shape is the oracle's: a relation
    cannot combine wrongly shaped results (its values are the relation's to judge: a
    convolution, say, is bilinear too)."""
    result = target.call("corr2d", X, K)
    value = result_tensor(result, X.dtype)
    expected = oracles.corr2d(X, K)
    if tuple(value.shape) != tuple(expected.value.shape):   # fails with the shapes
        assert_matches(result, expected, input_dtype=X.dtype,
                       oracle="torch's float64 conv2d", prop="agrees with torch's float64 conv2d")
    return value


def check_bilinear(target, case):
    """corr2d(aX1 + bX2, K1) = a corr2d(X1, K1) + b corr2d(X2, K1), and likewise in K.

    Inputs are small integers, so a direct sum is exact; an FFT method may round, so each side
    is allowed its own error bound: the mixed call's, plus |a| and |b| times the parts'."""
    a, b = case.a, case.b
    for X_mix, K_mix, parts, where in (
            (a * case.X1 + b * case.X2, case.K1,
             ((case.X1, case.K1), (case.X2, case.K1)), "input"),
            (case.X1, a * case.K1 + b * case.K2,
             ((case.X1, case.K1), (case.X1, case.K2)), "kernel")):
        mixed = target.call("corr2d", X_mix, K_mix)
        first, second = (_checked_corr(target, *part).to(torch.float64) for part in parts)
        bounds = [oracles.corr2d(X_mix, K_mix).bound, oracles.corr2d(*parts[0]).bound,
                  oracles.corr2d(*parts[1]).bound]
        expected = Expected(a * first + b * second,
                            lambda u, bounds=bounds: torch.as_tensor(bounds[0](u)) + abs(a)
                            * torch.as_tensor(bounds[1](u)) + abs(b) * torch.as_tensor(
                                bounds[2](u)))
        assert_matches(mixed, expected, input_dtype=case.X1.dtype,
                       oracle=f"a·corr2d(P) + b·corr2d(Q) with a={a}, b={b} (linearity in "
                              f"the {where})")


@st.composite
def _shift_cases(draw):
    case = draw(_textbook_X_K())
    h, w = case.X.shape
    kh, kw = case.K.shape
    di = draw(st.integers(0, h - kh), label="row shift")
    dj = draw(st.integers(0, w - kw), label="column shift")
    return Shift(case.X, case.K, di, dj)


@dataclasses.dataclass(frozen=True, repr=False)
class Shift(Case):
    X: torch.Tensor
    K: torch.Tensor
    di: int
    dj: int


def check_translation_equivariant(target, case):
    """corr2d(X[di:, dj:], K) = corr2d(X, K)[di:, dj:]: shifting the input shifts the output
    (the unshifted result checked against the oracle first)."""
    full = _checked_corr(target, case.X, case.K)
    full_value = full.to(torch.float64)
    shifted_X = case.X[case.di:, case.dj:].contiguous()
    shifted = target.call("corr2d", shifted_X, case.K)
    expected = oracles.corr2d(shifted_X, case.K)
    assert_matches(shifted, expected.with_value(full_value[case.di:, case.dj:], factor=2),
                   input_dtype=case.X.dtype,
                   compare_at=full.dtype,
                   oracle="the shifted output of the unshifted input",
                   prop="is translation equivariant")


# --------------------------------------------------------------------------- relations

def _related_result(target, name, X, K, expected: Expected):
    """(value, dtype) of `name`(X, K) by the target's own `name` when it defines it — checked
    against the oracle first, so a wrong `name` is blamed on `name` — else by the oracle."""
    if not target.defines(name):
        return expected.value, torch.float64
    result = target.call(name, X.contiguous(), K.contiguous())
    assert_matches(result, expected, input_dtype=X.dtype, oracle="torch's float64 conv2d",
                   prop="agrees with torch's float64 conv2d")
    value = result_tensor(result, X.dtype)
    return value.to(torch.float64), value.dtype


def check_multi_in_is_channel_sum(target, case):
    """corr2d_multi_in(X, K) = Σ_c corr2d(X[c], K[c])."""
    parts = [_related_result(target, "corr2d", x, k, oracles.corr2d(x, k))
             for x, k in zip(case.X, case.K)]
    total = sum(value for value, _ in parts)
    result = target.call("corr2d_multi_in", case.X, case.K)
    assert_matches(result, oracles.corr2d_multi_in(case.X, case.K).with_value(total, factor=2),
                   input_dtype=case.X.dtype, oracle="the sum over channels of corr2d",
                   compare_at=compared_dtype(*(dtype for _, dtype in parts)))


def check_multi_in_out_is_stack(target, case):
    """corr2d_multi_in_out(X, K)[o] = corr2d_multi_in(X, K[o])."""
    parts = [_related_result(target, "corr2d_multi_in", case.X, k,
                             oracles.corr2d_multi_in(case.X, k)) for k in case.K]
    stacked = torch.stack([value for value, _ in parts])
    result = target.call("corr2d_multi_in_out", case.X, case.K)
    assert_matches(result, oracles.corr2d_multi_in_out(case.X, case.K).with_value(stacked,
                                                                                  factor=2),
                   input_dtype=case.X.dtype,
                   oracle="corr2d_multi_in stacked over output channels",
                   compare_at=compared_dtype(*(dtype for _, dtype in parts)))


def check_1x1_is_matrix_product(target, case):
    """Y[o] = Σ_c K[o, c] X[c]: a (co × ci) matrix times the (ci × hw) pixels."""
    ci, h, w = case.X.shape
    co = case.K.shape[0]
    product = (case.K.reshape(co, ci).double() @ case.X.reshape(ci, h * w).double())
    expected = oracles.corr2d_multi_in_out(case.X, case.K).with_value(product.reshape(co, h, w))
    result = target.call("corr2d_multi_in_out_1x1", case.X, case.K)
    assert_matches(result, expected, input_dtype=case.X.dtype,
                   oracle="the matrix product K(co×ci) · X(ci×hw)")


def check_1x1_equals_general(target, case):
    """corr2d_multi_in_out_1x1(X, K) = corr2d_multi_in_out(X, K) for a 1×1 kernel."""
    expected = oracles.corr2d_multi_in_out(case.X, case.K)
    general, dtype = _related_result(target, "corr2d_multi_in_out", case.X, case.K, expected)
    result = target.call("corr2d_multi_in_out_1x1", case.X, case.K)
    assert_matches(result, expected.with_value(general, factor=2), input_dtype=case.X.dtype,
                   oracle="corr2d_multi_in_out with the same 1×1 kernel", compare_at=dtype)


PROPERTIES = [
    *(_agrees_with_torch(name) for name in STRATEGIES),
    Property("corr2d", "agrees with scipy.signal.correlate2d", STRATEGIES["corr2d"],
             check_corr2d_matches_scipy, budget=0.5),
    Property("corr2d", "agrees with scipy's convolve2d of the flipped kernel",
             STRATEGIES["corr2d"], check_corr2d_matches_flipped_convolution, budget=0.5),
    Property("corr2d", "is cross-correlation, not convolution (asymmetric kernels)",
             _asymmetric_kernel_cases(), check_not_convolution),
    Property("corr2d", "is bilinear in input and kernel", _bilinear_cases(), check_bilinear,
             budget=0.5),
    Property("corr2d", "is translation equivariant", _shift_cases(),
             check_translation_equivariant, budget=0.5),
    Property("corr2d_multi_in", "equals the channel sum of corr2d",
             STRATEGIES["corr2d_multi_in"], check_multi_in_is_channel_sum, budget=0.5),
    Property("corr2d_multi_in_out", "equals corr2d_multi_in stacked over output channels",
             STRATEGIES["corr2d_multi_in_out"], check_multi_in_out_is_stack, budget=0.5),
    Property("corr2d_multi_in_out_1x1", "equals a matrix product over channels",
             STRATEGIES["corr2d_multi_in_out_1x1"], check_1x1_is_matrix_product),
    Property("corr2d_multi_in_out_1x1", "equals corr2d_multi_in_out with a 1x1 kernel",
             STRATEGIES["corr2d_multi_in_out_1x1"], check_1x1_equals_general, budget=0.5),
]
