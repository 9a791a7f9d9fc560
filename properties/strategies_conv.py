"""Hypothesis strategies for the functional `conv2d` and the textbook `Conv2D` module.

Parameters are drawn first and the input that makes them valid after, so nothing is filtered:
groups first, then channels as multiples of it; kernel, dilation, stride and padding, then a
spatial size n with d·(k − 1) + 1 ≤ n + pb + pa (the kernel may be exactly as large as the
padded input). Corners reached on purpose: stride larger than the kernel, asymmetric pair
padding, even kernels with 'same', a batch of one, non-contiguous layouts, bias or none.

Every case is a frozen `Case` whose repr is runnable Python.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from hypothesis import strategies as st

from properties.strategies import (NONCONTIGUOUS_LAYOUTS, Case, dtypes, tensors,
                                   with_layout)
from reference import shapes

#: Memory layouts other than contiguous (strategies.with_layout).
NONCONTIGUOUS = tuple(layout for layout in NONCONTIGUOUS_LAYOUTS if layout != "contiguous")

#: How `padding` is written in a call.
PADDING_FORMS = ("int", "pair", "valid", "same")

MAX_KERNEL = 3
MAX_STRIDE = 3
MAX_DILATION = 2
MAX_PADDING = 2
MAX_GROUPS = 3
MAX_CHANNELS = 6        # in and out; per group at most 3 (2 groups: 1-3 each, 3 groups: 1-2)
MAX_EXTRA_SIZE = 3
MAX_BATCH = 3


@dataclasses.dataclass(frozen=True, repr=False)
class ConvCase(Case):
    """One call conv2d(input, weight, bias, stride, padding, dilation, groups)."""
    input: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: Any
    padding: Any
    dilation: Any
    groups: int

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def args(self) -> tuple:
        return (self.input, self.weight, self.bias)

    def arguments(self) -> tuple[tuple, dict]:
        """(positional, keyword) arguments of the call."""
        return self.args(), self.kwargs()

    def replace(self, **changes) -> "ConvCase":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class ConvSettings:
    """The non-tensor half of a call, per axis: (height value, width value)."""
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]   # ((top, bottom), (left, right))
    padding_form: str
    groups: int


# --------------------------------------------------------------------------- shapes

def per_side_padding(padding, kernel, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) for an int, a pair, 'valid' or 'same' (stride 1)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return (shapes.same_padding(kernel[0], dilation[0]),
                shapes.same_padding(kernel[1], dilation[1]))
    ph, pw = shapes.pair(padding, "padding")
    return (ph, ph), (pw, pw)


def conv_output_shape(case: ConvCase) -> tuple[int, int, int, int]:
    """(N, C_out, oh, ow) by the formula  o = ⌊(n + pb + pa − d·(k − 1) − 1) / s⌋ + 1."""
    kernel = tuple(case.weight.shape[2:])
    stride = shapes.pair(case.stride, "stride")
    dilation = shapes.pair(case.dilation, "dilation")
    sides = per_side_padding(case.padding, kernel, dilation)
    spatial = tuple(shapes.conv_output_size(case.input.shape[2 + axis], kernel[axis],
                                            stride=stride[axis], pad_before=sides[axis][0],
                                            pad_after=sides[axis][1], dilation=dilation[axis])
                    for axis in (0, 1))
    return (case.input.shape[0], case.weight.shape[0], *spatial)


def _as_written(values: tuple[int, int], as_pair: bool):
    """An int when both axes agree and the draw says so, else the pair."""
    return values if as_pair or values[0] != values[1] else values[0]


# --------------------------------------------------------------------------- settings

@st.composite
def _axis_pair(draw, low: int, high: int, label: str, at_least_one_above: int | None = None):
    """(height, width) values in [low, high]; with `at_least_one_above` = v, one axis > v."""
    values = [draw(st.integers(low, high), label=f"{label} height"),
              draw(st.integers(low, high), label=f"{label} width")]
    if at_least_one_above is not None and max(values) <= at_least_one_above:
        axis = draw(st.sampled_from((0, 1)), label=f"{label}: axis above {at_least_one_above}")
        values[axis] = draw(st.integers(at_least_one_above + 1, high),
                            label=f"{label} on that axis")
    return tuple(values)


@st.composite
def conv_settings(draw, *, padding_forms=PADDING_FORMS, strided: bool = False,
                  dilated: bool = False, grouped: bool = False,
                  asymmetric_padding: bool = False) -> ConvSettings:
    """Kernel, stride, dilation, padding and groups of a valid call.

    strided / dilated / grouped force a stride / dilation above 1 on some axis / groups ≥ 2;
    asymmetric_padding forces a pair (ph, pw) with ph ≠ pw. 'same' comes with stride 1."""
    groups = draw(st.integers(2 if grouped else 1, MAX_GROUPS), label="groups")
    kernel = draw(_axis_pair(1, MAX_KERNEL, "kernel"))
    dilation = draw(_axis_pair(1, MAX_DILATION, "dilation", 1 if dilated else None))
    form = "pair" if asymmetric_padding else draw(st.sampled_from(padding_forms),
                                                  label="padding form")
    if form == "same":
        stride = (1, 1)
    else:
        stride = draw(_axis_pair(1, MAX_STRIDE, "stride", 1 if strided else None))
    if form == "int":
        p = draw(st.integers(0, MAX_PADDING), label="padding")
        padding = ((p, p), (p, p))
    elif form == "pair":
        ph = draw(st.integers(0, MAX_PADDING), label="padding height")
        if asymmetric_padding:
            pw = (ph + draw(st.integers(1, MAX_PADDING), label="padding width − height")) \
                % (MAX_PADDING + 1)
        else:
            pw = draw(st.integers(0, MAX_PADDING), label="padding width")
        padding = ((ph, ph), (pw, pw))
    else:
        padding = per_side_padding(form, kernel, dilation)
    return ConvSettings(kernel, stride, dilation, padding, form, groups)


def padding_argument(settings: ConvSettings):
    """`padding` as the call writes it."""
    if settings.padding_form in ("valid", "same"):
        return settings.padding_form
    (ph, _), (pw, _) = settings.padding
    return ph if settings.padding_form == "int" else (ph, pw)


# --------------------------------------------------------------------------- cases

def _smallest_input_size(settings: ConvSettings, axis: int) -> int:
    """The least n ≥ 1 with d·(k − 1) + 1 ≤ n + pb + pa."""
    span = shapes.effective_kernel_size(settings.kernel[axis], settings.dilation[axis])
    return max(1, span - sum(settings.padding[axis]))


@st.composite
def conv_case_for(draw, settings: ConvSettings, *, dtype: torch.dtype | None = None,
                  layout_choices=NONCONTIGUOUS_LAYOUTS, bias: bool | None = None,
                  integer_valued: bool | None = None) -> ConvCase:
    """Tensors for `settings`: channels as multiples of groups (input and output counts per
    group drawn apart, so with groups they differ more often than not: a mistake slicing a
    group's input channels by the output count shows), spatial size just valid or more,
    values mixed integer/float, input and weight in drawn memory layouts."""
    dtype = dtype or draw(dtypes(), label="dtype")
    g = settings.groups
    per_group = st.integers(1, max(1, min(3, MAX_CHANNELS // g)))
    in_channels = g * draw(per_group, label="input channels per group")
    out_channels = g * draw(per_group, label="output channels per group")
    batch = draw(st.integers(1, MAX_BATCH), label="batch")
    h, w = (_smallest_input_size(settings, axis) +
            draw(st.integers(0, MAX_EXTRA_SIZE), label=f"extra input {name}")
            for axis, name in ((0, "height"), (1, "width")))
    values = dict(integer_valued=integer_valued)
    x = draw(tensors((batch, in_channels, h, w), dtype, label="input", **values))
    weight = draw(tensors((out_channels, in_channels // g, *settings.kernel), dtype,
                          label="weight", **values))
    with_bias = draw(st.booleans(), label="with bias") if bias is None else bias
    b = draw(tensors((out_channels,), dtype, label="bias", **values)) if with_bias else None
    x = with_layout(x, draw(st.sampled_from(layout_choices), label="input layout"))
    weight = with_layout(weight, draw(st.sampled_from(layout_choices), label="weight layout"))
    as_pair = draw(st.booleans(), label="stride/dilation written as pairs")
    return ConvCase(x, weight, b, _as_written(settings.stride, as_pair),
                    padding_argument(settings), _as_written(settings.dilation, as_pair), g)


@st.composite
def conv_cases(draw, *, layout_choices=NONCONTIGUOUS_LAYOUTS, dtype: torch.dtype | None = None,
               integer_valued: bool | None = None, **setting_options) -> ConvCase:
    """Valid conv2d calls (see conv_settings for the options)."""
    settings = draw(conv_settings(**setting_options))
    return draw(conv_case_for(settings, layout_choices=layout_choices, dtype=dtype,
                              integer_valued=integer_valued))


@dataclasses.dataclass(frozen=True, repr=False)
class ConvGradCase(Case):
    """A conv2d call and the upstream gradient dL/d(output) to backpropagate."""
    call: ConvCase
    upstream: torch.Tensor


@st.composite
def conv_gradient_cases(draw) -> ConvGradCase:
    case = draw(conv_cases(padding_forms=("int", "pair", "same")))
    upstream = draw(tensors(conv_output_shape(case), case.input.dtype, label="upstream"))
    return ConvGradCase(case, upstream)


# --------------------------------------------------------------------------- invalid calls

#: The ways a call can break torch's rules (contract: "must raise wherever torch raises").
BREAKAGES = ("none", "kernel larger than the padded input", "non-positive stride",
             "non-positive dilation", "negative padding", "'same' with stride above 1",
             "groups not dividing the output channels",
             "groups not dividing the input channels", "input channels mismatch")


@dataclasses.dataclass(frozen=True, repr=False)
class MaybeInvalidCase(Case):
    """A conv2d call that may break a rule; `breakage` says which one was meant."""
    breakage: str
    call: ConvCase

    def arguments(self) -> tuple[tuple, dict]:
        return self.call.arguments()


def _one_axis_value(draw, value: int, label: str):
    """(value, ok) or (ok, value) as a pair, or the bare int."""
    form = draw(st.sampled_from(("int", "height", "width")), label=label)
    return {"int": value, "height": (value, 1), "width": (1, value)}[form]


@st.composite
def _broken(draw, breakage: str, case: ConvCase) -> ConvCase:
    """`case` with one rule broken (torch decides in the check whether it really is)."""
    x, weight = case.input, case.weight
    if breakage == "kernel larger than the padded input":
        k = weight.shape[2:]
        extra = draw(st.integers(1, 2), label="kernel excess")
        axis = draw(st.sampled_from((2, 3)), label="axis too small")
        size = max(1, k[axis - 2] - extra)
        x = x.narrow(axis, 0, min(size, x.shape[axis]))
        return case.replace(input=x, padding=0, dilation=1, stride=1)
    if breakage == "non-positive stride":
        return case.replace(stride=_one_axis_value(draw, draw(st.integers(-1, 0)), "stride form"),
                            padding=0)
    if breakage == "non-positive dilation":
        return case.replace(
            dilation=_one_axis_value(draw, draw(st.integers(-1, 0)), "dilation form"))
    if breakage == "negative padding":
        padding = _one_axis_value(draw, -draw(st.integers(1, 2)), "padding form")
        return case.replace(input=_tall_enough(case, padding), padding=padding)
    if breakage == "'same' with stride above 1":
        return case.replace(padding="same",
                            stride=_one_axis_value(draw, draw(st.integers(2, 3)), "stride form"))
    if breakage == "groups not dividing the output channels":
        extra = weight[:1]
        return case.replace(weight=torch.cat([weight, extra]), bias=None,
                            groups=max(case.groups, 2))
    if breakage == "groups not dividing the input channels":
        return case.replace(input=torch.cat([x, x[:, :1]], dim=1))
    if breakage == "input channels mismatch":
        return case.replace(input=x[:, 1:] if x.shape[1] > 1 else torch.cat([x, x], dim=1))
    return case


def _tall_enough(case: ConvCase, padding) -> torch.Tensor:
    """The input tiled along each axis until the kernel still fits after a negative padding
    crops it (n + 2p ≥ d·(k − 1) + 1), so a target that crops instead of refusing returns a
    result rather than failing for another reason."""
    x = case.input
    dilation = shapes.pair(case.dilation, "dilation")
    for axis, p in enumerate(shapes.pair(padding, "padding")):
        needed = shapes.effective_kernel_size(case.weight.shape[2 + axis], dilation[axis]) \
            - 2 * min(p, 0)
        n = x.shape[2 + axis]
        if n < needed:
            x = torch.cat([x] * -(-needed // n), dim=2 + axis).narrow(2 + axis, 0, needed)
    return x


def _corner_example(x_shape, w_shape, bias: bool, scale: float = 1.0, **kwargs) -> ConvCase:
    """An explicit call with small integer values in a repeating pattern, times `scale`
    (kwargs as conv2d's)."""
    x = (torch.arange(math.prod(x_shape), dtype=torch.float32) % 7 - 3).reshape(x_shape) * scale
    w = (torch.arange(math.prod(w_shape), dtype=torch.float32) % 5 - 2).reshape(w_shape) * scale
    b = torch.arange(w_shape[0], dtype=torch.float32) - 1 if bias else None
    call = dict(stride=1, padding=0, dilation=1, groups=1) | kwargs
    return ConvCase(x, w, b, **call)


#: Corners only some mistakes reveal, run on every target after the textbook's examples: a
#: batch of one; groups whose input and output channel counts differ (2 in / 1 out, then
#: 1 in / 2 out); a non-square stride with pair padding and dilation on one axis; 'same' with
#: an even kernel dilated on the other axis.
CORNER_EXAMPLES = (
    _corner_example((1, 4, 5, 6), (2, 2, 2, 3), True, stride=(2, 1), padding=(1, 0),
                    dilation=(1, 2), groups=2),
    _corner_example((1, 2, 5, 4), (4, 1, 3, 2), False, padding="same", dilation=(2, 1),
                    groups=2),
    # Values in thirds, which no binary precision holds exactly, and 27 terms a sum: a
    # computation in half precision is about 2^-11 off, far beyond float32's bound.
    _corner_example((2, 3, 4, 4), (2, 3, 3, 3), True, scale=1 / 3),
)


@st.composite
def maybe_invalid_cases(draw) -> MaybeInvalidCase:
    """A valid call, then one of BREAKAGES applied (or none)."""
    breakage = draw(st.sampled_from(BREAKAGES), label="breakage")
    case = draw(conv_cases(padding_forms=("int", "pair", "valid", "same")))
    return MaybeInvalidCase(breakage, draw(_broken(breakage, case)))


# --------------------------------------------------------------------------- Conv2D module

@dataclasses.dataclass(frozen=True, repr=False)
class ModuleForwardCase(Case):
    """Conv2D(kernel_size) built after torch.manual_seed(seed), parameters optionally set to
    `weight`/`bias`, run on x in `mode` ('train' or 'eval')."""
    kernel_size: tuple[int, int]
    seed: int
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    x: torch.Tensor
    mode: str


@st.composite
def module_forward_cases(draw) -> ModuleForwardCase:
    kh, kw = draw(_axis_pair(1, MAX_KERNEL, "kernel"))
    h = kh + draw(st.integers(0, 4), label="extra height")
    w = kw + draw(st.integers(0, 4), label="extra width")
    seed = draw(st.integers(0, 2 ** 16), label="seed")
    own = draw(st.booleans(), label="keep the module's initial parameters")
    weight = None if own else draw(tensors((kh, kw), torch.float32, label="weight"))
    bias = None if own else draw(tensors((1,), torch.float32, label="bias"))
    x = draw(tensors((h, w), torch.float32, label="x"))
    mode = draw(st.sampled_from(("train", "eval")), label="mode")
    return ModuleForwardCase((kh, kw), seed, weight, bias, x, mode)


@dataclasses.dataclass(frozen=True, repr=False)
class ModuleGradCase(Case):
    """Conv2D(kernel_size) with parameters set to weight/bias, loss = Σ upstream ⊙ module(x)."""
    kernel_size: tuple[int, int]
    weight: torch.Tensor
    bias: torch.Tensor
    x: torch.Tensor
    upstream: torch.Tensor


@st.composite
def module_gradient_cases(draw) -> ModuleGradCase:
    kh, kw = draw(_axis_pair(1, MAX_KERNEL, "kernel"))
    h = kh + draw(st.integers(0, 4), label="extra height")
    w = kw + draw(st.integers(0, 4), label="extra width")
    weight = draw(tensors((kh, kw), torch.float32, label="weight"))
    bias = draw(tensors((1,), torch.float32, label="bias"))
    x = draw(tensors((h, w), torch.float32, label="x"))
    upstream = draw(tensors((h - kh + 1, w - kw + 1), torch.float32, label="upstream"))
    return ModuleGradCase((kh, kw), weight, bias, x, upstream)


@dataclasses.dataclass(frozen=True, repr=False)
class RecoveryCase(Case):
    """Learn `kernel` and `bias` of Y = corr2d(X, kernel) + bias from the pairs (X, Y), starting
    from the module built after torch.manual_seed(init_seed)."""
    kernel: torch.Tensor
    bias: float
    inputs: tuple[torch.Tensor, ...]
    init_seed: int


@st.composite
def recovery_cases(draw) -> RecoveryCase:
    """A kernel and bias, and random Gaussian inputs with at least 3 equations per unknown
    (so the least-squares problem is well posed)."""
    kh, kw = draw(_axis_pair(1, MAX_KERNEL, "kernel"))
    kernel = draw(tensors((kh, kw), torch.float32, low=-2, high=2, label="kernel"))
    bias = draw(st.integers(-2, 2).map(float) | st.floats(-2, 2, width=32), label="bias")
    unknowns = kh * kw + 1
    h = kh + draw(st.integers(1, 3), label="extra height")
    w = kw + draw(st.integers(1, 3), label="extra width")
    per_input = (h - kh + 1) * (w - kw + 1)
    count = -(-3 * unknowns // per_input)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 16), label="input seed"))
    inputs = tuple(torch.randn(h, w, generator=generator) for _ in range(count))
    init_seed = draw(st.integers(0, 2 ** 16), label="initialisation seed")
    return RecoveryCase(kernel, bias, inputs, init_seed)
