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
Batch norm: see `batch_norm_bound`.
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


def batch_norm_bound(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                     mean: torch.Tensor, var: torch.Tensor, eps: float, u: float,
                     reduce_dims: tuple[int, ...]) -> torch.Tensor:
    """Per-element bound for y = gamma (x - mean) / sqrt(var + eps) + beta in training.

    With n values per channel: the mean is off by at most dm = (n + 2) u mean|x|; the variance
    (two-pass, or one-pass E[x^2] - mean^2) by at most dv = 2 (n + 4) u E[x^2]; the rest is
    `normalisation_bound`. Everything is float64; `mean`/`var` broadcast against `x` (keepdim
    shapes).
    """
    x = x.to(torch.float64)
    n = 1
    for d in reduce_dims:
        n *= x.shape[d]
    dm = (n + 2) * u * x.abs().mean(dim=reduce_dims, keepdim=True)
    dv = 2 * (n + 4) * u * (x * x).mean(dim=reduce_dims, keepdim=True)
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
