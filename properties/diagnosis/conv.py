"""Known mistakes of the cross-correlation family (corr2d ... corr2d_multi_in_out_1x1) and of
the functional conv2d, each as the float64 result of the wrong computation (properties.oracles
under the sum-of-products error model)."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from properties import oracles
from properties.diagnosis.core import (F64, Spec, View, half_precision, one_short, pair,
                                       reshaped, scaled, variant)
from properties.tolerance import Expected, sum_of_products
from reference import shapes

FLIPPED = "computes convolution (the kernel flipped), not cross-correlation"


def _flip(K: torch.Tensor) -> torch.Tensor:
    return K.flip(-2, -1)


# --------------------------------------------------------------------------- corr2d

def _corr2d(view: View) -> Expected:
    return oracles.corr2d(view.params["X"], view.params["K"])


def _kernel_dimension_swapped(view: View):
    """The output sized with one kernel dimension where the other belongs: (h−kh+1, w−kh+1),
    (h−kw+1, w−kw+1) or (h−kw+1, w−kh+1); windows that fit are the true ones."""
    (h, w), (kh, kw) = view.params["X"].shape, view.params["K"].shape
    if kh == kw:
        return
    correct = _corr2d(view)
    for shape in ((h - kh + 1, w - kh + 1), (h - kw + 1, w - kw + 1), (h - kw + 1, w - kh + 1)):
        yield reshaped(correct, shape)


CORR2D = Spec(
    correct=lambda v: {"result": [_corr2d(v)]},
    mistakes=[
        variant("flipped-kernel", FLIPPED,
                lambda v: [oracles.corr2d(v.params["X"], _flip(v.params["K"]))]),
        variant("kernel-height-for-width", "the output is sized with the kernel's height "
                "where its width belongs (or the other way round)", _kernel_dimension_swapped),
        variant("output-one-short", "the output is one row or column short "
                "(range(h - kh) instead of range(h - kh + 1))", lambda v: one_short(_corr2d(v))),
        half_precision(),
    ])


# --------------------------------------------------------------------------- corr2d_multi_in

def _multi_in(view: View) -> Expected:
    return oracles.corr2d_multi_in(view.params["X"], view.params["K"])


CORR2D_MULTI_IN = Spec(
    correct=lambda v: {"result": [_multi_in(v)]},
    mistakes=[
        variant("channels-averaged", "averages the channels' cross-correlations instead of "
                "summing them", lambda v: [scaled(_multi_in(v), 1 / v.params["X"].shape[0])]),
        variant("first-channel-only", "uses only the first input channel (the sum over "
                "channels is missing)",
                lambda v: [oracles.corr2d(v.params["X"][0], v.params["K"][0])]),
        variant("last-channel-only", "keeps only the last channel (the running sum is "
                "overwritten, not accumulated)",
                lambda v: [oracles.corr2d(v.params["X"][-1], v.params["K"][-1])]),
        variant("flipped-kernel", FLIPPED,
                lambda v: [oracles.corr2d_multi_in(v.params["X"], _flip(v.params["K"]))]),
        variant("output-one-short", "the output is one row or column short",
                lambda v: one_short(_multi_in(v))),
        half_precision(),
    ])


# --------------------------------------------------------------------------- multi_in_out

def _multi_in_out(view: View) -> Expected:
    return oracles.corr2d_multi_in_out(view.params["X"], view.params["K"])


def _rearranged(expected: Expected, how) -> Expected:
    """The per-output-channel maps rearranged by `how` (a tensor -> tensor function)."""
    full = lambda u: torch.as_tensor(expected.bound(u), dtype=F64).expand(expected.value.shape)
    return Expected(how(expected.value), lambda u: how(full(u)))


def _wrong_axis(view: View):
    """Stacked on axis 1 or 2 instead of 0, or concatenated along rows or columns."""
    e = _multi_in_out(view)
    co, oh, ow = e.value.shape
    for how in (lambda t: t.permute(1, 0, 2).contiguous(),
                lambda t: t.permute(1, 2, 0).contiguous(),
                lambda t: t.reshape(co * oh, ow),
                lambda t: t.permute(1, 0, 2).reshape(oh, co * ow)):
        yield _rearranged(e, how)


def _per_output(view: View, per_channel):
    """corr2d_multi_in's mistake `per_channel(X, K_o)` applied to every output channel."""
    X, K = view.params["X"], view.params["K"]
    parts = [per_channel(X, k) for k in K]
    return Expected(torch.stack([p.value for p in parts]),
                    lambda u: torch.stack([torch.as_tensor(p.bound(u), dtype=F64).expand(
                        p.value.shape) for p in parts]))


CORR2D_MULTI_IN_OUT = Spec(
    correct=lambda v: {"result": [_multi_in_out(v)]},
    mistakes=[
        variant("output-channels-wrong-axis", "stacks the output channels on the wrong axis "
                "(the result must be (co, oh, ow): torch.stack(..., 0))", _wrong_axis),
        variant("flipped-kernel", FLIPPED,
                lambda v: [oracles.corr2d_multi_in_out(v.params["X"], _flip(v.params["K"]))]),
        variant("channels-averaged", "averages the input channels' cross-correlations "
                "instead of summing them",
                lambda v: [scaled(_multi_in_out(v), 1 / v.params["X"].shape[0])]),
        variant("first-channel-only", "uses only the first input channel",
                lambda v: [_per_output(v, lambda X, k: oracles.corr2d(X[0], k[0]))]),
        variant("output-one-short", "the output is one row or column short",
                lambda v: one_short(_multi_in_out(v))),
        half_precision(),
    ])


# --------------------------------------------------------------------------- 1x1

def _product(K2: torch.Tensor, X2: torch.Tensor, finish) -> Expected:
    """finish(K2 @ X2): a matrix product over channels, with its sum-of-products bound."""
    value = finish(K2.to(F64) @ X2.to(F64))
    magnitude = finish(K2.to(F64).abs() @ X2.to(F64).abs())
    return sum_of_products(value, magnitude, K2.shape[1])


def _scrambled_1x1(view: View):
    """The reshapes and transposes students get wrong around the matrix product, alone or
    together: X read as (h*w, ci) or channels-last, K read as (ci, co), the (co, h*w) product
    read back transposed or as (h, w, co)."""
    X, K = view.params["X"], view.params["K"]
    ci, h, w = X.shape
    co = K.shape[0]
    inputs = (X.reshape(ci, h * w), X.reshape(h * w, ci).t(),
              X.permute(1, 2, 0).reshape(ci, h * w), X.transpose(1, 2).reshape(ci, h * w))
    kernels = (K.reshape(co, ci), K.reshape(ci, co).t())
    finishes = (lambda t: t.reshape(co, h, w), lambda t: t.t().reshape(co, h, w),
                lambda t: t.reshape(h, w, co).permute(2, 0, 1))
    for index, (X2, K2, finish) in enumerate(itertools.product(inputs, kernels, finishes)):
        if index:                                          # the first one is the right one
            yield _product(K2, X2, finish)


CORR2D_1X1 = Spec(
    correct=lambda v: {"result": [_multi_in_out(v)]},
    mistakes=[
        variant("reshape-scrambles-channels", "a reshape or transpose around the matrix "
                "product mixes up channels and pixels (K must be (co, ci), X (ci, h*w), "
                "the product reshaped to (co, h, w))", _scrambled_1x1),
        variant("channels-averaged", "averages over the input channels instead of summing",
                lambda v: [scaled(_multi_in_out(v), 1 / v.params["X"].shape[0])]),
        half_precision(),
    ])


# --------------------------------------------------------------------------- conv2d

CONV2D_DEFAULTS = dict(bias=None, stride=1, padding=0, dilation=1, groups=1)


def _conv(view: View, **changes) -> Expected:
    p = {**view.params, **changes}
    return oracles.conv2d(p["input"], p["weight"], p["bias"], stride=p["stride"],
                          padding=p["padding"], dilation=p["dilation"], groups=p["groups"])


def _sides(view: View) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding of the call."""
    padding, weight = view.params["padding"], view.params["weight"]
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        dh, dw = pair(view.params["dilation"])
        return (*shapes.same_padding(weight.shape[2], dh),
                *shapes.same_padding(weight.shape[3], dw))
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def _conv_padded(view: View, top: int, bottom: int, left: int, right: int) -> Expected:
    """conv2d of the input zero-padded by the given sides, with no padding of its own."""
    padded = F.pad(view.params["input"].to(F64), (left, right, top, bottom))
    return _conv(view, input=padded, padding=0)


def _one_side(view: View):
    top, bottom, left, right = _sides(view)
    if top + bottom + left + right == 0:
        return
    yield _conv_padded(view, top + bottom, 0, left + right, 0)
    yield _conv_padded(view, 0, top + bottom, 0, left + right)
    yield _conv_padded(view, top, 0, left, 0)
    yield _conv_padded(view, 0, bottom, 0, right)


def _hw_swapped(view: View):
    top, bottom, left, right = _sides(view)
    if (top, bottom) != (left, right):
        yield _conv_padded(view, left, right, top, bottom)


def _dilation_ignored(view: View):
    """Dilation 1, with the call's padding ('same' computed for dilation 1, or for the
    call's dilation and then ignored in the windows)."""
    if pair(view.params["dilation"]) == (1, 1):
        return
    yield _conv(view, dilation=1)
    if view.params["padding"] == "same":
        padded = F.pad(view.params["input"].to(F64), _lrtb(_sides(view)))
        yield _conv(view, input=padded, padding=0, dilation=1)


def _lrtb(sides: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) in F.pad's order (left, right, top, bottom)."""
    top, bottom, left, right = sides
    return (left, right, top, bottom)


def _groups_ignored(view: View):
    """Every output channel reads the first group's input channels (a loop over
    weight.shape[1] channels that never moves to the next group)."""
    groups = view.params["groups"]
    if groups == 1:
        return
    per_group = view.params["weight"].shape[1]
    yield _conv(view, input=view.params["input"][:, :per_group], groups=1)


CONV2D = Spec(
    correct=lambda v: {"result": [_conv(v)]},
    mistakes=[
        variant("flipped-kernel", FLIPPED,
                lambda v: [_conv(v, weight=_flip(v.params["weight"]))]),
        variant("stride-ignored", "ignores the stride (computes stride 1)",
                lambda v: [_conv(v, stride=1)] if pair(v.params["stride"]) != (1, 1) else []),
        variant("dilation-ignored", "ignores the dilation (computes dilation 1)",
                _dilation_ignored),
        variant("output-one-short", "the output is one row or column short",
                lambda v: one_short(_conv(v))),
        variant("padding-one-side", "pads on one side only (top/left or bottom/right) "
                "instead of both", _one_side),
        variant("padding-hw-swapped", "pads the height by the width's padding and the width "
                "by the height's", _hw_swapped),
        variant("groups-ignored", "ignores groups: every output channel reads the first "
                "group's input channels", _groups_ignored),
        half_precision(),
    ])

SPECS = {"corr2d": CORR2D, "corr2d_multi_in": CORR2D_MULTI_IN,
         "corr2d_multi_in_out": CORR2D_MULTI_IN_OUT, "corr2d_multi_in_out_1x1": CORR2D_1X1,
         "conv2d": CONV2D}
DEFAULTS = {"conv2d": CONV2D_DEFAULTS}
