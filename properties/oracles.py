"""Independent float64 oracles, each paired with its error model (tolerance.Expected).

Three families of oracle, triangulated:
- torch's CPU operators in float64 (`torch.nn.functional`);
- scipy (`scipy.signal.correlate2d`, `convolve2d` with the flipped kernel, `scipy.ndimage`);
- the naive reference package in float64.
The reference itself is checked against torch and scipy (tests/test_reference.py), so a bug
in any oracle shows up as a disagreement.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from properties.tolerance import Expected, fft_global_term, sum_of_products

F64 = torch.float64


def _f64(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().to(F64).cpu()


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Expected:
    """torch's F.conv2d in float64 on NCHW input, with the sum-of-products error model.

    Terms per output: (C_in / groups) * kh * kw products, plus the bias."""
    x, w, b = _f64(input), _f64(weight), _f64(bias)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    value = F.conv2d(x, w, b, **kwargs)
    magnitude = F.conv2d(x.abs(), w.abs(), None if b is None else b.abs(), **kwargs)
    terms = w.shape[1] * w.shape[2] * w.shape[3] + (b is not None)
    size = x.shape[-2] * x.shape[-1]
    norm_x = max(float(torch.linalg.vector_norm(x[n])) for n in range(x.shape[0])) \
        if x.shape[0] else 0.0
    norm_w = max(float(torch.linalg.vector_norm(w[o])) for o in range(w.shape[0])) \
        if w.shape[0] else 0.0
    fft = lambda u: fft_global_term(torch.tensor([norm_x]), torch.tensor([norm_w]), size, u)
    return sum_of_products(value, magnitude, terms, fft)


def corr2d(X, K) -> Expected:
    """(h, w) * (kh, kw) -> (h-kh+1, w-kw+1) cross-correlation."""
    e = conv2d(X[None, None], K[None, None])
    return Expected(e.value[0, 0], lambda u: _squeeze(e.bound(u), 2))


def corr2d_multi_in(X, K) -> Expected:
    """(ci, h, w) * (ci, kh, kw) -> (oh, ow), summed over channels."""
    e = conv2d(X[None], K[None])
    return Expected(e.value[0, 0], lambda u: _squeeze(e.bound(u), 2))


def corr2d_multi_in_out(X, K) -> Expected:
    """(ci, h, w) * (co, ci, kh, kw) -> (co, oh, ow)."""
    e = conv2d(X[None], K)
    return Expected(e.value[0], lambda u: _squeeze(e.bound(u), 1))


def _squeeze(bound, dims: int):
    if isinstance(bound, torch.Tensor):
        for _ in range(dims):
            bound = bound[0]
    return bound


def scipy_corr2d(X, K) -> torch.Tensor:
    """scipy.signal.correlate2d(X, K, 'valid') in float64 (K no larger than X)."""
    import scipy.signal  # deferred: scipy.signal costs 0.8 s of every run's start-up
    return torch.from_numpy(scipy.signal.correlate2d(
        np.asarray(_f64(X)), np.asarray(_f64(K)), mode="valid"))


def scipy_convolve_flipped(X, K) -> torch.Tensor:
    """scipy.signal.convolve2d(X, flip(K), 'valid'): cross-correlation by way of convolution."""
    import scipy.signal
    return torch.from_numpy(scipy.signal.convolve2d(
        np.asarray(_f64(X)), np.asarray(_f64(K))[::-1, ::-1], mode="valid"))
