"""Hypothesis strategies for pooling: parameters first, then an input that makes them valid.

Per axis we draw the kernel k, the padding p ≤ ⌊k/2⌋, the dilation d (max pooling only), the
stride s (up to 5, so also larger than the kernel), and only then the input size
n ≥ d·(k − 1) + 1 − 2p, so every drawn set is valid without filtering. The output size is
then floor_or_ceil((n + 2p − d·(k − 1) − 1) / s) + 1 ≥ 1; in ceil mode the last window is
dropped when it would start in the right padding, (out − 1)·s ≥ n + p.

Dedicated strategies reach the corners: ceil-mode windows that overhang the padded input or
would start in the padding (`ceil_mode_axes`), padding on the top border whatever else is
drawn (`min_padding=1`, with all-negative inputs for max pooling's −∞ padding), inputs of
distinct values (max-pooling gradients), and valid calls with one of torch's rules broken
(`raise_cases`). Functional-dialect inputs come in non-contiguous layouts too (channels_last,
transposed, strided slices); a batch of one is where every input shrinks to.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import torch
from hypothesis import strategies as st

from properties.strategies import Case, dtypes, layouts, tensors, with_layout
from reference import shapes

IntOrPair = Union[int, tuple]

MAX_KERNEL = 4
MAX_STRIDE = 5
MAX_EXTRA = 4
MAX_SPAN = 5          # largest dilated kernel span d·(k − 1) + 1


# ----------------------------------------------------------------------------- cases

class PoolCall:
    """What the functional pooling cases share: the call is (input, kernel_size, **kwargs),
    the keyword arguments being the fields after those two (stride left out when None)."""

    def kwargs(self) -> dict:
        """The keyword arguments of the call (stride left out when None)."""
        found = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[2:]}
        return {k: v for k, v in found.items() if not (k == "stride" and v is None)}

    def arguments(self) -> tuple[tuple, dict]:
        """(positional, keyword) arguments of the call."""
        return (self.input, self.kernel_size), self.kwargs()

    def with_input(self, input: torch.Tensor):
        return dataclasses.replace(self, input=input)


@dataclasses.dataclass(frozen=True, repr=False)
class MaxPoolCase(PoolCall, Case):
    """One call max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode).

    stride None: the call leaves stride out (torch's default, the kernel size)."""
    input: torch.Tensor
    kernel_size: IntOrPair
    stride: Optional[IntOrPair]
    padding: IntOrPair = 0
    dilation: IntOrPair = 1
    ceil_mode: bool = False


@dataclasses.dataclass(frozen=True, repr=False)
class AvgPoolCase(PoolCall, Case):
    """One call avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
    divisor_override). stride None: the call leaves stride out."""
    input: torch.Tensor
    kernel_size: IntOrPair
    stride: Optional[IntOrPair]
    padding: IntOrPair = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: Optional[int] = None


@dataclasses.dataclass(frozen=True, repr=False)
class TextbookPoolCase(Case):
    """pool2d(X, pool_size): X (h, w), pool_size (ph, pw) with ph ≤ h, pw ≤ w."""
    X: torch.Tensor
    pool_size: tuple


@dataclasses.dataclass(frozen=True, repr=False)
class GradientCase(Case):
    """A pooling call and the gradient G of a loss with respect to its output:
    the gradient asked for is that of sum(pool(input) · G) with respect to the input."""
    pool: Case
    grad_output: torch.Tensor


@dataclasses.dataclass(frozen=True, repr=False)
class MonotoneCase(Case):
    """A pooling call and a strictly increasing map f, exact on its integer-valued input."""
    pool: Case
    map_name: str


#: Strictly increasing maps, exact in float32 and float64 on integers in [-8, 8].
MONOTONE_MAPS = {"2x + 1": lambda t: 2 * t + 1, "x³": lambda t: t * t * t}


# ----------------------------------------------------------------------------- axes

@dataclasses.dataclass(frozen=True)
class Axis:
    """Pooling parameters along one axis, and the input size n."""
    n: int
    k: int
    s: int
    p: int = 0
    d: int = 1


@st.composite
def pool_axes(draw, label: str, *, dilation: bool = False, padding: bool = True,
              min_padding: int = 0, stride: bool = True) -> Axis:
    """Parameters first (k, p ≤ ⌊k/2⌋, d, s), then n ≥ d·(k − 1) + 1 − 2p."""
    k = draw(st.integers(max(1, 2 * min_padding), MAX_KERNEL), label=f"{label} kernel")
    p = draw(st.integers(min_padding, k // 2), label=f"{label} padding") if padding else 0
    largest_d = max(1, (MAX_SPAN - 1) // (k - 1)) if k > 1 else 1
    d = draw(st.integers(1, largest_d), label=f"{label} dilation") if dilation else 1
    s = draw(st.integers(1, MAX_STRIDE), label=f"{label} stride") if stride else 1
    span = d * (k - 1) + 1
    n = max(1, span - 2 * p) + draw(st.integers(0, MAX_EXTRA), label=f"{label} extra size")
    return Axis(n, k, s, p, d)


@st.composite
def ceil_mode_axes(draw, label: str) -> Axis:
    """An axis on which ceil mode adds a window: n + 2p − k = s·q + r with 1 ≤ r < s.

    The added window overhangs the padded input (its divisor is clamped to n + p); it is
    dropped when it would start in the right padding, i.e. when s ≥ k − p + r."""
    k = draw(st.integers(1, MAX_KERNEL), label=f"{label} kernel")
    p = draw(st.integers(0, k // 2), label=f"{label} padding")
    s = draw(st.integers(2, MAX_STRIDE), label=f"{label} stride")
    q = draw(st.integers(0, 2), label=f"{label} whole strides")
    r = draw(st.integers(1, s - 1), label=f"{label} remainder")
    return Axis(k - 2 * p + s * q + r, k, s, p, 1)


def _int_or_pair(draw, h: int, w: int, label: str) -> IntOrPair:
    """(h, w), or the int h when both are equal and the draw says so (both forms are legal)."""
    if h == w and draw(st.booleans(), label=f"{label} as an int"):
        return h
    return (h, w)


# ----------------------------------------------------------------------------- inputs

@st.composite
def batched_inputs(draw, height: int, width: int, *, dtype=None, low=-8.0, high=8.0,
                   integer_valued=None, layout: bool = True) -> torch.Tensor:
    """An (N, C, height, width) input, N and C in 1..3 (a batch of one is the shrink
    target), in a drawn memory layout."""
    dtype = dtype or draw(dtypes(), label="dtype")
    batch = draw(st.integers(1, 3), label="batch")
    channels = draw(st.integers(1, 3), label="channels")
    x = draw(tensors((batch, channels, height, width), dtype, low=low, high=high,
                     integer_valued=integer_valued, label="input"))
    return with_layout(x, draw(layouts(), label="layout")) if layout else x


@st.composite
def distinct_inputs(draw, height: int, width: int) -> torch.Tensor:
    """An (N, C, h, w) input of distinct integers centred on 0 (no ties in any window)."""
    dtype = draw(dtypes(), label="dtype")
    batch = draw(st.integers(1, 2), label="batch")
    channels = draw(st.integers(1, 2), label="channels")
    count = batch * channels * height * width
    order = draw(st.permutations(range(count)), label="input order")
    values = torch.tensor(order, dtype=dtype) - count // 2
    return values.reshape(batch, channels, height, width)


# ----------------------------------------------------------------------------- max pool

def _max_case(draw, axes: tuple[Axis, Axis], x: torch.Tensor, ceil_mode: bool) -> MaxPoolCase:
    h, w = axes
    return MaxPoolCase(x, _int_or_pair(draw, h.k, w.k, "kernel"),
                       _int_or_pair(draw, h.s, w.s, "stride"),
                       _int_or_pair(draw, h.p, w.p, "padding"),
                       _int_or_pair(draw, h.d, w.d, "dilation"), ceil_mode)


@st.composite
def max_pool_cases(draw, *, dilation=True, padding=True, min_padding=0, stride=True,
                   ceil_mode=None, low=-8.0, high=8.0, integer_valued=None,
                   layout=True) -> MaxPoolCase:
    """Valid max_pool2d calls over the whole parameter space (ceil_mode drawn unless
    fixed)."""
    axes = (draw(pool_axes("height", dilation=dilation, padding=padding,
                           min_padding=min_padding, stride=stride)),
            draw(pool_axes("width", dilation=dilation, padding=padding, stride=stride)))
    ceil = draw(st.booleans(), label="ceil_mode") if ceil_mode is None else ceil_mode
    x = draw(batched_inputs(axes[0].n, axes[1].n, low=low, high=high,
                            integer_valued=integer_valued, layout=layout))
    return _max_case(draw, axes, x, ceil)


@st.composite
def ceil_mode_max_cases(draw) -> MaxPoolCase:
    """ceil_mode=True where it adds or drops a window on the height axis (the width axis
    drawn freely, with padding)."""
    axes = (draw(ceil_mode_axes("height")), draw(pool_axes("width")))
    x = draw(batched_inputs(axes[0].n, axes[1].n, low=1, high=8))
    return _max_case(draw, axes, x, True)


def pool_pairs(case: Case) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, padding, dilation) of a functional case, each a (height, width) pair;
    a stride left out is the kernel size, average pooling has dilation 1."""
    kernel = shapes.pair(case.kernel_size, "kernel_size")
    stride = kernel if case.stride is None else shapes.pair(case.stride, "stride")
    padding = shapes.pair(case.padding, "padding")
    dilation = shapes.pair(getattr(case, "dilation", 1), "dilation")
    return kernel, stride, padding, dilation


def output_shape(case: Case) -> tuple[int, ...]:
    """(N, C, oh, ow) by reference.shapes.pool_output_size, ceil rule included."""
    kernel, stride, padding, dilation = pool_pairs(case)
    out = [shapes.pool_output_size(case.input.shape[2 + a], kernel[a], stride=stride[a],
                                   padding=padding[a], dilation=dilation[a],
                                   ceil_mode=case.ceil_mode) for a in range(2)]
    return (*case.input.shape[:2], *out)


def axis_windows_touch_image(n: int, k: int, s: int, p: int, d: int, out: int) -> list[bool]:
    """For each window i along one axis: does one of its taps i·s − p + a·d (a < k) fall
    inside the image [0, n)? With dilation a window can lie wholly in the padding (torch then
    returns −inf there)."""
    return [any(0 <= i * s - p + a * d < n for a in range(k)) for i in range(out)]


def windows_touching_image(case: Case) -> torch.Tensor:
    """(oh, ow) booleans: whether each window of a pooling case reaches into the image."""
    kernel, stride, padding, dilation = pool_pairs(case)
    out = output_shape(case)[2:]
    rows, cols = (torch.tensor(axis_windows_touch_image(
        case.input.shape[2 + a], kernel[a], stride[a], padding[a], dilation[a], out[a]))
        for a in range(2))
    return rows[:, None] & cols[None, :]


# ----------------------------------------------------------------------------- avg pool

def _avg_case(draw, axes, x, ceil_mode, count_include_pad, divisor_override) -> AvgPoolCase:
    h, w = axes
    return AvgPoolCase(x, _int_or_pair(draw, h.k, w.k, "kernel"),
                       _int_or_pair(draw, h.s, w.s, "stride"),
                       _int_or_pair(draw, h.p, w.p, "padding"),
                       ceil_mode, count_include_pad, divisor_override)


def divisor_overrides(kernel_area: int) -> st.SearchStrategy[int]:
    """A non-zero divisor_override other than the kernel area (so ignoring it shows),
    negative ones included (torch accepts them)."""
    return st.integers(-3, 9).filter(lambda d: d not in (0, kernel_area))


@st.composite
def avg_pool_cases(draw, *, padding=True, min_padding=0, stride=True, ceil_mode=None,
                   count_include_pad=None, divisor_override: Optional[bool] = None,
                   low=-8.0, high=8.0, layout=True) -> AvgPoolCase:
    """Valid avg_pool2d calls; each flag drawn unless fixed (divisor_override: True draws
    one, False never, None either)."""
    axes = (draw(pool_axes("height", padding=padding, min_padding=min_padding,
                           stride=stride)),
            draw(pool_axes("width", padding=padding, stride=stride)))
    ceil = draw(st.booleans(), label="ceil_mode") if ceil_mode is None else ceil_mode
    include = draw(st.booleans(), label="count_include_pad") \
        if count_include_pad is None else count_include_pad
    use_override = draw(st.booleans(), label="use divisor_override") \
        if divisor_override is None else divisor_override
    override = draw(divisor_overrides(axes[0].k * axes[1].k), label="divisor_override") \
        if use_override else None
    x = draw(batched_inputs(axes[0].n, axes[1].n, low=low, high=high, layout=layout))
    return _avg_case(draw, axes, x, ceil, include, override)


@st.composite
def ceil_mode_avg_cases(draw) -> AvgPoolCase:
    """ceil_mode=True adding (or dropping) a window on the height axis; positive inputs so
    every divisor shows in the result."""
    axes = (draw(ceil_mode_axes("height")), draw(pool_axes("width")))
    include = draw(st.booleans(), label="count_include_pad")
    x = draw(batched_inputs(axes[0].n, axes[1].n, low=1, high=8))
    return _avg_case(draw, axes, x, True, include, None)


# ----------------------------------------------------------------------------- gradients

@st.composite
def gradient_cases(draw, pool_cases) -> GradientCase:
    """A contiguous pooling call and an output gradient G of the right shape."""
    pool = draw(pool_cases)
    pool = pool.with_input(pool.input.contiguous())
    grad = draw(tensors(output_shape(pool), pool.input.dtype, label="grad_output"))
    return GradientCase(pool, grad)


@st.composite
def max_gradient_cases(draw) -> GradientCase:
    """Max pooling of distinct values (the gradient goes to the unique maximum), every window
    reaching into the image. torch's backward of a window wholly in the padding sends its
    gradient to an unrelated input element (a torch bug: F.max_pool2d of x of shape
    (1, 1, 2, 1), kernel (1, 2), stride (2, 1), padding (0, 1), dilation (1, 2) is −inf, yet
    x.grad is [[0], [1]] although x[..., 1, 0] is in no window), so such windows are left
    out here; the forward value −∞ is still checked by the other properties."""
    case = draw(max_pool_cases(layout=False).filter(
        lambda c: bool(windows_touching_image(c).all())))
    x = draw(distinct_inputs(*case.input.shape[2:]))
    pool = case.with_input(x)
    grad = draw(tensors(output_shape(pool), x.dtype, label="grad_output"))
    return GradientCase(pool, grad)


# ----------------------------------------------------------------------------- invalid sets

#: The rules torch enforces, each broken on the height axis by `break_rule` ("none": valid).
BROKEN_RULES = {
    "max": ("none", "kernel not positive", "stride not positive", "negative padding",
            "padding above half the kernel", "dilation not positive",
            "kernel larger than the padded input"),
    "avg": ("none", "kernel not positive", "stride not positive", "negative padding",
            "padding above half the kernel", "kernel larger than the padded input",
            "zero divisor_override"),
}


def break_rule(axis: Axis, rule: str, amount: int) -> Axis:
    """The axis with one of torch's rules broken (`amount` ≥ 0 says by how much)."""
    if rule == "kernel not positive":
        return dataclasses.replace(axis, k=-min(amount, 1), p=0)
    if rule == "stride not positive":
        return dataclasses.replace(axis, s=-min(amount, 1))
    if rule == "negative padding":
        return dataclasses.replace(axis, p=-1 - min(amount, 1))
    if rule == "padding above half the kernel":
        return dataclasses.replace(axis, p=axis.k // 2 + 1 + min(amount, 1))
    if rule == "dilation not positive":
        return dataclasses.replace(axis, d=-min(amount, 1))
    if rule == "kernel larger than the padded input":
        span = axis.n + 2 * axis.p + 1 + min(amount, 2)
        return dataclasses.replace(axis, k=-(-(span - 1) // axis.d) + 1)
    return axis


@st.composite
def raise_cases(draw, kind: str) -> Case:
    """A valid max_pool2d (kind 'max') or avg_pool2d ('avg') call with at most one of
    torch's rules broken; the check asks torch itself whether it raises."""
    rule = draw(st.sampled_from(BROKEN_RULES[kind]), label="rule broken")
    dilation = kind == "max"
    h = draw(pool_axes("height", dilation=dilation))
    w = draw(pool_axes("width", dilation=dilation))
    h = break_rule(h, rule, draw(st.integers(0, 2), label="by how much"))
    dtype = draw(dtypes(), label="dtype")
    x = draw(tensors((1, draw(st.integers(1, 2), label="channels"), h.n, w.n), dtype,
                     label="input"))
    kernel = _int_or_pair(draw, h.k, w.k, "kernel")
    stride = None if rule != "stride not positive" and draw(
        st.booleans(), label="stride left out") else _int_or_pair(draw, h.s, w.s, "stride")
    padding = _int_or_pair(draw, h.p, w.p, "padding")
    ceil_mode = draw(st.booleans(), label="ceil_mode")
    if kind == "max":
        return MaxPoolCase(x, kernel, stride, padding, _int_or_pair(draw, h.d, w.d, "dilation"),
                           ceil_mode)
    override = 0 if rule == "zero divisor_override" else draw(
        st.one_of(st.none(), divisor_overrides(h.k * w.k)), label="divisor_override")
    return AvgPoolCase(x, kernel, stride, padding, ceil_mode,
                       draw(st.booleans(), label="count_include_pad"), override)


# ----------------------------------------------------------------------------- textbook

@st.composite
def textbook_pool_cases(draw, *, low=-8.0, high=8.0, integer_valued=None,
                        distinct: bool = False) -> TextbookPoolCase:
    """X (h, w) contiguous, pool_size (ph, pw) no larger: the pool may cover all of X."""
    dtype = draw(dtypes(), label="dtype")
    ph = draw(st.integers(1, MAX_KERNEL), label="ph")
    pw = draw(st.integers(1, MAX_KERNEL), label="pw")
    h = ph + draw(st.integers(0, MAX_EXTRA), label="extra h")
    w = pw + draw(st.integers(0, MAX_EXTRA), label="extra w")
    if distinct:
        order = draw(st.permutations(range(h * w)), label="X order")
        X = (torch.tensor(order, dtype=dtype) - (h * w) // 2).reshape(h, w)
    else:
        X = draw(tensors((h, w), dtype, low=low, high=high, integer_valued=integer_valued,
                         label="X"))
    return TextbookPoolCase(X, (ph, pw))


@st.composite
def textbook_gradient_cases(draw, mode: str) -> GradientCase:
    """pool2d(X, pool_size, mode) and an output gradient; distinct X for 'max'."""
    case = draw(textbook_pool_cases(distinct=mode == "max"))
    (h, w), (ph, pw) = case.X.shape, case.pool_size
    grad = draw(tensors((h - ph + 1, w - pw + 1), case.X.dtype, label="grad_output"))
    return GradientCase(case, grad)


@st.composite
def monotone_cases(draw, pool_cases) -> MonotoneCase:
    """A pooling call on integers in [-8, 8] and a strictly increasing map exact on them."""
    return MonotoneCase(draw(pool_cases), draw(st.sampled_from(sorted(MONOTONE_MAPS)),
                                               label="map"))


# ----------------------------------------------------------------------------- special inputs

@st.composite
def asymmetric_padding_cases(draw, kind: str) -> Case:
    """padding=(ph, pw) with ph ≠ pw, both at most half of either kernel side, so the call
    with the pair swapped is valid too (and differs: the output size or the border values)."""
    kh = draw(st.integers(2, MAX_KERNEL), label="kernel height")
    kw = draw(st.integers(2, MAX_KERNEL), label="kernel width")
    most = min(kh, kw) // 2
    ph = draw(st.integers(0, most), label="height padding")
    pw = draw(st.integers(0, most - 1), label="width padding (other than ph)")
    pw += pw >= ph
    sh, sw = (draw(st.integers(1, 2), label=f"{axis} stride") for axis in ("height", "width"))
    h = kh + draw(st.integers(0, MAX_EXTRA), label="extra height")
    w = kw + draw(st.integers(0, MAX_EXTRA), label="extra width")
    all_negative = kind == "max" and draw(st.booleans(), label="all-negative input")
    x = draw(batched_inputs(h, w, low=-8, high=-1 if all_negative else 8))
    ceil_mode = draw(st.booleans(), label="ceil_mode")
    if kind == "max":
        return MaxPoolCase(x, (kh, kw), (sh, sw), (ph, pw), 1, ceil_mode)
    return AvgPoolCase(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode,
                       draw(st.booleans(), label="count_include_pad"), None)


@dataclasses.dataclass(frozen=True, repr=False)
class DefaultStrideCase(Case):
    """A pooling call without a stride: left out, or passed as stride=None."""
    pool: Case
    pass_none: bool

    def kwargs(self) -> dict:
        return {**self.pool.kwargs(), "stride": None} if self.pass_none else self.pool.kwargs()


@st.composite
def default_stride_cases(draw, cases) -> DefaultStrideCase:
    """A drawn case called without its stride (left out, or stride=None)."""
    case = dataclasses.replace(draw(cases), stride=None)
    return DefaultStrideCase(case, draw(st.booleans(), label="pass stride=None"))


@st.composite
def constant_max_cases(draw) -> MaxPoolCase:
    """A valid max_pool2d call on a constant input c (integer or float, either sign)."""
    case = draw(max_pool_cases())
    c = draw(st.one_of(st.integers(-8, 8).map(float), st.floats(-8, 8, width=32)),
             label="constant")
    return case.with_input(torch.full_like(case.input, c))


@st.composite
def constant_textbook_cases(draw) -> TextbookPoolCase:
    """pool2d on a constant X = c · ones(h, w)."""
    case = draw(textbook_pool_cases())
    c = draw(st.one_of(st.integers(-8, 8).map(float), st.floats(-8, 8, width=32)),
             label="constant")
    return TextbookPoolCase(torch.full_like(case.X, c), case.pool_size)
