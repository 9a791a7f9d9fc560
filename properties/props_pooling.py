"""Properties of pooling: the textbook's `pool2d` (d2l: one (h, w) map, stride 1, no padding,
mode 'max' or 'avg') and the functional `max_pool2d` / `avg_pool2d` (torch.nn.functional
signatures: stride, padding, dilation, ceil_mode, count_include_pad, divisor_override).

Oracles (properties.oracles_pool): torch's float64 pooling (max exact; average within the
sum-of-products bound), scipy.ndimage's maximum_filter / uniform_filter, torch's float64
conv2d with a uniform kernel, and the shape formula reference.shapes.pool_output_size.
Properties built to expose a known mistake (zero padding in max pooling, an ignored flag, a
ceil-mode window kept in the padding, ...) leave naming it to properties.diagnosis.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from properties import oracles_pool as pool_oracles
from properties import strategies_pool as sp
from properties.checks import assert_matches, result_tensor
from properties.gradients import check_gradients
from properties.oracles_pool import first_plane
from properties.registry import Property
from properties.results import CallResult, is_none
from properties.strategies import FLOAT_DTYPES
from properties.tolerance import (FFT_FACTOR, Expected, compared_dtype, sum_of_products,
                                  unit_roundoff)
from reference import shapes

ORACLES = {"max_pool2d": pool_oracles.max_pool2d, "avg_pool2d": pool_oracles.avg_pool2d}
TORCH_POOLS = {"max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d}
TORCH_NAMES = {"max_pool2d": "torch's float64 max_pool2d",
               "avg_pool2d": "torch's float64 avg_pool2d"}


# =============================================================================== helpers

def call_pool(target, name: str, case) -> CallResult:
    """The target's max_pool2d / avg_pool2d on a case (kernel_size positional, the rest by
    keyword; stride left out when the case's stride is None)."""
    return target.call(name, case.input, case.kernel_size, **case.kwargs())


def oracle_of(name: str, case, **changes) -> Expected:
    """torch's float64 result for the case, with some arguments changed if asked."""
    kwargs = {**case.kwargs(), **changes}
    return ORACLES[name](case.input, case.kernel_size, **kwargs)


def compare(result: CallResult, expected: Expected, *, input_dtype, oracle: str,
            same_dtype: bool, prop: str | None = None) -> None:
    """assert_matches with the pooling dialect's dtype rule (`same_dtype`: functional)."""
    assert_matches(result, expected, input_dtype=input_dtype, oracle=oracle,
                   same_dtype=same_dtype, prop=prop)


def values_of(result: CallResult, input_dtype) -> torch.Tensor:
    return result_tensor(result, input_dtype).detach().to(torch.float64)


# =============================================================================== pool2d

TEXTBOOK_X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
TEXTBOOK_EXAMPLES = (sp.TextbookPoolCase(TEXTBOOK_X, (2, 2)),
                     sp.TextbookPoolCase(TEXTBOOK_X.double(), (2, 2)),
                     sp.TextbookPoolCase(TEXTBOOK_X - 8, (1, 3)))
TEXTBOOK_CASES = sp.textbook_pool_cases()


def check_pool2d_max_agrees_with_torch(target, case):
    """pool2d(X, (ph, pw)) — mode left to its default 'max' — equals torch's max pool."""
    result = target.call("pool2d", case.X, case.pool_size)
    compare(result, pool_oracles.pool2d(case.X, case.pool_size, "max"), input_dtype=case.X.dtype,
            oracle="torch's float64 max_pool2d (stride 1)", same_dtype=False)


def check_pool2d_avg_agrees_with_torch(target, case):
    """pool2d(X, (ph, pw), 'avg') — mode passed positionally — equals torch's avg pool."""
    result = target.call("pool2d", case.X, case.pool_size, "avg")
    compare(result, pool_oracles.pool2d(case.X, case.pool_size, "avg"), input_dtype=case.X.dtype,
            oracle="torch's float64 avg_pool2d (stride 1)", same_dtype=False)


def check_pool2d_max_matches_scipy(target, case):
    """pool2d(X, size, mode='max') = scipy.ndimage.maximum_filter(X, size), valid part."""
    result = target.call("pool2d", case.X, case.pool_size, mode="max")
    expected = first_plane(pool_oracles.scipy_max_pool2d(case.X[None, None], case.pool_size, 1))
    compare(result, expected, input_dtype=case.X.dtype, same_dtype=False,
            oracle="scipy.ndimage.maximum_filter (valid part)")


def check_pool2d_avg_matches_scipy(target, case):
    """pool2d(X, size, mode='avg') = scipy.ndimage.uniform_filter(X, size), valid part."""
    result = target.call("pool2d", case.X, case.pool_size, mode="avg")
    expected = first_plane(pool_oracles.scipy_avg_pool2d(case.X[None, None], case.pool_size, 1))
    compare(result, expected, input_dtype=case.X.dtype, same_dtype=False,
            oracle="scipy.ndimage.uniform_filter (valid part)")


def check_pool2d_output_shape(target, case):
    """Both modes give (h − ph + 1, w − pw + 1)."""
    (h, w), (ph, pw) = case.X.shape, case.pool_size
    wanted = (h - ph + 1, w - pw + 1)
    for mode in ("max", "avg"):
        result = target.call("pool2d", case.X, case.pool_size, mode)
        got = tuple(result_tensor(result, case.X.dtype).shape)
        if got != wanted:
            raise result.failure(f"mode {mode!r} gave shape {got}, expected (h − ph + 1, "
                                 f"w − pw + 1) = {wanted}")


def check_pool2d_avg_is_uniform_correlation(target, case):
    """pool2d(X, size, mode='avg') = corr2d(X, ones(ph, pw) / (ph·pw))."""
    result = target.call("pool2d", case.X, case.pool_size, mode="avg")
    if is_none(result.returned):
        raise result.failure("returned None for mode 'avg': is the mode name recognised?")
    X = case.X
    expected = first_plane(pool_oracles.uniform_kernel_correlation(X[None, None], case.pool_size))
    compare(result, expected, input_dtype=X.dtype, same_dtype=False,
            oracle="correlation with the uniform kernel ones(ph, pw) / (ph·pw)")


def check_pool2d_max_not_below_avg(target, case):
    """pool2d(X, size) ≥ pool2d(X, size, 'avg') elementwise (up to the mean's rounding)."""
    maximum = target.call("pool2d", case.X, case.pool_size)
    average = target.call("pool2d", case.X, case.pool_size, "avg")
    model = pool_oracles.pool2d(case.X, case.pool_size, "avg")
    assert_not_above(average, values_of(maximum, case.X.dtype), model, case.X.dtype,
                     "the max pool of the same windows, pool2d(X, pool_size)")


def assert_not_above(average: CallResult, maximum: torch.Tensor, model: Expected,
                     input_dtype, what_max: str) -> None:
    """average ≤ maximum + (the average's error bound + one rounding of each side)."""
    got = values_of(average, input_dtype)
    if got.shape != model.value.shape:
        raise average.failure(f"result has shape {tuple(got.shape)}, expected "
                              f"{tuple(model.value.shape)}")
    if got.shape != maximum.shape:
        raise average.failure(f"result has shape {tuple(got.shape)}, but {what_max} has "
                              f"shape {tuple(maximum.shape)}")
    u = unit_roundoff(compared_dtype(input_dtype, result_tensor(average, input_dtype).dtype))
    allowed = torch.as_tensor(model.bound(u)) + u * (got.abs() + maximum.abs())
    above = got > maximum + allowed
    if above.any():
        where = tuple(int(i) for i in above.nonzero()[0])
        raise average.failure(
            f"the average exceeds the maximum of its window at {list(where)}: average "
            f"{float(got[where]):.9g} > maximum {float(maximum[where]):.9g}",
            details=[f"maximum from {what_max}"])


def check_pool2d_max_of_constant(target, case):
    """pool2d(c · ones(h, w), size) = c everywhere."""
    result = target.call("pool2d", case.X, case.pool_size)
    (h, w), (ph, pw) = case.X.shape, case.pool_size
    constant = case.X.reshape(-1)[0].to(torch.float64)
    compare(result, Expected.exact(constant.expand(h - ph + 1, w - pw + 1)),
            input_dtype=case.X.dtype, same_dtype=False, oracle="the constant itself")


def check_pool2d_commutes_with_monotone_map(target, case):
    """pool2d(f(X), size) = f(pool2d(X, size)) for a strictly increasing f, exact here."""
    f = sp.MONOTONE_MAPS[case.map_name]
    X, size = case.pool.X, case.pool.pool_size
    plain = target.call("pool2d", X, size)
    mapped = target.call("pool2d", f(X), size)
    assert_equal_after_map(mapped, f(values_of(plain, X.dtype)), values_of(mapped, X.dtype),
                           case.map_name, "pool2d")


def assert_equal_after_map(mapped: CallResult, expected: torch.Tensor, got: torch.Tensor,
                           map_name: str, name: str) -> None:
    if got.shape != expected.shape or not torch.equal(got, expected):
        raise mapped.failure(
            f"{name}(f(x)) ≠ f({name}(x)) for the increasing map f(x) = {map_name}: a max "
            "must commute with it (integer inputs, so both sides are exact)",
            details=[f"{name}(f(x)):  {got.tolist()}", f"f({name}(x)):  {expected.tolist()}"])


# =============================================================================== gradients

def torch_gradient(pool: Callable, x: torch.Tensor, grad_output: torch.Tensor, **kwargs):
    """torch's float64 gradient of sum(pool(x) · G)."""
    x = pool_oracles.f64(x).requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(pool(x, **kwargs), x, pool_oracles.f64(grad_output))
    return grad


def expected_gradient(pool: Callable, x, grad_output, kwargs: dict, *, terms: int,
                      fft_scale: float = 0.0) -> Expected:
    """torch's float64 gradient of sum(pool(x) · G), with the sum-of-products bound: each
    input's gradient sums at most n = kh·kw terms g / D (max pooling: D = 1), so

        bound = (n + 3) u · Σ|g| / |D|  +  fft_scale · u · ‖G‖₂,

    Σ|g|/|D| being the gradient for |G| (and |divisor_override|); the second term covers
    implementations whose backward is an FFT correlation."""
    value = torch_gradient(pool, x, grad_output, **kwargs)
    magnitude_kwargs = dict(kwargs)
    if magnitude_kwargs.get("divisor_override") is not None:
        magnitude_kwargs["divisor_override"] = abs(magnitude_kwargs["divisor_override"])
    magnitude = torch_gradient(pool, x, grad_output.abs(), **magnitude_kwargs).abs()
    norm = float(torch.linalg.vector_norm(pool_oracles.f64(grad_output)))
    return sum_of_products(value, magnitude, terms, lambda u: fft_scale * u * norm)


def fft_gradient_scale(case) -> float:
    """FFT_FACTOR · log2(N) · ‖k‖₂ for average pooling's backward (‖k‖₂ = √n / min |D|)."""
    (kh, kw), _, (ph, pw), _ = sp.pool_pairs(case)
    h, w = case.input.shape[-2:]
    transform = (h + 2 * ph + kh) * (w + 2 * pw + kw)
    divisors = pool_oracles.avg_divisors(case.input.shape, case.kernel_size, **case.kwargs())
    return FFT_FACTOR * math.log2(max(transform, 2)) * math.sqrt(kh * kw) \
        / float(divisors.min())


def check_functional_gradient(name: str):
    """The gradient through the target's {max,avg}_pool2d equals torch's."""
    def check(target, case):
        pool = case.pool
        kh, kw = shapes.pair(pool.kernel_size, "kernel_size")
        fft = fft_gradient_scale(pool) if name == "avg_pool2d" else 0.0
        expected = expected_gradient(TORCH_POOLS[name], pool.input, case.grad_output,
                                     {"kernel_size": pool.kernel_size, **pool.kwargs()},
                                     terms=kh * kw, fft_scale=fft)
        check_gradients(target, name, (pool.input, pool.kernel_size), pool.kwargs(),
                        {"input": expected}, case.grad_output, input_dtype=pool.input.dtype,
                        oracle=f"torch's float64 autograd of F.{name}")
    return check


def check_pool2d_gradient(mode: str):
    """The gradient through the target's pool2d(X, size, mode) equals torch's."""
    def check(target, case):
        X, size = case.pool.X, case.pool.pool_size
        torch_pool = F.max_pool2d if mode == "max" else F.avg_pool2d

        def textbook_pool(x):
            return torch_pool(x[None, None], size, 1)[0, 0]

        fft = 0.0
        if mode == "avg":
            fft = fft_gradient_scale(sp.AvgPoolCase(X[None, None], size, 1))
        expected = expected_gradient(textbook_pool, X, case.grad_output, {},
                                     terms=size[0] * size[1], fft_scale=fft)
        check_gradients(target, "pool2d", (X, size, mode), {}, {"X": expected},
                        case.grad_output, input_dtype=X.dtype,
                        oracle=f"torch's float64 autograd of F.{mode}_pool2d (stride 1)")
    return check


# =============================================================================== dtypes

def check_pool2d_floating_result(target, case):
    """For float32 and float64 X, both modes return floating-point values (the textbook's
    float32 `torch.zeros` result for float64 input is accepted)."""
    for dtype in FLOAT_DTYPES:
        X = case.X.to(dtype)
        for mode in ("max", "avg"):
            result_tensor(target.call("pool2d", X, case.pool_size, mode), dtype)


def check_keeps_dtype(name: str):
    """The functional result has the input's dtype, for float32 and float64 alike."""
    def check(target, case):
        for dtype in FLOAT_DTYPES:
            result = call_pool(target, name, case.with_input(case.input.to(dtype)))
            result_tensor(result, dtype, same_dtype=True)
    return check


# =============================================================================== functional

def check_agrees_with_torch(name: str):
    """The target's F.{name} equals torch's in float64 (max exactly, avg within its bound)."""
    def check(target, case):
        compare(call_pool(target, name, case), oracle_of(name, case),
                input_dtype=case.input.dtype, oracle=TORCH_NAMES[name], same_dtype=True)
    return check


def check_max_matches_scipy(target, case):
    """Unpadded max_pool2d = scipy.ndimage.maximum_filter with the dilated footprint, valid
    part, every s-th output."""
    kwargs = case.kwargs()
    expected = pool_oracles.scipy_max_pool2d(case.input, case.kernel_size, case.stride,
                                             kwargs["dilation"])
    compare(call_pool(target, "max_pool2d", case), expected, input_dtype=case.input.dtype,
            same_dtype=True, oracle="scipy.ndimage.maximum_filter (valid part, subsampled)")


def check_avg_matches_scipy(target, case):
    """Unpadded avg_pool2d = scipy.ndimage.uniform_filter, valid part, every s-th output."""
    expected = pool_oracles.scipy_avg_pool2d(case.input, case.kernel_size, case.stride)
    compare(call_pool(target, "avg_pool2d", case), expected, input_dtype=case.input.dtype,
            same_dtype=True, oracle="scipy.ndimage.uniform_filter (valid part, subsampled)")


def check_output_shape(name: str):
    """The result is (N, C, oh, ow) with reference.shapes.pool_output_size per axis:
    floor_or_ceil((n + 2p − d(k − 1) − 1)/s) + 1, less one in ceil mode when the last window
    would start in the right padding."""
    def check(target, case):
        result = call_pool(target, name, case)
        got = tuple(result_tensor(result, case.input.dtype).shape)
        wanted = sp.output_shape(case)
        if got != wanted:
            raise result.failure(
                f"result has shape {got}, expected {wanted} (N, C, then per axis "
                "floor_or_ceil((n + 2p − d·(k − 1) − 1)/s) + 1, ceil-mode rule included)")
    return check


def ceil_window_kept(case, got_shape) -> bool:
    """Whether `got_shape` is the output size with the ceil-mode rule left out: an extra
    window, one that starts in the right padding, on an axis where torch drops it."""
    if not case.ceil_mode or len(got_shape) != 4:
        return False
    kernel, stride, padding, dilation = sp.pool_pairs(case)
    wanted = sp.output_shape(case)[2:]
    for axis in range(2):
        span = (case.input.shape[2 + axis] + 2 * padding[axis]
                - dilation[axis] * (kernel[axis] - 1) - 1)
        without_rule = -(-span // stride[axis]) + 1
        if without_rule > wanted[axis] and got_shape[2 + axis] == without_rule:
            return True
    return False


def check_default_stride(name: str):
    """Called without a stride, the stride is the kernel size (diagnosis when it is 1)."""
    def check(target, case):
        pool = case.pool
        result = target.call(name, pool.input, pool.kernel_size, **case.kwargs())
        compare(result, oracle_of(name, pool), input_dtype=pool.input.dtype, same_dtype=True,
                oracle=f"{TORCH_NAMES[name]} with stride = kernel_size")
    return check


def check_padding_per_axis(name: str):
    """padding=(ph, pw) pads the height by ph and the width by pw."""
    def check(target, case):
        compare(call_pool(target, name, case), oracle_of(name, case),
                input_dtype=case.input.dtype, same_dtype=True, oracle=TORCH_NAMES[name])
    return check


# ------------------------------------------------------------------------------- max pool

def check_max_of_constant(target, case):
    """max_pool2d(c · ones) = c wherever the window reaches into the image, padding or not
    (−∞ padding never wins); −∞ where a dilated window lies wholly in the padding."""
    result = call_pool(target, "max_pool2d", case)
    constant = case.input.reshape(-1)[0].to(torch.float64)
    touching = sp.windows_touching_image(case).expand(sp.output_shape(case))
    expected = torch.where(touching, constant, torch.tensor(float("-inf"), dtype=torch.float64))
    compare(result, Expected.exact(expected), input_dtype=case.input.dtype, same_dtype=True,
            oracle="the constant (−∞ for a window wholly in the padding)")


def check_max_commutes_with_monotone_map(target, case):
    """max_pool2d(f(x)) = f(max_pool2d(x)) for a strictly increasing f, exact here."""
    f = sp.MONOTONE_MAPS[case.map_name]
    pool = case.pool
    plain = call_pool(target, "max_pool2d", pool)
    mapped = call_pool(target, "max_pool2d", pool.with_input(f(pool.input)))
    dtype = pool.input.dtype
    assert_equal_after_map(mapped, f(values_of(plain, dtype)), values_of(mapped, dtype),
                           case.map_name, "max_pool2d")


def check_max_pads_with_minus_infinity(target, case):
    """All-negative input, windows reaching into the padding: the padding never wins, so no
    0 appears that is not in the input."""
    compare(call_pool(target, "max_pool2d", case), oracle_of("max_pool2d", case),
            input_dtype=case.input.dtype, same_dtype=True,
            oracle="torch's float64 max_pool2d (padding is −∞)")


def check_ceil_mode_rule(name: str):
    """In ceil mode the last window may overhang the padded input, but a window that would
    start in the right padding is dropped; values as torch (for avg_pool2d: the window's
    divisor counts only its part inside the padded input, end clamped to n + p)."""
    def check(target, case):
        result = call_pool(target, name, case)
        got = result_tensor(result, case.input.dtype)
        if ceil_window_kept(case, tuple(got.shape)):
            raise result.failure(
                f"result has shape {tuple(got.shape)}, expected {sp.output_shape(case)}: in "
                "ceil mode a last window that would start in the right padding, "
                "(out − 1)·s ≥ n + p, is dropped")
        compare(result, oracle_of(name, case), input_dtype=case.input.dtype, same_dtype=True,
                oracle=TORCH_NAMES[name])
    return check


# ------------------------------------------------------------------------------- avg pool

def target_max_values(target, case: sp.AvgPoolCase) -> tuple[torch.Tensor, str]:
    """The max pool of the avg case's windows: the target's own max_pool2d when it defines
    it (checked exactly against torch first, so a wrong max is blamed on max_pool2d), else
    torch's."""
    max_case = sp.MaxPoolCase(case.input, case.kernel_size, case.stride, case.padding, 1,
                              case.ceil_mode)
    expected = oracle_of("max_pool2d", max_case)
    if not target.defines("max_pool2d"):
        return expected.value, "torch's max_pool2d of the same windows"
    result = call_pool(target, "max_pool2d", max_case)
    compare(result, expected, input_dtype=case.input.dtype, same_dtype=True,
            oracle=TORCH_NAMES["max_pool2d"], prop="agrees with torch's float64 max_pool2d")
    return values_of(result, case.input.dtype), "the target's max_pool2d of the same windows"


def check_avg_not_above_max(target, case):
    """avg_pool2d ≤ max_pool2d over the same windows (count_include_pad=False, so only
    image elements are averaged), up to the average's rounding."""
    maximum, source = target_max_values(target, case)
    average = call_pool(target, "avg_pool2d", case)
    assert_not_above(average, maximum, oracle_of("avg_pool2d", case), case.input.dtype, source)


def check_avg_is_uniform_correlation(target, case):
    """avg_pool2d(x, k, s, p) with count_include_pad = conv2d of each channel with
    ones(kh, kw) / (kh·kw), stride s, zero padding p."""
    x = case.input
    expected = pool_oracles.uniform_kernel_correlation(x, case.kernel_size, case.stride,
                                                       case.padding)
    compare(call_pool(target, "avg_pool2d", case), expected, input_dtype=x.dtype,
            same_dtype=True,
            oracle="torch's float64 conv2d with the uniform kernel ones / (kh·kw) per channel")


def check_count_include_pad(target, case):
    """With padding, count_include_pad=True divides by the window clipped to the padded
    input, False by its part inside the image — as torch."""
    compare(call_pool(target, "avg_pool2d", case), oracle_of("avg_pool2d", case),
            input_dtype=case.input.dtype, same_dtype=True,
            oracle=f"{TORCH_NAMES['avg_pool2d']} with count_include_pad={case.count_include_pad}")


def check_divisor_override(target, case):
    """divisor_override replaces every window's divisor — as torch."""
    compare(call_pool(target, "avg_pool2d", case), oracle_of("avg_pool2d", case),
            input_dtype=case.input.dtype, same_dtype=True,
            oracle=f"{TORCH_NAMES['avg_pool2d']} with divisor_override={case.divisor_override}")


# =============================================================================== declarations

def _grid(n: int, dtype=torch.float32) -> torch.Tensor:
    """A (1, 1, n, n) batch of one holding 0 .. n² − 1 shifted to be centred on 0."""
    return (torch.arange(n * n, dtype=dtype) - (n * n) // 2).reshape(1, 1, n, n)


#: Must-run functional cases: a batch of one; the ceil-mode window that would start in the
#: padding (n=5, k=2, s=2, p=1: 3 windows, not 4) and one that overhangs it (n=4: 3 windows).
MAX_EXAMPLES = (sp.MaxPoolCase(_grid(4), 2, None),
                sp.MaxPoolCase(_grid(5), 2, 2, 1, 1, True),
                sp.MaxPoolCase(_grid(4, torch.float64), 2, 2, 1, 1, True),
                sp.MaxPoolCase(_grid(5) - 20, (3, 2), (1, 3), (1, 1), (2, 1), False))
AVG_EXAMPLES = (sp.AvgPoolCase(_grid(4), 2, None),
                sp.AvgPoolCase(_grid(5) + 13, 2, 2, 1, True, True, None),
                sp.AvgPoolCase(_grid(5) + 13, 3, 2, 1, True, False, None),
                sp.AvgPoolCase(_grid(4, torch.float64) + 9, 3, 1, 1, False, True, 2))

#: Padded borders holding only negative values (the −∞ padding must never win).
NEGATIVE_BORDER_EXAMPLES = (sp.MaxPoolCase(_grid(4) - 20, 3, 2, 1, 1, False),
                            sp.MaxPoolCase(torch.full((1, 2, 3, 3), -2.5), 2, 1, 1, 1, True))
DEFAULT_STRIDE_EXAMPLES = {
    "max_pool2d": (sp.DefaultStrideCase(sp.MaxPoolCase(_grid(4), 2, None), False),
                   sp.DefaultStrideCase(sp.MaxPoolCase(_grid(5), (3, 2), None), True)),
    "avg_pool2d": (sp.DefaultStrideCase(sp.AvgPoolCase(_grid(4), 2, None), False),
                   sp.DefaultStrideCase(sp.AvgPoolCase(_grid(5), (3, 2), None), True)),
}

MAX_CASES = sp.max_pool_cases()
AVG_CASES = sp.avg_pool_cases()
UNPADDED_MAX_CASES = sp.max_pool_cases(padding=False, ceil_mode=False)
UNPADDED_AVG_CASES = sp.avg_pool_cases(padding=False, ceil_mode=False, divisor_override=False)
MONOTONE_TEXTBOOK = sp.monotone_cases(sp.textbook_pool_cases(integer_valued=True))
MONOTONE_MAX = sp.monotone_cases(sp.max_pool_cases(integer_valued=True))
NEGATIVE_PADDED_MAX = sp.max_pool_cases(min_padding=1, low=-8, high=-1)

POOL2D_PROPERTIES = [
    Property("pool2d", "agrees with torch's float64 max pooling (mode left to its default)",
             TEXTBOOK_CASES, check_pool2d_max_agrees_with_torch, examples=TEXTBOOK_EXAMPLES),
    Property("pool2d", "agrees with torch's float64 average pooling (mode 'avg' positional)",
             TEXTBOOK_CASES, check_pool2d_avg_agrees_with_torch, examples=TEXTBOOK_EXAMPLES),
    Property("pool2d", "agrees with scipy.ndimage.maximum_filter (mode='max')", TEXTBOOK_CASES,
             check_pool2d_max_matches_scipy, budget=0.5),
    Property("pool2d", "agrees with scipy.ndimage.uniform_filter (mode='avg')", TEXTBOOK_CASES,
             check_pool2d_avg_matches_scipy, budget=0.5),
    Property("pool2d", "has output shape (h - ph + 1, w - pw + 1) in both modes",
             TEXTBOOK_CASES, check_pool2d_output_shape, budget=0.25),
    Property("pool2d", "in mode 'avg' is a correlation with the uniform kernel ones / (ph·pw)",
             TEXTBOOK_CASES, check_pool2d_avg_is_uniform_correlation, budget=0.5,
             examples=TEXTBOOK_EXAMPLES[:1]),
    Property("pool2d", "max pool is never below avg pool", TEXTBOOK_CASES,
             check_pool2d_max_not_below_avg, budget=0.5),
    Property("pool2d", "max pool of a constant is that constant", sp.constant_textbook_cases(),
             check_pool2d_max_of_constant, budget=0.25),
    Property("pool2d", "max pool commutes with increasing maps (2x + 1, x³)",
             MONOTONE_TEXTBOOK, check_pool2d_commutes_with_monotone_map, budget=0.25),
    Property("pool2d", "max pool's gradient agrees with torch's",
             sp.textbook_gradient_cases("max"), check_pool2d_gradient("max"), budget=0.25),
    Property("pool2d", "avg pool's gradient agrees with torch's",
             sp.textbook_gradient_cases("avg"), check_pool2d_gradient("avg"), budget=0.25),
    Property("pool2d", "returns floating-point values for float32 and float64 input",
             TEXTBOOK_CASES, check_pool2d_floating_result, budget=0.1),
]

def shared_functional_properties(name: str, cases, examples, unpadded_cases, scipy_oracle: str,
                                 scipy_check, padding_example) -> list[Property]:
    """The properties max_pool2d and avg_pool2d both have, first in their lists."""
    kind = name.removesuffix("_pool2d")
    return [
        Property(name, f"agrees with torch's float64 {name}", cases,
                 check_agrees_with_torch(name), examples=examples),
        Property(name, f"agrees with {scipy_oracle} (no padding)", unpadded_cases,
                 scipy_check, budget=0.25),
        Property(name, "has the output shape of reference.shapes.pool_output_size", cases,
                 check_output_shape(name), budget=0.25),
        Property(name, "uses the kernel size as the default stride",
                 sp.default_stride_cases(cases), check_default_stride(name), budget=0.25,
                 examples=DEFAULT_STRIDE_EXAMPLES[name]),
        Property(name, "pads each axis by its own amount (padding=(ph, pw), ph != pw)",
                 sp.asymmetric_padding_cases(kind), check_padding_per_axis(name),
                 budget=0.25, examples=(padding_example,)),
    ]


MAX_POOL_PROPERTIES = [
    *shared_functional_properties("max_pool2d", MAX_CASES, MAX_EXAMPLES, UNPADDED_MAX_CASES,
                                  "scipy.ndimage.maximum_filter", check_max_matches_scipy,
                                  sp.MaxPoolCase(_grid(5) - 20, 3, 1, (1, 0))),
    Property("max_pool2d", "of a constant is that constant", sp.constant_max_cases(),
             check_max_of_constant, budget=0.25, examples=NEGATIVE_BORDER_EXAMPLES[1:]),
    Property("max_pool2d", "commutes with increasing maps (2x + 1, x³)", MONOTONE_MAX,
             check_max_commutes_with_monotone_map, budget=0.25),
    Property("max_pool2d", "pads with -inf, not 0 (all-negative inputs, padded borders)",
             NEGATIVE_PADDED_MAX, check_max_pads_with_minus_infinity, budget=0.5,
             examples=NEGATIVE_BORDER_EXAMPLES),
    Property("max_pool2d", "drops a ceil-mode window that would start in the padding",
             sp.ceil_mode_max_cases(), check_ceil_mode_rule("max_pool2d"), budget=0.5,
             examples=MAX_EXAMPLES[1:3]),
    Property("max_pool2d", "has gradients that agree with torch's", sp.max_gradient_cases(),
             check_functional_gradient("max_pool2d"), budget=0.25),
    Property("max_pool2d", "keeps the input's dtype (float32 and float64)", MAX_CASES,
             check_keeps_dtype("max_pool2d"), budget=0.1),
]

AVG_POOL_PROPERTIES = [
    *shared_functional_properties("avg_pool2d", AVG_CASES, AVG_EXAMPLES, UNPADDED_AVG_CASES,
                                  "scipy.ndimage.uniform_filter", check_avg_matches_scipy,
                                  sp.AvgPoolCase(_grid(5) + 13, 3, 1, (1, 0))),
    Property("avg_pool2d", "is never above max_pool2d (count_include_pad=False)",
             sp.avg_pool_cases(count_include_pad=False, divisor_override=False),
             check_avg_not_above_max, budget=0.25),
    Property("avg_pool2d", "with count_include_pad is a correlation with a uniform kernel",
             sp.avg_pool_cases(ceil_mode=False, count_include_pad=True,
                               divisor_override=False),
             check_avg_is_uniform_correlation, budget=0.5),
    Property("avg_pool2d", "honours count_include_pad as torch does (padded inputs)",
             sp.avg_pool_cases(min_padding=1, divisor_override=False, low=1, high=8),
             check_count_include_pad, budget=0.5, examples=AVG_EXAMPLES[1:3]),
    Property("avg_pool2d", "divides a ceil-mode window by its part inside the padded input",
             sp.ceil_mode_avg_cases(), check_ceil_mode_rule("avg_pool2d"), budget=0.5,
             examples=AVG_EXAMPLES[1:3]),
    Property("avg_pool2d", "honours divisor_override as torch does",
             sp.avg_pool_cases(divisor_override=True, low=1, high=8), check_divisor_override,
             budget=0.5, examples=AVG_EXAMPLES[3:]),
    Property("avg_pool2d", "has gradients that agree with torch's",
             sp.gradient_cases(sp.avg_pool_cases()), check_functional_gradient("avg_pool2d"),
             budget=0.25),
    Property("avg_pool2d", "keeps the input's dtype (float32 and float64)", AVG_CASES,
             check_keeps_dtype("avg_pool2d"), budget=0.1),
]

PROPERTIES = [*POOL2D_PROPERTIES, *MAX_POOL_PROPERTIES, *AVG_POOL_PROPERTIES]
