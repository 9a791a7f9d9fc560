"""The tolerance model: error bounds from floating-point error analysis, not fixed rtol/atol.

Every comparison is made at the *compared precision*: the lower of the input's and the
result's precision, never below float32 (unit roundoff u: 2^-53 for float64, 2^-24 for
float32; a float16 or bfloat16 result is compared at float32).
The oracle computes in float64 from the same inputs, so its own error is negligible at either
precision; with integer-valued inputs it is exact.

Sum of products (cross-correlation, convolution, average pooling). An output
y = b + sum_{t=1..n} x_t k_t computed in any order in precision u satisfies
    |y_computed - y| <= gamma_n * sum_t |x_t||k_t| + u|b|,  gamma_n = n u / (1 - n u)
(Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1). Rounding float64 inputs to
float32 first adds 2u per product, rounding the result adds u|y|. Hence, per output element,
    bound = (n + 3) u * M + u |y|,    M = sum_t |x_t||k_t| + |b|
where M is computed by running the oracle on |x|, |k|, |b|. An FFT-based implementation obeys
a norm-wise bound instead: every output element's error is at most about
u * log2(N) * ||x||_2 * ||k||_2 (N the transform size); a `global term` of
FFT_FACTOR * u * log2(N) * ||x||_2 * ||k||_2 is added so FFT methods pass. Both terms are of
order u, so half-precision accumulation (u = 2^-11) and any real bug (an error of the order of
one term |x_t k_t|, i.e. of order 1 relative to u) are rejected.

Underflow: every comparison also allows UNDERFLOW_ALLOWANCE smallest normal numbers of absolute
error (about 5e-38 in float32), since values in the subnormal range may be flushed to zero.

Max pooling selects an input element: it is exact at the compared precision (bound 0).
Batch norm: the batch statistics' errors are those of a numerically stable algorithm
(`mean_error`, `stable_variance_error`: two-pass or Welford), propagated through the
normalisation (`normalisation_bound`); see `batch_norm_bound`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

#: Absolute error allowed, in units of the compared dtype's smallest normal number: results in
#: the subnormal range may be flushed to zero by correct vectorised kernels (FTZ/DAZ).
UNDERFLOW_ALLOWANCE = 4.0

#: Safety factor on the FFT global term (the norm-wise bound's constant).
FFT_FACTOR = 4.0

_UNIT_ROUNDOFF = {torch.float64: 2.0 ** -53, torch.float32: 2.0 ** -24,
                  torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}


def unit_roundoff(dtype: torch.dtype) -> float:
    """u for a floating dtype; integer dtypes are treated as exact (u = 0)."""
    return _UNIT_ROUNDOFF.get(dtype, 0.0)


#: The compared precision is never below this (contract): a float16 or bfloat16 result for
#: float32 or float64 input is held to float32 accuracy, since half precision loses the
#: input's information.
LOWEST_COMPARED = torch.float32


def compared_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The lowest-precision floating dtype among `dtypes` (the precision values are compared at),
    but never below LOWEST_COMPARED."""
    floating = [d for d in dtypes if d in _UNIT_ROUNDOFF]
    lowest = max(floating, key=unit_roundoff) if floating else torch.float64
    return LOWEST_COMPARED if unit_roundoff(lowest) > unit_roundoff(LOWEST_COMPARED) else lowest


def sum_of_products_bound(magnitude: torch.Tensor, terms: int, u: float) -> torch.Tensor:
    """(n + 3) u * M: the per-element bound for sums of `terms` products with magnitude M."""
    return (terms + 3) * u * magnitude.to(torch.float64)


def fft_global_term(x: torch.Tensor, k: torch.Tensor, transform_size: int, u: float) -> float:
    """FFT_FACTOR * u * log2(N) * ||x||_2 * ||k||_2, a bound on any FFT method's error."""
    norm_x = float(torch.linalg.vector_norm(x.to(torch.float64)))
    norm_k = float(torch.linalg.vector_norm(k.to(torch.float64)))
    return FFT_FACTOR * u * math.log2(max(transform_size, 2)) * norm_x * norm_k


def mean_error(count: int, u: float, mean_abs):
    """(n + 2) u mean|x|: the error of a mean of n values computed at unit roundoff u in any
    summation order (gamma_{n-1} for the sum, u for the division, u for rounding the input
    first; Higham 3.1). Relative to the spread it is (n + 2) u |mean| / sigma: an offset
    costs the mean this much in every algorithm."""
    return (count + 2) * u * mean_abs


def stable_variance_error(count: int, u: float, variance, max_abs, value_range, dm):
    """Error bound of the biased variance sigma2 of n values computed by a numerically stable
    algorithm at unit roundoff u, to first order in u (plus the second-order dm^2 terms):

        dv = (n + 4) u sigma2 + 2 dm^2 + 6 u D^2 + (n + 7)/2 u A D,

    with dm the mean's error (`mean_error`), A = max|x| and D = max x - min x per channel.

    * Two-pass, sigma2 = (1/n) sum (x_i - m)^2 with the computed mean m = mu + delta,
      |delta| <= dm: each fl(x_i - m)^2 carries (1 + theta_3), the sum and the division
      gamma_n, and (1/n) sum (x_i - m)^2 = sigma2 + delta^2 exactly (the cross term
      sum (x_i - mu) vanishes). So |dv| <= gamma_{n+3} (sigma2 + dm^2) + dm^2.
    * Welford (M_k = M_{k-1} + d_k / k, S_k = S_{k-1} + d_k (x_k - M_k), d_k = x_k - M_{k-1}):
      the running mean's error obeys m_k = (1 - 1/k) m_{k-1} + xi_k with
      |xi_k| <= 3u|d_k|/k + u|M_k|, so |m_k| <= 3uD + (k + 1)uA/2; it enters each product
      d_k (x_k - M_k) at most as (|m_{k-1}| + |m_k|) D, the products' own roundings add
      3u d_k e_k and the (non-negative, growing) sum (n - 1)u S_n. Summed (sum_k |m_k| <=
      3nuD + n(n + 3)uA/4) and divided by n:
      |dv| <= (n + 3) u sigma2 + 6 u D^2 + (n + 3)/2 u A D (Chan, Golub and LeVeque 1983:
      relative error about n u kappa, kappa = sqrt(1 + mu^2/sigma2); pairwise/cascaded
      Welford, torch's var_mean, does better).
    * Rounding float64 input to the compared float32 first moves sigma2 by at most
      2u mean(|x - mu| |x|) <= 2 u A D.
    The bound is the larger of the first two plus the third (gamma_{n+3} <= (n + 4)u while
    (n + 3)^2 u <= 1). It grows like n u |mu| D, linearly in the
    offset relative to the spread; the one-pass E[x^2] - mean^2 is only bounded by
    `one_pass_variance_error`, which grows like n u mu^2: quadratically, so with a mean 10^3
    times the spread in float32 it loses every digit (and can go negative).
    """
    return ((count + 4) * u * variance + 2 * dm * dm + 6 * u * value_range * value_range
            + (count + 7) / 2 * u * max_abs * value_range)


def one_pass_variance_error(count: int, u: float, mean_square):
    """2 (n + 4) u E[x^2]: the error bound of the one-pass variance fl(E[x^2]) - fl(mean)^2
    (each of E[x^2] and mean^2 is off by about (n + 2) u E[x^2]). Not an accuracy a correct
    implementation may have (contract: "Accuracy on ill-conditioned inputs"); the diagnosis
    uses it to recognise that formula (bn-one-pass-variance)."""
    return 2 * (count + 4) * u * mean_square


def channel_errors(x: torch.Tensor, u: float,
                   reduce_dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(dm, dv) per channel (keepdim shapes) of the batch statistics of x over `reduce_dims`:
    `mean_error` and `stable_variance_error`."""
    x = x.to(torch.float64)
    n = 1
    for d in reduce_dims:
        n *= x.shape[d]
    dm = mean_error(n, u, x.abs().mean(dim=reduce_dims, keepdim=True))
    mean = x.mean(dim=reduce_dims, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=reduce_dims, keepdim=True)
    top, bottom = x.amax(dim=reduce_dims, keepdim=True), x.amin(dim=reduce_dims, keepdim=True)
    return dm, stable_variance_error(n, u, variance, x.abs().amax(dim=reduce_dims, keepdim=True),
                                     top - bottom, dm)


def batch_norm_bound(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                     mean: torch.Tensor, var: torch.Tensor, eps: float, u: float,
                     reduce_dims: tuple[int, ...]) -> torch.Tensor:
    """Per-element bound for y = gamma (x - mean) / sqrt(var + eps) + beta in training: the
    statistics' errors dm and dv of a stable algorithm (`channel_errors`) propagated by
    `normalisation_bound`. Everything is float64; `mean`/`var` broadcast against `x` (keepdim
    shapes).
    """
    dm, dv = channel_errors(x, u, reduce_dims)
    return normalisation_bound(x, gamma, beta, mean, var, eps, u, dm, dv)


def normalisation_bound(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                        mean: torch.Tensor, var: torch.Tensor, eps: float, u: float,
                        dm: torch.Tensor | float = 0.0,
                        dv: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Per-element bound for y = gamma (x - mean) / sqrt(var + eps) + beta when the statistics
    used carry errors of at most dm (mean) and dv (variance): 0 for exact running statistics.

    With s = sqrt(var + eps) and a relative error of s of at most dv / (2 s^2) + 3u (the
    addition of eps, the square root, the division):
        |dy| <= |gamma| ((dm + 2u|x - mean|) / s + |x - mean| / s * (dv / (2 s^2) + 3u))
                + 3u |gamma| (|x| + |mean|) / s + 2u |gamma x_hat| + 2u |beta| .
    The term 3u |gamma| (|x| + |mean|) / s admits the folded form torch uses,
    y = x * a + (beta - mean * a) with a = gamma / s, whose products round at the size of |x a|
    and |mean a| rather than |(x - mean) a|. The last two terms are the roundings of the
    product gamma * x_hat and of the final sum (u |y| <= u |gamma x_hat| + u |beta|), or in the
    folded form of beta - mean * a and of the final sum.
    """
    x = x.to(torch.float64)
    mean = mean.to(torch.float64)
    s = torch.sqrt(var.to(torch.float64) + eps)
    centred = (x - mean).abs()
    g = torch.ones((), dtype=torch.float64) if gamma is None else gamma.to(torch.float64).abs()
    b = torch.zeros((), dtype=torch.float64) if beta is None else beta.to(torch.float64).abs()
    bound = g * ((dm + 2 * u * centred) / s + centred / s * (dv / (2 * s * s) + 3 * u))
    folded = 3 * u * g * (x.abs() + mean.abs()) / s
    return bound + folded + 2 * u * g * centred / s + 2 * u * b


@dataclass(frozen=True)
class Expected:
    """An oracle's float64 value and its error model: `bound(u)` gives the per-element error
    allowed to a result computed at unit roundoff u (before the final rounding, which the
    comparison adds). `defined`, when given, masks the elements that are compared (the
    diagnosis's wrong outputs may hold windows the wrong computation leaves undefined)."""
    value: torch.Tensor
    bound: Callable[[float], torch.Tensor | float]
    defined: torch.Tensor | None = None

    def with_value(self, value: torch.Tensor, factor: float = 1.0) -> "Expected":
        """Another value under this error model, its bound scaled by `factor` (use 2 when the
        value is itself a computed result with the same error bound)."""
        bound = self.bound
        return Expected(value.to(torch.float64), lambda u: factor * torch.as_tensor(bound(u)))

    @staticmethod
    def exact(value: torch.Tensor) -> "Expected":
        """For results that select an input element (max pooling): no error allowed."""
        return Expected(value.to(torch.float64), lambda u: 0.0)


def sum_of_products(value: torch.Tensor, magnitude: torch.Tensor, terms: int,
                    fft_term: Callable[[float], float] | None = None) -> Expected:
    """Expected for a sum of `terms` products: (n + 3) u M per element, plus the FFT term."""
    def bound(u: float):
        local = sum_of_products_bound(magnitude, terms, u)
        return local + fft_term(u) if fft_term else local
    return Expected(value.to(torch.float64), bound)
