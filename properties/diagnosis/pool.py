"""Recomputations for pooling, the textbook's pool2d and the functional max_pool2d /
avg_pool2d: the correct values of a call, and how each known mistake shows, as the float64
result of the wrong computation (max pooling exact, average pooling under the sum-of-products
bound of properties.oracles_pool). properties.diagnosis.mistakes names them."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from properties import oracles_pool
from properties.diagnosis.core import F64, View, one_short, pair, reshaped, scaled, variant
from properties.results import is_none
from properties.tolerance import Expected, sum_of_products

# --------------------------------------------------------------------------- pool2d

def _batch(X: torch.Tensor) -> torch.Tensor:
    return X.to(F64)[None, None]


def _pool2d(view: View, mode: str | None = None) -> Expected:
    return oracles_pool.pool2d(view.params["X"], pair(view.params["pool_size"]),
                               mode or view.params["mode"])


def _exact_plane(value: torch.Tensor) -> Expected:
    return Expected.exact(value[0, 0])


def _when_mode(mode: str):
    return lambda view: view.params["mode"] == mode


pool2d_avg_min = variant(lambda v: [_exact_plane(oracles_pool.min_pool2d(
    _batch(v.params["X"]), pair(v.params["pool_size"]), 1))], when=_when_mode("avg"))
pool2d_avg_sum = variant(lambda v: [scaled(_pool2d(v), math.prod(pair(v.params["pool_size"])))],
                         when=_when_mode("avg"))
pool2d_avg_max = variant(lambda v: [_pool2d(v, "max")], when=_when_mode("avg"))


def _wrong_divisors(view: View, window: tuple[int, int], mean: Expected):
    """The window mean with the sum divided by one side squared (p_h·p_h or p_w·p_w)."""
    ph, pw = window
    for divisor in {ph * ph, pw * pw} - {ph * pw}:
        yield scaled(mean, ph * pw / divisor)


pool2d_avg_wrong_divisor = variant(
    lambda v: _wrong_divisors(v, pair(v.params["pool_size"]), _pool2d(v)),
    when=_when_mode("avg"))
pool2d_max_avg = variant(lambda v: [_pool2d(v, "avg")], when=_when_mode("max"))
pool2d_max_abs = variant(lambda v: [_exact_plane(F.max_pool2d(
    _batch(v.params["X"]).abs(), pair(v.params["pool_size"]), 1))], when=_when_mode("max"))
pool2d_zeros = variant(lambda v: [Expected.exact(torch.zeros_like(_pool2d(v).value))])


def pool2d_mode_none(view: View) -> bool:
    """Mode 'avg' returned None: no branch of the mode test matched, nothing was returned."""
    return view.params["mode"] == "avg" and is_none(view.result.returned)


def pool2d_mode_unrecognised(view: View) -> bool:
    """The output kept its initial zeros, or nothing was returned for mode 'avg'."""
    return pool2d_zeros(view) or pool2d_mode_none(view)


# A right result is this mistake's only where the right output is all zeros.
pool2d_mode_unrecognised.explains = pool2d_zeros.explains


pool2d_one_short = variant(lambda v: one_short(_pool2d(v)))


# --------------------------------------------------------------------------- functional


def _max(view: View, **changes) -> Expected:
    p = {**view.params, **changes}
    return oracles_pool.max_pool2d(p["input"], p["kernel_size"], p["stride"], p["padding"],
                                   p["dilation"], p["ceil_mode"])


def _avg(view: View, **changes) -> Expected:
    p = {**view.params, **changes}
    return oracles_pool.avg_pool2d(p["input"], p["kernel_size"], p["stride"], p["padding"],
                                   p["ceil_mode"], p["count_include_pad"],
                                   p["divisor_override"])


def _stride(view: View) -> tuple[int, int]:
    stride = view.params["stride"]
    return pair(view.params["kernel_size"] if stride in (None, ()) else stride)


def _padded(view: View) -> bool:
    return pair(view.params["padding"]) != (0, 0)


def _ceil_kept(oracle):
    """The output when ceil-mode windows starting in the padding are kept: every axis has
    ⌈(n + 2p − d·(k − 1) − 1) / s⌉ + 1 windows; the kept extra windows are not compared."""
    def values(view: View):
        if not view.params["ceil_mode"]:
            return
        x = view.params["input"]
        (kh, kw), (sh, sw) = pair(view.params["kernel_size"]), _stride(view)
        (ph, pw), (dh, dw) = pair(view.params["padding"]), pair(view.params.get("dilation", 1))
        sizes = [math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1 for n, k, s, p, d in
                 ((x.shape[-2], kh, sh, ph, dh), (x.shape[-1], kw, sw, pw, dw))]
        correct = oracle(view)
        if tuple(sizes) != tuple(correct.value.shape[-2:]):
            yield reshaped(correct, (*x.shape[:-2], *sizes))
    return values


def _manual_max(view: View, top: int, bottom: int, left: int, right: int) -> Expected:
    """Max pooling of the input padded with −∞ by the given sides, with no padding of its own."""
    x = F.pad(view.params["input"].to(F64), (left, right, top, bottom), value=-math.inf)
    return Expected.exact(F.max_pool2d(x, view.params["kernel_size"], _stride(view), 0,
                                       view.params["dilation"], view.params["ceil_mode"]))


def _manual_avg(view: View, top: int, bottom: int, left: int, right: int) -> Expected:
    """Average pooling of the input zero-padded by the given sides, with no padding of its own:
    window sums over the divisor the call asks for (override, padded window, or in-image
    count)."""
    p = view.params
    x = p["input"].to(F64)
    sides = (left, right, top, bottom)
    kernel, stride = pair(p["kernel_size"]), _stride(view)
    sums = lambda t: F.avg_pool2d(F.pad(t, sides), kernel, stride, 0, p["ceil_mode"],
                                  divisor_override=1)
    if p["divisor_override"]:
        divisor = torch.tensor(float(p["divisor_override"]), dtype=F64)
    elif p["count_include_pad"]:
        divisor = F.avg_pool2d(torch.ones_like(F.pad(x, sides)), kernel, stride, 0,
                               p["ceil_mode"], divisor_override=1)
    else:
        divisor = sums(torch.ones_like(x))
    return sum_of_products(sums(x) / divisor, sums(x.abs()) / divisor.abs(), math.prod(kernel))


def _sides(view: View) -> tuple[int, int]:
    return pair(view.params["padding"])


def _one_side(manual):
    def values(view: View):
        ph, pw = _sides(view)
        if (ph, pw) == (0, 0):
            return
        for sides in ((2 * ph, 0, 2 * pw, 0), (0, 2 * ph, 0, 2 * pw),
                      (ph, 0, pw, 0), (0, ph, 0, pw)):
            yield manual(view, *sides)
    return values


def _hw_swapped(manual):
    def values(view: View):
        ph, pw = _sides(view)
        if ph != pw:
            yield manual(view, pw, pw, ph, ph)
    return values


def _default_stride_one(oracle):
    return lambda v: [oracle(v, stride=1)] if v.params["stride"] in (None, ()) \
        and pair(v.params["kernel_size"]) != (1, 1) else []


max_pads_with_zero = variant(lambda v: [Expected.exact(oracles_pool.zero_padded_max_pool2d(
    v.params["input"], v.params["kernel_size"], v.params["stride"], v.params["padding"],
    v.params["dilation"], v.params["ceil_mode"]))] if _padded(v) else [])
max_ceil_kept = variant(_ceil_kept(_max))
max_default_stride_one = variant(_default_stride_one(_max))
max_dilation_ignored = variant(
    lambda v: [_max(v, dilation=1)] if pair(v.params["dilation"]) != (1, 1) else [])
max_one_short = variant(lambda v: one_short(_max(v)))
max_padding_one_side = variant(_one_side(_manual_max))
max_padding_hw_swapped = variant(_hw_swapped(_manual_max))
max_of_absolute_values = variant(lambda v: [_max(v, input=v.params["input"].abs())])

avg_divisor_override_ignored = variant(
    lambda v: [_avg(v, divisor_override=None)] if v.params["divisor_override"] else [])
avg_count_include_pad_ignored = variant(
    lambda v: [_avg(v, count_include_pad=not v.params["count_include_pad"])]
    if _padded(v) and not v.params["divisor_override"] else [])
avg_ceil_kept = variant(_ceil_kept(_avg))
avg_default_stride_one = variant(_default_stride_one(_avg))
avg_one_short = variant(lambda v: one_short(_avg(v)))
avg_padding_one_side = variant(_one_side(_manual_avg))
avg_padding_hw_swapped = variant(_hw_swapped(_manual_avg))
avg_computes_sum = variant(lambda v: [_avg(v, divisor_override=1)])
avg_wrong_divisor = variant(
    lambda v: [_avg(v, divisor_override=d) for d in
               {pair(v.params["kernel_size"])[0] ** 2, pair(v.params["kernel_size"])[1] ** 2}
               - {math.prod(pair(v.params["kernel_size"]))}]
    if not v.params["divisor_override"] and v.params["count_include_pad"] else [])

#: subject -> the correct values of a call, by part.
CORRECT = {"pool2d": lambda v: {"result": [_pool2d(v)]},
           "max_pool2d": lambda v: {"result": [_max(v)]},
           "avg_pool2d": lambda v: {"result": [_avg(v)]}}
