"""Float64 oracles for batch normalisation, each paired with its error model (tolerance.Expected).

Notation, per channel c of an input x of shape (N, C, ...) with n = N * (product of the spatial
sizes) values per channel:
    mu      = (1/n) sum x                              the batch mean
    sigma2  = (1/n) sum (x - mu)^2                      the biased batch variance
    s2_unb  = sigma2 * n / (n - 1)                      the unbiased one
    y       = gamma (x - mu) / sqrt(sigma2 + eps) + beta     (training)
    y       = gamma (x - r_mean) / sqrt(r_var + eps) + beta  (evaluation)
Running statistics (contract, "Conventions the suite detects"):
    'new-weighted': r <- (1 - m) r + m b     (torch, d2l 2nd ed.)
    'old-weighted': r <- m r + (1 - m) b     (d2l 1st ed.)
with b the batch mean, and the biased or unbiased batch variance for r_var.

The values come from torch's own float64 operators (F.batch_norm, autograd, nn.BatchNorm1d/2d)
where torch has them, and from the formulas above where it does not (the old-weighted form and
the biased running variance); tests/test_oracles_bn.py checks the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from properties.tolerance import (Expected, batch_norm_bound, mean_error, normalisation_bound,
                                  one_pass_variance_error, stable_variance_error)

F64 = torch.float64
MOMENTUM_FORMS = ("new-weighted", "old-weighted")
VARIANCE_KINDS = ("biased", "unbiased")
#: torch's BatchNorm modules: the contract's BatchNorm behaves as these.
MODULE_MOMENTUM, MODULE_EPS = 0.1, 1e-5


# --------------------------------------------------------------------------- shapes

def reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Every axis but the channel axis 1: those the statistics run over."""
    return tuple(d for d in range(x.dim()) if d != 1)


def values_per_channel(x: torch.Tensor) -> int:
    """n = N * (product of the spatial sizes)."""
    return x.numel() // x.shape[1] if x.shape[1] else 0


def channel_view(v: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """A per-channel vector (C,) (or any shape with C elements) as (1, C, 1, ...) against x."""
    if v is None:
        return None
    shape = [1] * x.dim()
    shape[1] = x.shape[1]
    return v.detach().to(F64).cpu().reshape(shape)


def _f64(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().to(F64).cpu()


def _vector(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else _f64(t).reshape(-1)


# --------------------------------------------------------------------------- batch statistics

@dataclass(frozen=True)
class BatchStatistics:
    """Per-channel (C,) float64 statistics of a batch, with the error bounds of any
    numerically stable implementation computing them at unit roundoff u (see
    tolerance.mean_error and tolerance.stable_variance_error)."""
    count: int
    mean: torch.Tensor
    biased: torch.Tensor
    unbiased: torch.Tensor
    mean_abs: torch.Tensor        # (1/n) sum |x|
    mean_square: torch.Tensor     # (1/n) sum x^2
    max_abs: torch.Tensor         # max |x|
    value_range: torch.Tensor     # max x - min x

    def variance(self, kind: str) -> torch.Tensor:
        return self.biased if kind == "biased" else self.unbiased

    def mean_error(self, u: float) -> torch.Tensor:
        """(n + 2) u mean|x|: the error of a computed batch mean."""
        return mean_error(self.count, u, self.mean_abs)

    def variance_error(self, kind: str, u: float, one_pass: bool = False) -> torch.Tensor:
        """The error of a stable (two-pass or Welford) biased variance, or with `one_pass`
        that of E[x^2] - mean^2; plus 2u |s2_unb| for the factor n / (n - 1) of the
        unbiased variance."""
        error = one_pass_variance_error(self.count, u, self.mean_square) if one_pass else \
            stable_variance_error(self.count, u, self.biased, self.max_abs, self.value_range,
                                  self.mean_error(u))
        return error + 2 * u * self.unbiased if kind == "unbiased" else error


def batch_statistics(x: torch.Tensor) -> BatchStatistics:
    """mu, sigma2 (biased) and s2_unb (unbiased) of every channel of x, in float64."""
    x = _f64(x)
    dims = reduce_dims(x)
    n = values_per_channel(x)
    mean = x.mean(dim=dims)
    biased = ((x - channel_view(mean, x)) ** 2).mean(dim=dims)
    unbiased = biased * n / (n - 1) if n > 1 else torch.full_like(biased, float("nan"))
    return BatchStatistics(n, mean, biased, unbiased, x.abs().mean(dim=dims),
                           (x * x).mean(dim=dims), x.abs().amax(dim=dims),
                           x.amax(dim=dims) - x.amin(dim=dims))


# --------------------------------------------------------------------------- outputs

def training_output(x, gamma=None, beta=None, eps: float = 1e-5) -> Expected:
    """y = gamma (x - mu) / sqrt(sigma2 + eps) + beta with the batch's own statistics:
    torch's F.batch_norm(training=True) in float64, error model tolerance.batch_norm_bound.
    gamma/beta: anything with C elements, or None (1 and 0)."""
    x64 = _f64(x)
    value = F.batch_norm(x64, None, None, _vector(gamma), _vector(beta), training=True,
                         eps=eps)
    stats = batch_statistics(x64)
    mean, var = channel_view(stats.mean, x64), channel_view(stats.biased, x64)
    g, b = channel_view(gamma, x64), channel_view(beta, x64)
    return Expected(value, lambda u: batch_norm_bound(x64, g, b, mean, var, eps, u,
                                                      reduce_dims(x64)))


def evaluation_output(x, running_mean, running_var, gamma=None, beta=None, eps: float = 1e-5,
                      mean_error: Callable[[float], torch.Tensor | float] | None = None,
                      var_error: Callable[[float], torch.Tensor | float] | None = None
                      ) -> Expected:
    """y = gamma (x - r_mean) / sqrt(r_var + eps) + beta: torch's F.batch_norm(training=False)
    in float64. The running statistics are exact inputs unless `mean_error(u)`/`var_error(u)`
    bound their errors (per channel, (C,)), as after a module's own training steps."""
    x64 = _f64(x)
    value = F.batch_norm(x64, _vector(running_mean).clone(), _vector(running_var).clone(),
                         _vector(gamma), _vector(beta), training=False, eps=eps)
    mean, var = channel_view(running_mean, x64), channel_view(running_var, x64)
    g, b = channel_view(gamma, x64), channel_view(beta, x64)

    def bound(u: float):
        dm = channel_view(torch.as_tensor(mean_error(u)), x64) if mean_error else 0.0
        dv = channel_view(torch.as_tensor(var_error(u)), x64) if var_error else 0.0
        return normalisation_bound(x64, g, b, mean, var, eps, u, dm, dv)
    return Expected(value, bound)


def batch_normalised_with_variance(x, kind: str, gamma=None, beta=None,
                                   eps: float = 1e-5) -> torch.Tensor:
    """gamma (x - mu) / sqrt(v + eps) + beta with v the biased or unbiased batch variance
    (the unbiased one in the normalisation is a known mistake)."""
    x64 = _f64(x)
    stats = batch_statistics(x64)
    y = (x64 - channel_view(stats.mean, x64)) / torch.sqrt(
        channel_view(stats.variance(kind), x64) + eps)
    return _affine(y, gamma, beta, x64)


def eps_outside_sqrt(x, gamma=None, beta=None, eps: float = 1e-5) -> torch.Tensor:
    """gamma (x - mu) / (sqrt(sigma2) + eps) + beta: the known mistake of adding eps after
    the square root."""
    x64 = _f64(x)
    stats = batch_statistics(x64)
    y = (x64 - channel_view(stats.mean, x64)) / (
        torch.sqrt(channel_view(stats.biased, x64)) + eps)
    return _affine(y, gamma, beta, x64)


def _affine(y, gamma, beta, x):
    g, b = channel_view(gamma, x), channel_view(beta, x)
    y = y if g is None else y * g
    return y if b is None else y + b


# --------------------------------------------------------------------------- running statistics

def running_update(old: torch.Tensor, batch: torch.Tensor, momentum: float,
                   form: str) -> torch.Tensor:
    """'new-weighted': (1 - m) old + m batch;  'old-weighted': m old + (1 - m) batch."""
    keep, take = _weights(momentum, form)
    return keep * _f64(old) + take * _f64(batch)


def _weights(momentum: float, form: str) -> tuple[float, float]:
    """(weight of the old value, weight of the batch value) in `form`."""
    if form not in MOMENTUM_FORMS:
        raise ValueError(f"unknown momentum form {form!r}; expected one of {MOMENTUM_FORMS}")
    return (1 - momentum, momentum) if form == "new-weighted" else (momentum, 1 - momentum)


def update_error(old: torch.Tensor, batch: torch.Tensor, batch_error: torch.Tensor,
                 old_error: torch.Tensor | float, momentum: float, form: str,
                 u: float) -> torch.Tensor:
    """Error bound of a computed keep * old + take * batch when the batch value is off by at
    most `batch_error` and the old value by `old_error`:
        keep * old_error + take * batch_error + 4u (|keep old| + |take batch|)
                                                + 4u |batch - old|
    The first 4u: three roundings in the weighted sum (the weight, the product, the addition),
    one u spare for second-order terms. The second: torch's lerp form old + w (batch - old)
    rounds the difference, the product and the sum at the size of |batch - old|, and a weight
    w = 1 - m computed in the working precision is off by u m / (1 - m) relative."""
    keep, take = _weights(momentum, form)
    old, batch = _f64(old), _f64(batch)
    return (keep * old_error + take * batch_error
            + 4 * u * (keep * old.abs() + take * batch.abs()) + 4 * u * (batch - old).abs())


def updated_running_stats(x, old_mean, old_var, momentum: float, form: str,
                          var_kind: str) -> tuple[Expected, Expected]:
    """The new running mean and variance after one training step on x, under a convention
    (momentum form, running-variance kind), shaped like old_mean/old_var. For torch's own
    convention ('new-weighted', 'unbiased') the values are torch's F.batch_norm's in float64."""
    stats = batch_statistics(x)
    shape = old_mean.shape
    mean_value = running_update(_vector(old_mean), stats.mean, momentum, form)
    var_value = running_update(_vector(old_var), stats.variance(var_kind), momentum, form)
    if (form, var_kind) == ("new-weighted", "unbiased"):
        mean_value, var_value = _torch_running_update(x, old_mean, old_var, momentum)

    def mean_bound(u):
        return update_error(old_mean.reshape(-1), stats.mean, stats.mean_error(u), 0.0,
                            momentum, form, u).reshape(shape)

    def var_bound(u):
        return update_error(old_var.reshape(-1), stats.variance(var_kind),
                            stats.variance_error(var_kind, u), 0.0, momentum, form,
                            u).reshape(shape)
    return (Expected(mean_value.reshape(shape), mean_bound),
            Expected(var_value.reshape(old_var.shape), var_bound))


def _torch_running_update(x, old_mean, old_var, momentum):
    """torch's F.batch_norm(training=True) running-statistics update, in float64."""
    mean, var = _vector(old_mean).clone(), _vector(old_var).clone()
    F.batch_norm(_f64(x), mean, var, None, None, training=True, momentum=momentum)
    return mean, var


# --------------------------------------------------------------------------- the module

@dataclass(frozen=True)
class ModuleState:
    """A BatchNorm module's running statistics (C,) after training steps, with error bounds
    of any implementation at unit roundoff u."""
    mean: torch.Tensor
    var: torch.Tensor
    mean_error: Callable[[float], torch.Tensor]
    var_error: Callable[[float], torch.Tensor]


def module_after_training(batches: Sequence[torch.Tensor], var_kind: str,
                          initial_var: float = 1.0,
                          momentum: float = MODULE_MOMENTUM) -> ModuleState:
    """Running statistics of a fresh BatchNorm (mean 0, variance 1, momentum 0.1) fed
    `batches` in training: torch's nn.BatchNorm1d/2d in float64, whose running variance is the
    unbiased one; for the 'biased' convention, or a running variance starting at
    `initial_var` other than 1 (the known mistake of zeros), the variance follows the
    recurrence r <- 0.9 r + 0.1 v instead. `momentum` other than 0.1 is the known mistake
    of a momentum of the other convention (0.9 in torch's form: r <- 0.1 r + 0.9 v)."""
    channels = batches[0].shape[1]
    torch_module = (nn.BatchNorm1d if batches[0].dim() == 2 else nn.BatchNorm2d)(
        channels, momentum=momentum, eps=MODULE_EPS).to(F64)
    mean = torch.zeros(channels, dtype=F64)
    var = torch.full((channels,), float(initial_var), dtype=F64)
    history = []
    with torch.no_grad():
        for x in batches:
            torch_module(_f64(x))
            stats = batch_statistics(x)
            history.append((mean, var, stats))
            mean = running_update(mean, stats.mean, momentum, "new-weighted")
            var = running_update(var, stats.variance(var_kind), momentum, "new-weighted")
    mean = torch_module.running_mean.clone()
    if var_kind == "unbiased" and initial_var == 1.0:
        var = torch_module.running_var.clone()

    def errors(u: float) -> tuple[torch.Tensor, torch.Tensor]:
        dm = dv = torch.zeros(channels, dtype=F64)
        for old_mean, old_var, stats in history:
            dm = update_error(old_mean, stats.mean, stats.mean_error(u), dm,
                              momentum, "new-weighted", u)
            dv = update_error(old_var, stats.variance(var_kind),
                              stats.variance_error(var_kind, u), dv, momentum,
                              "new-weighted", u)
        return dm, dv
    return ModuleState(mean, var, lambda u: errors(u)[0], lambda u: errors(u)[1])


# --------------------------------------------------------------------------- gradients

def training_gradients(x, gamma, beta, upstream, eps: float = 1e-5) -> dict[str, Expected]:
    """Gradients of sum(upstream * y) for y = F.batch_norm(x, training=True, weight=gamma,
    bias=beta), by torch's float64 autograd: keys 'X', 'gamma', 'beta' (those not None), each
    shaped like its input. Error model (`gradient_bounds`):
        d beta  = sum g                      d gamma = sum g x_hat
        d x     = (gamma / s) (g - mean(g) - x_hat mean(g x_hat))
    """
    x64 = _f64(x).requires_grad_()
    g64 = None if gamma is None else _vector(gamma).requires_grad_()
    b64 = None if beta is None else _vector(beta).requires_grad_()
    with torch.enable_grad():
        y = F.batch_norm(x64, None, None, g64, b64, training=True, eps=eps)
        y.backward(_f64(upstream))
    bounds = gradient_bounds(x, gamma, upstream, eps)
    expected = {"X": Expected(x64.grad.detach(), bounds["X"])}
    if gamma is not None:
        expected["gamma"] = Expected(g64.grad.reshape(gamma.shape), lambda u: bounds["gamma"](
            u).reshape(gamma.shape))
    if beta is not None:
        expected["beta"] = Expected(b64.grad.reshape(beta.shape), lambda u: bounds["beta"](
            u).reshape(beta.shape))
    return expected


def gradient_bounds(x, gamma, upstream, eps: float) -> dict[str, Callable[[float], torch.Tensor]]:
    """Per-element error bounds of batch-norm gradients computed at unit roundoff u, in any
    order (torch's fused formula, or autograd through the textbook's operations).

    With s, x_hat as in the forward pass, the forward errors (tolerance.batch_norm_bound)
    give a relative error e_s = dv / (2 s^2) + 3u of s and an absolute error
        dxh = (dm + 2u|x - mu|) / s + |x_hat| e_s + 3u (|x| + |mu|) / s   of x_hat.
    With A = mean|g|, B = mean|g x_hat|, each sum of n terms adding (n + 2) u:
        d beta:  (n + 2) u sum|g|
        d gamma: (n + 2) u sum|g x_hat| + sum |g| dxh
        d x:     |gamma| / s [ ((2n + 8) u + e_s) M + dxh B + |x_hat| (mean(|g| dxh)
                 + (n + 2) u B) ],   M = |g| + A + (|x_hat| + mean|x_hat|) B
    The term mean|x_hat| B covers autograd's route through the mean, whose gradient multiplies
    the computed sum(x - mu) (zero up to rounding) by the variance's gradient.
    """
    x64, g = _f64(x), _f64(upstream)
    dims = reduce_dims(x64)
    stats = batch_statistics(x64)
    n = stats.count
    mean = channel_view(stats.mean, x64)
    s = torch.sqrt(channel_view(stats.biased, x64) + eps)
    x_hat = (x64 - mean) / s
    gam = torch.ones((), dtype=F64) if gamma is None else channel_view(gamma, x64).abs()

    def per_channel_mean(t):
        return t.mean(dim=dims, keepdim=True)

    def parts(u):
        dm = channel_view(stats.mean_error(u), x64)
        dv = channel_view(stats.variance_error("biased", u), x64)
        e_s = dv / (2 * s * s) + 3 * u
        dxh = ((dm + 2 * u * (x64 - mean).abs()) / s + x_hat.abs() * e_s
               + 3 * u * (x64.abs() + mean.abs()) / s)
        return e_s, dxh

    def x_bound(u):
        e_s, dxh = parts(u)
        a, b = per_channel_mean(g.abs()), per_channel_mean((g * x_hat).abs())
        m = g.abs() + a + (x_hat.abs() + per_channel_mean(x_hat.abs())) * b
        b_err = per_channel_mean(g.abs() * dxh) + (n + 2) * u * b
        return gam / s * (((2 * n + 8) * u + e_s) * m + dxh * b + x_hat.abs() * b_err)

    def gamma_bound(u):
        _, dxh = parts(u)
        return ((n + 2) * u * (g * x_hat).abs() + g.abs() * dxh).sum(dim=dims)

    def beta_bound(u):
        return (n + 2) * u * g.abs().sum(dim=dims)
    return {"X": x_bound, "gamma": gamma_bound, "beta": beta_bound}
