"""Float64 oracles for pooling, each paired with its error model (tolerance.Expected).

Three independent sources, triangulated:
- torch's CPU `F.max_pool2d` / `F.avg_pool2d` in float64 (the main oracle);
- `scipy.ndimage.maximum_filter` / `uniform_filter` (no padding, stride by subsampling);
- torch's float64 `F.conv2d` with a uniform kernel (average pooling is a correlation).

Error models:
- max pooling selects an input element: exact (`Expected.exact`).
- average pooling y = (1/D) Σ_{t ≤ n} x_t with n = kh·kw terms (fewer inside the image) and
  divisor D (the window clipped to the padded input, to the image with
  count_include_pad=False, or divisor_override): as a sum of n products x_t · (1/D),
      |error| ≤ (n + 3) u · Σ|x_t| / |D|                       (tolerance.sum_of_products)
  plus the norm-wise term of an implementation that correlates with a uniform kernel by FFT,
      FFT_FACTOR · u · log2(N) · ‖x‖₂ · ‖k‖₂,   ‖k‖₂ = √n / |D|   (per output, its own D),
  ‖x‖₂ the largest norm of one (n, c) plane, N the padded plane size.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from properties.tolerance import FFT_FACTOR, Expected, sum_of_products
from reference import shapes

F64 = torch.float64
FLOAT64_UNIT_ROUNDOFF = 2.0 ** -53


def f64(t: torch.Tensor) -> torch.Tensor:
    """A float64, contiguous CPU copy (the oracles' working precision)."""
    return t.detach().to(device="cpu", dtype=F64).contiguous()


def pair(value) -> tuple[int, int]:
    """An int-or-pair argument as (height value, width value)."""
    return shapes.pair(value, "argument")


# ----------------------------------------------------------------------------- torch

def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False) -> Expected:
    """torch's F.max_pool2d in float64. Max pooling selects an element: exact."""
    value = F.max_pool2d(f64(input), kernel_size, stride, padding, dilation, ceil_mode)
    return Expected.exact(value)


def avg_divisors(input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None) -> torch.Tensor:
    """Each output's divisor |D| as torch computes it, shape (oh, ow).

    Found from torch itself: the in-image count c (ones summed with divisor 1) over the mean
    of ones c / D, so D = c / mean; divisor_override gives |override| everywhere."""
    ones = torch.ones(1, 1, *input_shape[-2:], dtype=F64)
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad)
    counts = F.avg_pool2d(ones, *args, divisor_override=1)[0, 0]
    if divisor_override is not None:
        return torch.full_like(counts, abs(float(divisor_override)))
    return counts / F.avg_pool2d(ones, *args)[0, 0]


def largest_plane_norm(x: torch.Tensor) -> float:
    """max over (n, c) of ‖x[n, c]‖₂ (0 for an empty tensor)."""
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1])
    return float(torch.linalg.vector_norm(planes, dim=1).max()) if planes.numel() else 0.0


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Expected:
    """torch's F.avg_pool2d in float64, with the average-pooling error model (module doc)."""
    x = f64(input)
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    value = F.avg_pool2d(x, *args)
    magnitude = F.avg_pool2d(x.abs(), *args).abs()
    kh, kw = pair(kernel_size)
    ph, pw = pair(padding)
    terms = kh * kw
    divisors = avg_divisors(x.shape, *args)
    transform = (x.shape[-2] + 2 * ph + kh) * (x.shape[-1] + 2 * pw + kw)
    spread = FFT_FACTOR * math.log2(max(transform, 2)) * largest_plane_norm(x) \
        * math.sqrt(terms) / divisors
    return sum_of_products(value, magnitude, terms, fft_term=lambda u: u * spread)


def uniform_kernel_correlation(input, kernel_size, stride=1, padding=0) -> Expected:
    """avg_pool2d with count_include_pad as a per-channel correlation with ones / (kh·kw):

        y[n, c] = conv2d(x[n, c], 1/(kh·kw) · ones(kh, kw), stride, zero padding)

    computed by torch's float64 F.conv2d (groups = channels), same error model."""
    x = f64(input)
    kh, kw = pair(kernel_size)
    channels = x.shape[1]
    weight = torch.full((channels, 1, kh, kw), 1.0 / (kh * kw), dtype=F64)
    value = F.conv2d(x, weight, stride=stride, padding=padding, groups=channels)
    model = avg_pool2d(x, kernel_size, stride, padding)
    return Expected(value, model.bound)


def sum_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False) -> torch.Tensor:
    """The window sums (a known wrong average: the sum, not divided)."""
    return F.avg_pool2d(f64(input), kernel_size, stride, padding, ceil_mode,
                        divisor_override=1)


def min_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False) -> torch.Tensor:
    """The window minima, −max(−x) (a known wrong average, from a seed notebook).

    Only for unpadded windows: torch's −∞ padding would become +∞ here."""
    return -F.max_pool2d(-f64(input), kernel_size, stride, padding, 1, ceil_mode)


def zero_padded_max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,
                           ceil_mode=False) -> torch.Tensor:
    """Max pooling of the input padded with zeros instead of −∞ (a known mistake).

    The input is zero-padded by p on each side, pooled without padding, and cropped to the
    true output size (ceil mode may give the padded call an extra window)."""
    x = f64(input)
    ph, pw = pair(padding)
    padded = F.pad(x, (pw, pw, ph, ph), value=0.0)
    stride = kernel_size if stride is None else stride
    pooled = F.max_pool2d(padded, kernel_size, stride, 0, dilation, ceil_mode)
    oh, ow = max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode).value.shape[-2:]
    return pooled[..., :oh, :ow]


# ----------------------------------------------------------------------------- textbook

def pool2d(X, pool_size, mode: str = "max") -> Expected:
    """The textbook's stride-1, unpadded pool of one (h, w) map, via torch on a batch of one:

        Y[i, j] = max or mean of X[i : i + ph, j : j + pw],   Y is (h − ph + 1, w − pw + 1)."""
    batch = X[None, None]
    pooled = max_pool2d(batch, tuple(pool_size), 1) if mode == "max" \
        else avg_pool2d(batch, tuple(pool_size), 1)
    return first_plane(pooled)


def first_plane(expected: Expected) -> Expected:
    """The (0, 0) plane of a batched Expected (the textbook's (h, w) maps)."""
    def bound(u):
        b = torch.as_tensor(expected.bound(u))
        return b[0, 0] if b.dim() == 4 else b
    return Expected(expected.value[0, 0], bound)


# ----------------------------------------------------------------------------- scipy

def _valid_subsampled(filtered: np.ndarray, spans, strides, out) -> torch.Tensor:
    """The filter outputs whose window lies inside the input, every s-th.

    scipy.ndimage centres a window of size e at e // 2, so the window starting at i·s is the
    filter output at i·s + e // 2."""
    (eh, ew), (sh, sw), (oh, ow) = spans, strides, out
    return torch.from_numpy(np.ascontiguousarray(
        filtered[..., eh // 2::sh, ew // 2::sw][..., :oh, :ow]))


def _dilated_footprint(kernel, dilation) -> np.ndarray:
    """A (1, 1, eh, ew) footprint with ones at the dilated kernel taps a·d."""
    (kh, kw), (dh, dw) = kernel, dilation
    footprint = np.zeros((1, 1, dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=bool)
    footprint[0, 0, ::dh, ::dw] = True
    return footprint


def scipy_max_pool2d(input, kernel_size, stride=None, dilation=1) -> Expected:
    """Unpadded max pooling by scipy.ndimage.maximum_filter with the dilated footprint,
    cropped to the valid windows and subsampled by the stride. Exact."""
    x = f64(input).numpy()
    kernel = pair(kernel_size)
    strides = kernel if stride is None else pair(stride)
    dil = pair(dilation)
    footprint = _dilated_footprint(kernel, dil)
    out = [shapes.pool_output_size(x.shape[2 + a], kernel[a], stride=strides[a],
                                   dilation=dil[a]) for a in range(2)]
    import scipy.ndimage  # deferred, as scipy.signal in oracles.py
    filtered = scipy.ndimage.maximum_filter(x, footprint=footprint, mode="constant",
                                            cval=-np.inf)
    return Expected.exact(_valid_subsampled(filtered, footprint.shape[2:], strides, out))


def scipy_avg_pool2d(input, kernel_size, stride=None) -> Expected:
    """Unpadded average pooling by scipy.ndimage.uniform_filter, cropped and subsampled.

    The bound is avg_pool2d's plus scipy's own float64 error: uniform_filter runs one
    running mean per axis (its intermediate stored in float64); each update rounds at most
    three times, on values no larger than max|x|, over at most L + 2k updates of a line of
    length L, so each pass errs by at most 3 (L + 2k) u₆₄ max|x| and the passes add up."""
    x = f64(input)
    kernel = pair(kernel_size)
    strides = kernel if stride is None else pair(stride)
    out = [shapes.pool_output_size(x.shape[2 + a], kernel[a], stride=strides[a])
           for a in range(2)]
    import scipy.ndimage
    filtered = scipy.ndimage.uniform_filter(x.numpy(), size=(1, 1, *kernel), mode="constant")
    value = _valid_subsampled(filtered, kernel, strides, out)
    largest = float(x.abs().max()) if x.numel() else 0.0
    own_error = FLOAT64_UNIT_ROUNDOFF * largest * sum(
        3 * (x.shape[2 + a] + 2 * kernel[a]) for a in range(2))
    model = avg_pool2d(x, kernel_size, strides)
    return Expected(value, lambda u: torch.as_tensor(model.bound(u)) + own_error)
