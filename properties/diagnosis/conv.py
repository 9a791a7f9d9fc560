"""Recomputations for the cross-correlation family (corr2d ... corr2d_multi_in_out_1x1) and the
functional conv2d: the correct values of a call, and how each known mistake shows, as the
float64 result of the wrong computation (properties.oracles under the sum-of-products error
model). properties.diagnosis.mistakes names them."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from properties import oracles, oracles_conv
from properties.diagnosis.core import F64, View, one_short, pair, reshaped, scaled, variant
from properties.tolerance import Expected, sum_of_products
from reference import shapes

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


corr2d_flipped = variant(lambda v: [oracles.corr2d(v.params["X"], _flip(v.params["K"]))])
corr2d_kernel_swapped = variant(_kernel_dimension_swapped)
corr2d_one_short = variant(lambda v: one_short(_corr2d(v)))


# --------------------------------------------------------------------------- corr2d_multi_in

def _multi_in(view: View) -> Expected:
    return oracles.corr2d_multi_in(view.params["X"], view.params["K"])


multi_in_averaged = variant(lambda v: [scaled(_multi_in(v), 1 / v.params["X"].shape[0])])
multi_in_first_channel = variant(lambda v: [oracles.corr2d(v.params["X"][0], v.params["K"][0])])
multi_in_last_channel = variant(
    lambda v: [oracles.corr2d(v.params["X"][-1], v.params["K"][-1])])
multi_in_flipped = variant(
    lambda v: [oracles.corr2d_multi_in(v.params["X"], _flip(v.params["K"]))])
multi_in_one_short = variant(lambda v: one_short(_multi_in(v)))


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


multi_in_out_wrong_axis = variant(_wrong_axis)
multi_in_out_flipped = variant(
    lambda v: [oracles.corr2d_multi_in_out(v.params["X"], _flip(v.params["K"]))])
multi_in_out_averaged = variant(
    lambda v: [scaled(_multi_in_out(v), 1 / v.params["X"].shape[0])])
multi_in_out_first_channel = variant(
    lambda v: [_per_output(v, lambda X, k: oracles.corr2d(X[0], k[0]))])
multi_in_out_one_short = variant(lambda v: one_short(_multi_in_out(v)))


# --------------------------------------------------------------------------- 1x1

def _product(K2: torch.Tensor, X2: torch.Tensor, finish) -> Expected:
    """finish(K2 @ X2): a matrix product over channels, with its sum-of-products bound."""
    value = finish(K2.to(F64) @ X2.to(F64))
    magnitude = finish(K2.to(F64).abs() @ X2.to(F64).abs())
    return sum_of_products(value, magnitude, K2.shape[1])


def _scrambled_1x1(view: View):
    """The reshapes and transposes students get wrong around the matrix product, alone or
    together: X read as (h*w, ci) or channels-last, K read as (ci, co), the (co, h*w) product
    read back transposed, as (h, w, co), or as (co, w, h) (kept so, or transposed back)."""
    X, K = view.params["X"], view.params["K"]
    ci, h, w = X.shape
    co = K.shape[0]
    inputs = (X.reshape(ci, h * w), X.reshape(h * w, ci).t(),
              X.permute(1, 2, 0).reshape(ci, h * w), X.transpose(1, 2).reshape(ci, h * w))
    kernels = (K.reshape(co, ci), K.reshape(ci, co).t())
    finishes = (lambda t: t.reshape(co, h, w), lambda t: t.t().reshape(co, h, w),
                lambda t: t.reshape(h, w, co).permute(2, 0, 1), lambda t: t.reshape(co, w, h),
                lambda t: t.reshape(co, w, h).transpose(1, 2))
    for index, (X2, K2, finish) in enumerate(itertools.product(inputs, kernels, finishes)):
        if index:                                          # the first one is the right one
            yield _product(K2, X2, finish)


one_by_one_scrambled = variant(_scrambled_1x1)


# --------------------------------------------------------------------------- conv2d


def _conv(view: View, **changes) -> Expected:
    p = {**view.params, **changes}
    return oracles_conv.conv2d(p["input"], p["weight"], p["bias"], stride=p["stride"],
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


conv_flipped = variant(lambda v: [_conv(v, weight=_flip(v.params["weight"]))])
conv_stride_ignored = variant(
    lambda v: [_conv(v, stride=1)] if pair(v.params["stride"]) != (1, 1) else [])
conv_dilation_ignored = variant(_dilation_ignored)
conv_one_short = variant(lambda v: one_short(_conv(v)))
conv_padding_one_side = variant(_one_side)
conv_padding_hw_swapped = variant(_hw_swapped)
conv_groups_ignored = variant(_groups_ignored)


def _same_misplaced(view: View):
    """'same' padding with an even (dilated) kernel split otherwise than torch's (the larger
    half after): the smaller half on both sides, the larger half on both sides, or the
    larger half first."""
    if view.params["padding"] != "same":
        return
    top, bottom, left, right = _sides(view)
    if (top, left) == (bottom, right):
        return
    yield _conv_padded(view, top, top, left, left)
    yield _conv_padded(view, bottom, bottom, right, right)
    yield _conv_padded(view, bottom, top, right, left)


conv_same_padding_misplaced = variant(_same_misplaced)

#: subject -> the correct values of a call, by part.
CORRECT = {"corr2d": lambda v: {"result": [_corr2d(v)]},
           "corr2d_multi_in": lambda v: {"result": [_multi_in(v)]},
           "corr2d_multi_in_out": lambda v: {"result": [_multi_in_out(v)]},
           "corr2d_multi_in_out_1x1": lambda v: {"result": [_multi_in_out(v)]},
           "conv2d": lambda v: {"result": [_conv(v)]}}
