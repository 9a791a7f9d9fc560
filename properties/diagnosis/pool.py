"""Known mistakes of pooling: the textbook's pool2d and the functional max_pool2d /
avg_pool2d, each as the float64 result of the wrong computation (max pooling exact, average
pooling under the sum-of-products bound of properties.oracles_pool)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from properties import oracles_pool
from properties.diagnosis.core import (F64, Spec, View, half_precision, one_short, pair,
                                       reshaped, scaled, variant)
from properties.tolerance import Expected, sum_of_products

PADDING_ONE_SIDE = "pads on one side only (top/left or bottom/right) instead of both"
PADDING_SWAPPED = "pads the height by the width's padding and the width by the height's"
DEFAULT_STRIDE = "uses stride 1 when no stride is given (the default stride is the kernel size)"
CEIL_KEPT = ("keeps a ceil-mode window that starts in the right/bottom padding (torch drops "
             "it: the last window must start inside the input or the left padding)")


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


POOL2D = Spec(
    correct=lambda v: {"result": [_pool2d(v)]},
    mistakes=[
        variant("avg-computes-min", "'avg' computes the window minimum, not the mean",
                lambda v: [_exact_plane(oracles_pool.min_pool2d(
                    _batch(v.params["X"]), pair(v.params["pool_size"]), 1))],
                when=_when_mode("avg")),
        variant("avg-computes-sum", "'avg' computes the window sum, not the mean (divide by "
                "the window size)",
                lambda v: [scaled(_pool2d(v), math.prod(pair(v.params["pool_size"])))],
                when=_when_mode("avg")),
        variant("avg-computes-max", "'avg' computes the maximum (the mode is ignored)",
                lambda v: [_pool2d(v, "max")], when=_when_mode("avg")),
        variant("max-computes-avg", "'max' computes the mean (the modes are swapped)",
                lambda v: [_pool2d(v, "avg")], when=_when_mode("max")),
        variant("max-of-absolute-values", "'max' takes the maximum of the absolute values "
                "(negative inputs lose their sign)",
                lambda v: [_exact_plane(F.max_pool2d(_batch(v.params["X"]).abs(),
                                                     pair(v.params["pool_size"]), 1))],
                when=_when_mode("max")),
        variant("mode-name-unrecognised", "the mode name is not recognised, so the output "
                "keeps its initial zeros (compare mode == 'max' / 'avg' exactly)",
                lambda v: [Expected.exact(torch.zeros_like(_pool2d(v).value))]),
        variant("output-one-short", "the output is one row or column short",
                lambda v: one_short(_pool2d(v))),
        half_precision(),
    ])


# --------------------------------------------------------------------------- functional

MAX_DEFAULTS = dict(stride=None, padding=0, dilation=1, ceil_mode=False)
AVG_DEFAULTS = dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                    divisor_override=None)


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


MAX_POOL2D = Spec(
    correct=lambda v: {"result": [_max(v)]},
    mistakes=[
        variant("max-pool-pads-with-zero", "pads with zeros instead of −∞, so an all-negative "
                "window at the border gives 0",
                lambda v: [Expected.exact(oracles_pool.zero_padded_max_pool2d(
                    v.params["input"], v.params["kernel_size"], v.params["stride"],
                    v.params["padding"], v.params["dilation"], v.params["ceil_mode"]))]
                if _padded(v) else []),
        variant("ceil-window-in-padding-kept", CEIL_KEPT, _ceil_kept(_max)),
        variant("default-stride-one", DEFAULT_STRIDE, _default_stride_one(_max)),
        variant("dilation-ignored", "ignores the dilation (computes dilation 1)",
                lambda v: [_max(v, dilation=1)] if pair(v.params["dilation"]) != (1, 1) else []),
        variant("output-one-short", "the output is one row or column short",
                lambda v: one_short(_max(v))),
        variant("padding-one-side", PADDING_ONE_SIDE, _one_side(_manual_max)),
        variant("padding-hw-swapped", PADDING_SWAPPED, _hw_swapped(_manual_max)),
        variant("max-of-absolute-values", "takes the maximum of the absolute values",
                lambda v: [_max(v, input=v.params["input"].abs())]),
    ])

AVG_POOL2D = Spec(
    correct=lambda v: {"result": [_avg(v)]},
    mistakes=[
        variant("divisor-override-ignored", "ignores divisor_override (divides by the window "
                "size instead)", lambda v: [_avg(v, divisor_override=None)]
                if v.params["divisor_override"] else []),
        variant("count-include-pad-ignored", "ignores count_include_pad (the padding is "
                "counted in the divisor, or not, whatever the flag says)",
                lambda v: [_avg(v, count_include_pad=not v.params["count_include_pad"])]
                if _padded(v) and not v.params["divisor_override"] else []),
        variant("ceil-window-in-padding-kept", CEIL_KEPT, _ceil_kept(_avg)),
        variant("default-stride-one", DEFAULT_STRIDE, _default_stride_one(_avg)),
        variant("output-one-short", "the output is one row or column short",
                lambda v: one_short(_avg(v))),
        variant("padding-one-side", PADDING_ONE_SIDE, _one_side(_manual_avg)),
        variant("padding-hw-swapped", PADDING_SWAPPED, _hw_swapped(_manual_avg)),
        variant("avg-computes-sum", "computes the window sum, not the mean",
                lambda v: [_avg(v, divisor_override=1)]),
        half_precision(),
    ])

SPECS = {"pool2d": POOL2D, "max_pool2d": MAX_POOL2D, "avg_pool2d": AVG_POOL2D}
DEFAULTS = {"pool2d": dict(mode="max"), "max_pool2d": MAX_DEFAULTS,
            "avg_pool2d": AVG_DEFAULTS}
