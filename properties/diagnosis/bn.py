"""Recomputations for batch_norm, in all three dialects: the correct values of a call, and
how each known mistake shows, as the float64 result of the wrong computation
(properties.oracles_bn, under its error models). properties.diagnosis.mistakes names them.

Where the outputs live:
    d2l 1st/2nd ed.   Y, new moving_mean, new moving_var = items 0, 1, 2 of the returned tuple
    functional        Y = the result; the running stats are updated in place (arg:running_*)
Training is `is_training` (1st ed.), the grad mode of the call (2nd ed.: a call made under
torch.no_grad() says so in its description) or `training` (functional).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from properties import oracles_bn as bn
from properties.diagnosis.core import (F64, RESULT, View, arg_after, half_precision, item,
                                       variant)
from properties.tolerance import (Expected, batch_norm_bound, channel_errors, compared_dtype,
                                  unit_roundoff)

ALL_CONVENTIONS = tuple(itertools.product(bn.MOMENTUM_FORMS, bn.VARIANCE_KINDS))
TORCH_CONVENTION = (("new-weighted", "unbiased"),)


@dataclass(frozen=True)
class Call:
    """A batch_norm call in one vocabulary, whatever its dialect."""
    x: torch.Tensor
    gamma: torch.Tensor | None
    beta: torch.Tensor | None
    mean: torch.Tensor | None
    var: torch.Tensor | None
    eps: float
    momentum: float
    training: bool
    x_name: str
    y: str            # the part holding Y
    new_mean: str     # the part holding the new running mean
    new_var: str


def call_of(view: View) -> Call:
    p = view.params
    if view.dialect == "functional":
        return Call(p["input"], p["weight"], p["bias"], p["running_mean"], p["running_var"],
                    float(p["eps"]), float(p["momentum"]), bool(p["training"]), "input",
                    RESULT, arg_after("running_mean"), arg_after("running_var"))
    training = bool(p["is_training"]) if view.dialect == "d2l-1st" else \
        view.call.grad_enabled is not False
    return Call(p["X"], p["gamma"], p["beta"], p["moving_mean"], p["moving_var"],
                float(p["eps"]), float(p["momentum"]), training, "X", item(0), item(1),
                item(2))


def conventions(view: View) -> tuple[tuple[str, str], ...]:
    """The running-statistics conventions the call may follow: torch's for the functional
    dialect; for the textbook's, those agreeing with what was detected (any, when nothing was)."""
    if view.dialect == "functional":
        return TORCH_CONVENTION
    found = view.conventions
    return tuple((form, kind) for form, kind in ALL_CONVENTIONS
                 if found.get("momentum", form) == form and found.get("running_var", kind) == kind)


# --------------------------------------------------------------------------- correct values

def training_y(c: Call) -> Expected:
    return bn.training_output(c.x, c.gamma, c.beta, c.eps)


def evaluation_y(c: Call, gamma=None, beta=None) -> Expected:
    return bn.evaluation_output(c.x, c.mean, c.var, gamma, beta, c.eps)


def correct_y(c: Call) -> Expected:
    return training_y(c) if c.training else evaluation_y(c, c.gamma, c.beta)


def updates(c: Call, form: str, kind: str) -> tuple[Expected, Expected]:
    return bn.updated_running_stats(c.x, c.mean, c.var, c.momentum, form, kind)


def correct_values(view: View) -> dict:
    c = call_of(view)
    correct = {c.y: [correct_y(c)]}
    if c.mean is None or c.var is None:
        return correct
    if c.training:
        pairs = [updates(c, form, kind) for form, kind in conventions(view)]
        correct[c.new_mean] = [m for m, _ in pairs]
        correct[c.new_var] = [v for _, v in pairs]
    else:
        correct[c.new_mean] = [Expected.exact(c.mean)]
        correct[c.new_var] = [Expected.exact(c.var)]
    return correct


# --------------------------------------------------------------------------- wrong Y

def _normalised(x, gamma, beta, mean, var, eps, dims) -> Expected:
    """gamma (x − mean) / sqrt(var + eps) + beta with statistics over `dims`."""
    x = x.to(F64)
    g, b = bn.channel_view(gamma, x), bn.channel_view(beta, x)
    y = (x - mean) / torch.sqrt(var + eps)
    y = y if g is None else y * g
    y = y if b is None else y + b
    return Expected(y, lambda u: batch_norm_bound(x, g, b, mean, var, eps, u, dims))


def wrong_axes(view: View):
    """Statistics over any set of axes but the right one (all axes except the channels)."""
    c = call_of(view)
    x = c.x.to(F64)
    right = set(bn.reduce_dims(x))
    for size in range(1, x.dim() + 1):
        for dims in itertools.combinations(range(x.dim()), size):
            if set(dims) == right:
                continue
            mean = x.mean(dim=dims, keepdim=True)
            var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
            yield _normalised(x, c.gamma, c.beta, mean, var, c.eps, dims)


def _stat_parts(view: View, c: Call) -> list[str]:
    """The parts holding new running statistics: items 1 and 2 (textbook) or the running
    stats after the call (functional)."""
    return [c.new_mean, c.new_var]


def wrong_axes_updates(view: View, c: Call):
    """New running statistics updated with statistics over wrong axes (keepdim, broadcast
    against the old ones), under any convention."""
    x = c.x.to(F64)
    right = set(bn.reduce_dims(x))
    old_mean, old_var = c.mean.to(F64), c.var.to(F64)
    for size in range(1, x.dim() + 1):
        for dims in itertools.combinations(range(x.dim()), size):
            if set(dims) == right:
                continue
            n = math.prod(x.shape[d] for d in dims)
            mean = x.mean(dim=dims, keepdim=True)
            biased = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
            dm = lambda u, dims=dims: channel_errors(x, u, dims)[0]
            dv = lambda u, dims=dims: channel_errors(x, u, dims)[1]
            batches = [(old_mean, mean, dm), (old_var, biased, dv)]
            if n > 1:
                batches.append((old_var, biased * n / (n - 1), dv))
            for form in bn.MOMENTUM_FORMS:
                for old, batch, error in batches:
                    keep, take = bn._weights(c.momentum, form)
                    yield Expected(keep * old + take * batch,
                                   lambda u, old=old, batch=batch, error=error, form=form:
                                   bn.update_error(old, batch, error(u), 0.0, c.momentum,
                                                   form, u))


def _wrong_axes_in_stats(view: View) -> bool:
    c = call_of(view)
    if not c.training or c.mean is None or c.var is None:
        return False
    return any(view.wrong(part) and any(view.agrees(part, e)
                                        for e in _safe_list(wrong_axes_updates, view, c))
               for part in _stat_parts(view, c))


def _safe_list(values, view, c) -> list:
    try:
        return list(values(view, c))
    except (RuntimeError, ValueError, TypeError, IndexError):
        return []


def eps_outside(view: View):
    c = call_of(view)
    correct = correct_y(c)
    if c.training:
        yield correct.with_value(bn.eps_outside_sqrt(c.x, c.gamma, c.beta, c.eps))
        return
    x = c.x.to(F64)
    y = (x - bn.channel_view(c.mean, x)) / (torch.sqrt(bn.channel_view(c.var, x)) + c.eps)
    yield correct.with_value(bn._affine(y, c.gamma, c.beta, x))


def swapped_affine(view: View):
    c = call_of(view)
    if c.gamma is None or c.beta is None:
        return
    yield bn.training_output(c.x, c.beta, c.gamma, c.eps) if c.training else \
        evaluation_y(c, c.beta, c.gamma)


def _y_variant(values, when=lambda c: True):
    """A mistake of Y (whichever part holds it in this dialect), recognised by its values. A
    right Y is explained by it only where the mistake's value is right too (core.variant's
    `explains`), or where the mistake cannot happen (`when` false)."""
    def shows(view: View) -> bool:
        c = call_of(view)
        return when(c) and variant(values, part=c.y)(view)

    def explains(view: View) -> bool:
        return variant(values, part=call_of(view).y,
                       when=lambda v: when(call_of(v))).explains(view)
    shows.explains = explains
    return shows


def half_precision_y(view: View) -> bool:
    return half_precision(call_of(view).y)(view)


half_precision_y.explains = half_precision_y   # as core.half_precision: only a wrong Y is its


def one_pass_variance(view: View) -> bool:
    """Y is batch norm with a wrong variance v' per channel, every v' within the one-pass
    formula's error of sigma2 (tolerance.one_pass_variance_error) where that error exceeds a
    stable algorithm's: the variance computed as E[x^2] - mean^2.

    v' is read off the target's Y: per channel, the least-squares factor a with
    (Y - beta) / gamma = a (x - mu) gives v' = 1/a^2 - eps, and Y must agree with
    gamma (x - mu) / sqrt(v' + eps) + beta under the stable error model, so a Y that is not a
    per-channel rescaling of the right one (another mistake) is not this one. A channel whose
    Y is NaN throughout is the one-pass variance gone below -eps: it counts where the
    one-pass error exceeds sigma2 + eps."""
    c = call_of(view)
    y = view.value(c.y)
    if not c.training or not view.wrong(c.y) or tuple(y.shape) != tuple(c.x.shape):
        return False
    x = c.x.to(F64)
    dims = bn.reduce_dims(x)
    stats = bn.batch_statistics(x)
    u = unit_roundoff(compared_dtype(view.input_dtype, y.dtype))
    one_pass_error = stats.variance_error("biased", u, one_pass=True)
    g, b = bn.channel_view(c.gamma, x), bn.channel_view(c.beta, x)
    centred = x - bn.channel_view(stats.mean, x)
    scaled = y.detach().to(F64).cpu() - (0.0 if b is None else b)
    scaled = scaled if g is None else scaled / g
    spread = (centred * centred).sum(dim=dims)
    implied = 1 / ((scaled * centred).sum(dim=dims) / spread) ** 2 - c.eps
    lost = torch.movedim(scaled.isnan(), 1, 0).reshape(x.shape[1], -1).all(dim=1)
    informative = (spread > 0) & ~lost
    if g is not None:
        informative &= g.reshape(-1) != 0
    implied = torch.where(informative, implied, stats.biased)
    plausible = torch.where(lost, stats.biased + c.eps <= one_pass_error,
                            ((implied - stats.biased).abs() <= one_pass_error)
                            & implied.isfinite() & (implied + c.eps > 0))
    if not bool(plausible.all()) or not bool(
            (one_pass_error > stats.variance_error("biased", u)).any()):
        return False
    if bool(lost.all()):
        return True
    var = bn.channel_view(implied, x)
    value = bn._affine(centred / torch.sqrt(var + c.eps), c.gamma, c.beta, x)
    shape = [1] * x.dim()
    shape[1] = x.shape[1]
    mean = bn.channel_view(stats.mean, x)
    return view.agrees(c.y, Expected(value, lambda u: batch_norm_bound(x, g, b, mean, var,
                                                                       c.eps, u, dims),
                                     ~lost.reshape(shape)))


# --------------------------------------------------------------------------- running stats

def _form_matches(view: View, c: Call) -> tuple[set, set]:
    """The momentum forms the new mean follows, and those the new variance follows."""
    mean_forms, var_forms = set(), set()
    for form, kind in ALL_CONVENTIONS:
        mean, var = updates(c, form, kind)
        if view.agrees(c.new_mean, mean):
            mean_forms.add(form)
        if view.agrees(c.new_var, var):
            var_forms.add(form)
    return mean_forms, var_forms


def _stats(test, changes):
    """A mistake of the running statistics: test(view, call) decides. `changes(view, call)`
    says where the mistake changes the new statistics of a generic input: a right result
    there is not this mistake (elsewhere it explains a right result)."""
    def shows(view: View) -> bool:
        c = call_of(view)
        if c.mean is None or c.var is None:
            return False
        return test(view, c)

    def explains(view: View) -> bool:
        c = call_of(view)
        return c.mean is None or c.var is None or not changes(view, c)
    shows.explains = explains
    return shows


def _training(view: View, c: Call) -> bool:
    return c.training


def _momentum_matters(view: View, c: Call) -> bool:
    """Training with a momentum whose two forms differ ((1 − m)·old + m·batch against
    m·old + (1 − m)·batch)."""
    return c.training and c.momentum != 0.5


def _not_updated(view: View, c: Call) -> bool:
    """Training, and a new running statistic equals the old one."""
    return c.training and any(view.wrong(part) and view.agrees(part, Expected.exact(old))
                              for part, old in ((c.new_mean, c.mean), (c.new_var, c.var)))


def _mixed(view: View, c: Call) -> bool:
    if not c.training or not (view.wrong(c.new_mean) or view.wrong(c.new_var)):
        return False
    mean_forms, var_forms = _form_matches(view, c)
    return bool(mean_forms) and bool(var_forms) and not mean_forms & var_forms


def _inverted(view: View, c: Call) -> bool:
    return c.training and view.dialect == "functional" and view.wrong(c.new_mean) and \
        _form_matches(view, c)[0] == {"old-weighted"}


def _biased_running_var(view: View, c: Call) -> bool:
    return c.training and view.dialect == "functional" and view.wrong(c.new_var) and \
        view.agrees(c.new_var, updates(c, "new-weighted", "biased")[1])


def _updated_in_eval(view: View, c: Call) -> bool:
    if c.training or not (view.wrong(c.new_mean) or view.wrong(c.new_var)):
        return False
    mean_forms, var_forms = _form_matches(view, c)
    return bool(mean_forms or var_forms)


# --------------------------------------------------------------------------- the input

def _normalised_in_place(view: View) -> bool:
    """The input was changed, and into Y, x̂ or x − mean: it was normalised in place."""
    c = call_of(view)
    part = arg_after(c.x_name)
    if not view.changed(c.x_name):
        return False
    x = c.x.to(F64)
    if c.training:
        stats = bn.batch_statistics(x)
        mean = bn.channel_view(stats.mean, x)
        dm = lambda u: bn.channel_view(stats.mean_error(u), x)
    else:
        mean = bn.channel_view(c.mean, x)
        dm = lambda u: 0.0
    candidates = [correct_y(c), bn.training_output(x, None, None, c.eps) if c.training else
                  evaluation_y(c),
                  Expected(x - mean, lambda u: dm(u) + u * (x.abs() + mean.abs()))]
    return any(view.agrees(part, e) for e in candidates)


input_normalised_in_place = _normalised_in_place
# Normalising in place changes a generic input: a call that left its input alone is not this.
input_normalised_in_place.explains = lambda view: False
unbiased_variance_in_normalisation = _y_variant(
    lambda v: [correct_y(call_of(v)).with_value(bn.batch_normalised_with_variance(
        call_of(v).x, "unbiased", call_of(v).gamma, call_of(v).beta, call_of(v).eps))],
    when=lambda c: c.training)
eps_outside_sqrt = _y_variant(eps_outside)


_wrong_axes_in_y = _y_variant(wrong_axes, when=lambda c: c.training)


def wrong_axes_in_y_or_stats(view: View) -> bool:
    """Y normalised with statistics over other axes, or new running statistics updated with
    them (wrong shape or values)."""
    return _wrong_axes_in_y(view) or _wrong_axes_in_stats(view)


# A right result is what wrong axes compute only where they change Y's value (unit sizes):
# a right Y with right statistics on a generic input is not this mistake.
wrong_axes_in_y_or_stats.explains = _wrong_axes_in_y.explains


eval_uses_batch_stats = _y_variant(lambda v: [training_y(call_of(v))],
                                   when=lambda c: not c.training)
training_uses_running_stats = _y_variant(
    lambda v: [evaluation_y(call_of(v), call_of(v).gamma, call_of(v).beta)],
    when=lambda c: c.training and c.mean is not None)
gamma_beta_swapped = _y_variant(swapped_affine)
running_stats_not_updated = _stats(lambda v, c: v.dialect != "functional" and _not_updated(v, c),
                                   _training)
running_stats_not_in_place = _stats(lambda v, c: v.dialect == "functional" and _not_updated(v, c),
                                    _training)
momentum_mixed = _stats(_mixed, _momentum_matters)
momentum_inverted = _stats(_inverted, _momentum_matters)
running_var_biased = _stats(_biased_running_var, _training)
running_stats_updated_in_eval = _stats(_updated_in_eval, lambda v, c: not c.training)

#: subject -> the correct values of a call, by part.
CORRECT = {"batch_norm": correct_values}
