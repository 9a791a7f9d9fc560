"""Properties of `batch_norm` in its three dialects: the d2l 1st edition
`batch_norm(is_training, X, gamma, beta, moving_mean, moving_var, eps, momentum)`, the d2l 2nd
edition `batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum)` (training iff
grad is enabled), both returning (Y, new_moving_mean, new_moving_var), and the functional
`batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)`, which
returns Y and updates the running statistics in place.

In training, per channel over every axis but axis 1 (n values):
    Y = gamma (X - mu) / sqrt(sigma2 + eps) + beta,   sigma2 the biased batch variance,
and the running statistics move towards the batch's per the target's convention
(properties.conventions; the functional dialect follows torch). In evaluation:
    Y = gamma (X - running_mean) / sqrt(running_var + eps) + beta, statistics unchanged.
"""
from __future__ import annotations

import torch

from properties import oracles_bn
from properties.checks import assert_matches, result_tensor
from properties.compare import mismatch
from properties.gradients import check_gradients
from properties.registry import Property
from properties.results import CallResult
from properties.strategies_bn import (EXAMPLES, GRADIENT_EXAMPLES, IDENTITY_EXAMPLES,
                                      OFFSET_EXAMPLES, PERMUTED_EXAMPLES, RESCALED_EXAMPLES,
                                      TINY_VARIANCE_EXAMPLES, BatchNormCase, batch_norm_cases,
                                      gradient_cases, permuted_cases, rescaled_cases)
from properties.tolerance import Expected, compared_dtype, unit_roundoff

NAME = "batch_norm"
FUNCTIONAL = "functional"
ORACLE = "the float64 batch norm (torch's F.batch_norm)"
#: The textbook's own convention, assumed when the suite could not detect the target's.
DEFAULT_CONVENTION = {"d2l-1st": ("old-weighted", "biased"),
                      "d2l-2nd": ("new-weighted", "biased"),
                      FUNCTIONAL: ("new-weighted", "unbiased")}
FORMULAS = {"new-weighted": "(1 - momentum)·old + momentum·batch",
            "old-weighted": "momentum·old + (1 - momentum)·batch"}


# =========================================================================== calling

def _is_functional(target) -> bool:
    return target.dialect(NAME) == FUNCTIONAL


def _textbook_view(v: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """A per-channel vector as the textbook shapes it: (1, C) or (1, C, 1, 1)."""
    return v.reshape((1, -1) + (1,) * (X.dim() - 2))


def adapt(target, case: BatchNormCase) -> BatchNormCase:
    """The case as the target's dialect takes it. Strategies draw the functional dialect's
    range (2-D to 4-D input, any layout, weight/bias optional); the textbook takes (N, C) or
    (N, C, H, W), contiguous, with gamma and beta: a 3-D input becomes (N, C, L, 1), a missing
    gamma ones and a missing beta zeros."""
    if _is_functional(target):
        return case
    X = case.X.contiguous()
    X = X.unsqueeze(-1) if X.dim() == 3 else X
    gamma = case.gamma if case.gamma is not None else torch.ones(case.channels, dtype=X.dtype)
    beta = case.beta if case.beta is not None else torch.zeros(case.channels, dtype=X.dtype)
    return case.replace(X=X, gamma=gamma, beta=beta)


def _textbook_args(case: BatchNormCase) -> tuple:
    """(X, gamma, beta, moving_mean, moving_var, eps, momentum), textbook-shaped."""
    X = case.X
    return (X, *(_textbook_view(v, X) for v in (case.gamma, case.beta, case.running_mean,
                                                 case.running_var)), case.eps, case.momentum)


def call_batch_norm(target, case: BatchNormCase, training: bool, *,
                    grad_enabled: bool | None = None) -> CallResult:
    """One call in training or evaluation mode, in the target's dialect (`case` adapted to
    it). The textbook's grad mode follows `training` unless `grad_enabled` says otherwise
    (d2l 2nd ed. decides the mode by it; the 1st edition by its is_training argument)."""
    dialect = target.dialect(NAME)
    if dialect == FUNCTIONAL:
        return target.call(NAME, case.X, case.running_mean, case.running_var, case.gamma,
                           case.beta, training, case.momentum, case.eps)
    args = _textbook_args(case)
    grad = training if grad_enabled is None else grad_enabled
    if dialect == "d2l-1st":
        return target.call_in_grad_mode(grad, NAME, training, *args)
    return target.call_in_grad_mode(grad, NAME, *args)


def _output_index(target) -> int | None:
    return None if _is_functional(target) else 0


def assert_output(target, result: CallResult, case: BatchNormCase, expected: Expected,
                  oracle: str = ORACLE) -> None:
    """Y (the result, or item 0 of the textbook's tuple) matches `expected`."""
    assert_matches(result, expected, input_dtype=case.X.dtype, oracle=oracle,
                   index=_output_index(target), what="Y", same_dtype=_is_functional(target))


def output_of(target, result: CallResult, case: BatchNormCase) -> torch.Tensor:
    """Y as a float64 tensor, held to the dtype rules and to X's shape."""
    return _raw_output(target, result, case).to(torch.float64)


def _raw_output(target, result: CallResult, case: BatchNormCase) -> torch.Tensor:
    value = result_tensor(result, case.X.dtype, index=_output_index(target), what="Y",
                          same_dtype=_is_functional(target))
    if tuple(value.shape) != tuple(case.X.shape):
        raise result.failure(f"Y has shape {tuple(value.shape)}, expected X's shape "
                             f"{tuple(case.X.shape)}")
    return value


def running_stat_parts(target, result: CallResult) -> tuple:
    """Where the new running mean and variance are: the textbook's returned items 1 and 2,
    or the functional dialect's running_mean and running_var as the call left them (parts of
    the call: properties.results)."""
    if _is_functional(target):
        return ("running_mean", "running_var")
    for index, what in ((1, "new_moving_mean"), (2, "new_moving_var")):
        result.tensor(index, what)
    return (1, 2)


def _stat_names(target) -> tuple[str, str]:
    return (("running_mean", "running_var") if _is_functional(target)
            else ("new_moving_mean", "new_moving_var"))


def stat_value(result: CallResult, part, case: BatchNormCase) -> torch.Tensor:
    return result_tensor(result, case.X.dtype, index=part).to(torch.float64)


# =========================================================================== conventions

def convention(target) -> tuple[str, str, str]:
    """(momentum form, running-variance kind, where it comes from) the target is held to."""
    dialect = target.dialect(NAME)
    default_form, default_kind = DEFAULT_CONVENTION[dialect]
    if dialect == FUNCTIONAL:
        return default_form, default_kind, "torch's convention"
    found = target.conventions.get(NAME, {})
    form, kind = found.get("momentum"), found.get("running_var")
    if form and kind:
        return form, kind, "the convention detected for this target"
    note = ("the suite could not detect this target's convention, so the textbook's is "
            "assumed")
    return form or default_form, kind or default_kind, note


def _stats_shapes(target, case, old_mean, old_var):
    if _is_functional(target):
        return old_mean, old_var
    return _textbook_view(old_mean, case.X), _textbook_view(old_var, case.X)


def assert_running_stats(target, result: CallResult, case: BatchNormCase,
                         old_mean: torch.Tensor, old_var: torch.Tensor) -> None:
    """The new running mean and variance follow the convention, for the mean and the
    variance alike (properties.diagnosis names a known mistake: not updated, updated with
    mixed momentum forms, not in place, over the wrong axes, ...)."""
    form, kind, source = convention(target)
    old_mean, old_var = _stats_shapes(target, case, old_mean, old_var)
    if _is_functional(target):
        _reject_returned_statistics(target, result, case, old_mean, old_var, form, kind)
    expected_mean, expected_var = oracles_bn.updated_running_stats(
        case.X, old_mean, old_var, case.momentum, form, kind)
    for part, expected, what, batch in zip(
            running_stat_parts(target, result), (expected_mean, expected_var),
            _stat_names(target), ("mean", f"{kind} variance")):
        assert_matches(result, expected, input_dtype=case.X.dtype, index=part, what=what,
                       oracle=f"{FORMULAS[form]} with the batch {batch}, momentum "
                              f"{case.momentum} ({source})")


def _reject_returned_statistics(target, result, case, old_mean, old_var, form, kind):
    """Functional dialect: a tuple (Y, new_mean, new_var) with the running statistics left
    as they were is the textbook's habit, not torch's in-place update."""
    returned = result.returned
    if returned["kind"] not in ("tuple", "list") or len(returned["items"]) < 3:
        return
    expected_mean, _ = oracles_bn.updated_running_stats(case.X, old_mean, old_var,
                                                        case.momentum, form, kind)
    new_mean = returned["items"][1]
    left = result.after().get("running_mean")
    if new_mean["kind"] in ("tensor", "numpy") and isinstance(left, torch.Tensor) and \
            mismatch(new_mean["value"], expected_mean, input_dtype=case.X.dtype) is None and \
            mismatch(left, Expected.exact(old_mean), input_dtype=case.X.dtype) is None:
        raise result.failure(
            "returned the new running statistics instead of updating running_mean and "
            "running_var in place (torch's F.batch_norm returns only Y)")


# =========================================================================== training

def check_training_agrees(target, case: BatchNormCase) -> None:
    """Y = gamma (X - mu) / sqrt(sigma2 + eps) + beta, and the running statistics per the
    convention."""
    case = adapt(target, case)
    result = call_batch_norm(target, case, training=True)
    assert_output(target, result, case, oracles_bn.training_output(case.X, case.gamma,
                                                                    case.beta, case.eps))
    assert_running_stats(target, result, case, case.running_mean, case.running_var)


def check_unit_mean_and_variance(target, case: BatchNormCase) -> None:
    """With gamma 1 and beta 0 every channel of Y has mean 0 and (biased) variance
    sigma2 / (sigma2 + eps), which is 1 up to eps / sigma2."""
    case = adapt(target, case)
    result = call_batch_norm(target, case, training=True)
    raw = _raw_output(target, result, case)
    Y = raw.to(torch.float64)
    expected = oracles_bn.training_output(case.X, None, None, case.eps)
    u = unit_roundoff(compared_dtype(case.X.dtype, raw.dtype))
    error = torch.as_tensor(expected.bound(u)) + 2 * u * expected.value.abs()
    stats = oracles_bn.batch_statistics(case.X)
    dims = oracles_bn.reduce_dims(case.X)
    mean, variance = Y.mean(dim=dims), Y.var(dim=dims, unbiased=False)
    mean_allowed, var_allowed = _moment_errors(Y, error, dims)
    target_variance = stats.biased / (stats.biased + case.eps)
    for c in range(case.channels):
        if abs(float(mean[c])) > float(mean_allowed[c]):
            raise result.failure(f"channel {c} of Y has mean {float(mean[c]):.9g}, expected 0 "
                                 f"(allowed error {float(mean_allowed[c]):.3g})")
        if abs(float(variance[c] - target_variance[c])) > float(var_allowed[c]):
            raise result.failure(
                f"channel {c} of Y has variance {float(variance[c]):.9g}, expected "
                f"σ²/(σ²+eps) = {float(target_variance[c]):.9g} with σ² = "
                f"{float(stats.biased[c]):.6g} the biased batch variance (allowed error "
                f"{float(var_allowed[c]):.3g})")


def _moment_errors(Y, error, dims):
    """Bounds on the per-channel mean and variance of Y computed from a Y whose elements
    are off by at most `error`: mean(e) and 2 mean(|y - mean y| e') + mean(e'^2), with
    e' = e + mean(e) the error of a centred element; plus float64 rounding."""
    n = Y.numel() // Y.shape[1]
    u64 = unit_roundoff(torch.float64)
    mean_error = error.mean(dim=dims)
    centred = (Y - Y.mean(dim=dims, keepdim=True)).abs()
    e = error + error.mean(dim=dims, keepdim=True)
    var_error = 2 * (centred * e).mean(dim=dims) + (e * e).mean(dim=dims)
    return (mean_error + (n + 2) * u64 * Y.abs().mean(dim=dims),
            var_error + 2 * (n + 4) * u64 * (Y * Y).mean(dim=dims))


def check_invariant_to_channel_rescaling(target, rescaled) -> None:
    """BN(a x + b; eps) = BN(x; eps / a^2) for every channel with a > 0: the statistics
    follow the input. Scales are powers of two and inputs integers, so a x + b and eps / a^2
    are exact."""
    case, scale, shift = adapt(target, rescaled.case), rescaled.scale, rescaled.shift
    X = case.X.to(torch.float64)
    moved = oracles_bn.channel_view(scale, X) * X + oracles_bn.channel_view(shift, X)
    moved_case = case.replace(X=moved.to(case.X.dtype))
    result = call_batch_norm(target, moved_case, training=True)
    moved_bound = oracles_bn.training_output(moved_case.X, case.gamma, case.beta, case.eps)
    for a in sorted(set(scale.tolist())):
        channels = [c for c in range(case.channels) if float(scale[c]) == a]
        base_case = case.replace(eps=case.eps / (a * a))
        base = output_of(target, call_batch_norm(target, base_case, training=True), base_case)
        base_bound = oracles_bn.training_output(case.X, case.gamma, case.beta, base_case.eps)
        # Only these channels are compared (Expected.defined): the others have other scales.
        defined = torch.zeros(case.X.shape, dtype=torch.bool)
        defined[:, channels] = True
        expected = Expected(
            base, lambda u: (torch.as_tensor(moved_bound.bound(u))
                             + torch.as_tensor(base_bound.bound(u))
                             + 2 * u * base_bound.value.abs()), defined)
        output_of(target, result, moved_case)
        assert_output(target, result, moved_case, expected,
                      oracle=f"Y of the unscaled input with eps/{a:g}² in channels "
                             f"{channels} (input scaled by {a:g} and shifted by "
                             f"{[float(shift[c]) for c in channels]})")


def check_permutation_equivariant(target, permuted) -> None:
    """Rearranging a channel's n values among the batch and spatial positions rearranges
    its output the same way: each channel is normalised with statistics over all of its own
    positions, and only those."""
    case = adapt(target, permuted.case)
    base = output_of(target, call_batch_norm(target, case, training=True), case)
    moved_case = case.replace(X=_permute_channels(case.X, permuted.permutations))
    result = call_batch_norm(target, moved_case, training=True)
    oracle = oracles_bn.training_output(moved_case.X, case.gamma, case.beta, case.eps)
    expected = Expected(_permute_channels(base, permuted.permutations),
                        lambda u: 2 * torch.as_tensor(oracle.bound(u))
                        + 2 * u * oracle.value.abs())
    assert_output(target, result, moved_case, expected,
                  oracle="Y of the unpermuted input, permuted the same way")


def _permute_channels(X: torch.Tensor, permutations) -> torch.Tensor:
    """Channel c's values (in (N, spatial...) order) rearranged by permutations[c]."""
    moved = torch.movedim(X, 1, 0).reshape(X.shape[1], -1).clone()
    for c, perm in enumerate(permutations):
        moved[c] = moved[c][list(perm)]
    shape = (X.shape[1], X.shape[0], *X.shape[2:])
    return torch.movedim(moved.reshape(shape), 0, 1).contiguous()


def check_eps_inside_sqrt(target, case: BatchNormCase) -> None:
    """Channels whose variance is below eps: Y = (X - mu) / sqrt(sigma2 + eps), neither blown
    up by a missing eps nor changed by an eps added outside the square root."""
    case = adapt(target, case)
    result = call_batch_norm(target, case, training=True)
    assert_output(target, result, case, oracles_bn.training_output(case.X, case.gamma,
                                                                    case.beta, case.eps))


def check_gamma_scales_beta_shifts(target, case: BatchNormCase) -> None:
    """Y(gamma, beta) = gamma * Y(1, 0) + beta: gamma is the scale, beta the shift."""
    case = adapt(target, case)
    plain_case = case.replace(gamma=torch.ones_like(case.gamma),
                              beta=torch.zeros_like(case.beta))
    plain = output_of(target, call_batch_norm(target, plain_case, training=True), plain_case)
    result = call_batch_norm(target, case, training=True)
    gamma = oracles_bn.channel_view(case.gamma, case.X)
    beta = oracles_bn.channel_view(case.beta, case.X)
    oracle = oracles_bn.training_output(case.X, case.gamma, case.beta, case.eps)
    assert_output(target, result, case, oracle.with_value(gamma * plain + beta, factor=2),
                  oracle="gamma·Y(gamma=1, beta=0) + beta")


# =========================================================================== evaluation

def check_evaluation_is_affine(target, case: BatchNormCase) -> None:
    """Y = gamma (X - running_mean) / sqrt(running_var + eps) + beta, and the running
    statistics stay as they were."""
    case = adapt(target, case)
    result = call_batch_norm(target, case, training=False)
    expected = oracles_bn.evaluation_output(case.X, case.running_mean, case.running_var,
                                            case.gamma, case.beta, case.eps)
    assert_output(target, result, case, expected,
                  oracle="gamma (X - running_mean) / sqrt(running_var + eps) + beta")
    old_mean, old_var = _stats_shapes(target, case, case.running_mean, case.running_var)
    for part, old, what in zip(running_stat_parts(target, result), (old_mean, old_var),
                               _stat_names(target)):
        assert_matches(result, Expected.exact(old), input_dtype=case.X.dtype, index=part,
                       what=what,
                       oracle="the running statistic passed in (evaluation leaves it alone)")


def check_mode_switch(target, case: BatchNormCase) -> None:
    """The textbook's mode switch alone decides training or evaluation, judged against the
    target's own results (so a batch_norm that computes wrongly in both modes fails the
    properties about its values, not this one):
    d2l 1st ed.: is_training decides whatever the grad mode — is_training=False with grad
    enabled gives what it gives under torch.no_grad(), and is_training=True under no_grad
    what it gives with grad enabled;
    d2l 2nd ed.: torch.is_grad_enabled() decides — under torch.no_grad() it evaluates, with
    grad enabled it trains, so the two differ wherever the running statistics differ from the
    batch's (as they do in these cases)."""
    case = adapt(target, case)
    first_edition = target.dialect(NAME) == "d2l-1st"
    if first_edition:
        for training, odd_grad in ((False, True), (True, False)):
            usual = output_of(target, call_batch_norm(target, case, training), case)
            switched = call_batch_norm(target, case, training, grad_enabled=odd_grad)
            oracle = (oracles_bn.training_output(case.X, case.gamma, case.beta, case.eps)
                      if training else oracles_bn.evaluation_output(
                          case.X, case.running_mean, case.running_var, case.gamma, case.beta,
                          case.eps))
            assert_output(target, switched, case, oracle.with_value(usual, factor=2),
                          oracle=f"its own result for is_training={training} with grad "
                                 f"{'disabled' if odd_grad else 'enabled'} (the grad mode "
                                 "must not matter)")
        return
    evaluation = call_batch_norm(target, case, training=False)
    training = output_of(target, call_batch_norm(target, case, training=True), case)
    expected = oracles_bn.evaluation_output(case.X, case.running_mean, case.running_var,
                                            case.gamma, case.beta, case.eps)
    batch = oracles_bn.training_output(case.X, case.gamma, case.beta, case.eps)
    differ = (expected.value - batch.value).abs() > torch.as_tensor(expected.bound(2 ** -24)) \
        + torch.as_tensor(batch.bound(2 ** -24)) + 1e-6 * batch.value.abs()
    got = output_of(target, evaluation, case)
    if bool(differ.any()) and torch.equal(got[differ], training[differ]):
        raise evaluation.failure(
            "under torch.no_grad() it gives what it gives with grad enabled: the 2nd "
            "edition's batch_norm must evaluate (use the running statistics) when "
            "torch.is_grad_enabled() is False")


# =========================================================================== running statistics

def check_running_stats_two_steps(target, case: BatchNormCase) -> None:
    """Two training steps, the second fed the running statistics the first produced (the
    functional dialect's tensors as it updated them): each follows the convention."""
    case = adapt(target, case)
    first = call_batch_norm(target, case, training=True)
    assert_running_stats(target, first, case, case.running_mean, case.running_var)
    mean, var = (stat_value(first, part, case).to(case.X.dtype).reshape(-1)
                 for part in running_stat_parts(target, first))
    second_case = case.replace(X=torch.flip(case.X, dims=(0,)) * 2 - 1, running_mean=mean,
                               running_var=var)
    second = call_batch_norm(target, second_case, training=True)
    assert_running_stats(target, second, second_case, mean, var)


# =========================================================================== gradients

def check_gradients_match_torch(target, gcase) -> None:
    """dL/dX, dL/dgamma, dL/dbeta of L = sum(upstream * Y) in training equal torch's float64
    autograd of F.batch_norm (error model: oracles_bn.training_gradients; properties.gradients
    skips, with a note, a forward-only target)."""
    case = adapt(target, gcase.case)
    upstream = gcase.upstream.reshape(case.X.shape)
    dialect = target.dialect(NAME)
    if dialect == FUNCTIONAL:
        gamma, beta = case.gamma, case.beta
        args = (case.X, case.running_mean, case.running_var, gamma, beta, True,
                case.momentum, case.eps)
        names = {"X": "input", "gamma": "weight", "beta": "bias"}
    else:
        textbook = _textbook_args(case)
        gamma, beta = textbook[1], textbook[2]
        args = ((True,) if dialect == "d2l-1st" else ()) + textbook
        names = {"X": "X", "gamma": "gamma", "beta": "beta"}
    expected = oracles_bn.training_gradients(case.X, gamma, beta, upstream, case.eps)
    check_gradients(target, NAME, args, {}, {names[k]: e for k, e in expected.items()},
                    upstream, input_dtype=case.X.dtype,
                    oracle="torch's float64 autograd of F.batch_norm",
                    output_item=None if dialect == FUNCTIONAL else 0)


# =========================================================================== declarations

CASES = batch_norm_cases()

PROPERTIES = [
    Property(NAME, "in training agrees with the float64 oracle (Y and the running statistics)",
             CASES, check_training_agrees, examples=EXAMPLES + OFFSET_EXAMPLES),
    Property(NAME, "in training gives each channel mean 0 and variance σ²/(σ²+eps) ≈ 1 "
                   "(gamma 1, beta 0)",
             batch_norm_cases(channel_kinds=("spread", "offset"), affine="identity",
                              eps_values=(1e-5,)),
             check_unit_mean_and_variance, examples=IDENTITY_EXAMPLES, budget=0.25),
    Property(NAME, "is invariant to per-channel positive scaling and shifting of the input",
             rescaled_cases(), check_invariant_to_channel_rescaling,
             examples=RESCALED_EXAMPLES, budget=0.25),
    Property(NAME, "normalises each channel over all its batch and spatial positions "
                   "(permuting them permutes the output)",
             permuted_cases(), check_permutation_equivariant, examples=PERMUTED_EXAMPLES,
             budget=0.25),
    Property(NAME, "honours eps inside the square root (channels with variance below eps)",
             batch_norm_cases(channel_kinds=("tiny",)), check_eps_inside_sqrt,
             examples=TINY_VARIANCE_EXAMPLES, budget=0.5),
    Property(NAME, "scales by gamma and shifts by beta", batch_norm_cases(affine="random"),
             check_gamma_scales_beta_shifts, examples=EXAMPLES[:1], budget=0.25),
    Property(NAME, "in evaluation is the affine map of the running statistics and leaves them "
                   "unchanged", CASES, check_evaluation_is_affine, examples=EXAMPLES,
             budget=0.5),
    Property(NAME, "updates the running statistics per its convention, mean and variance "
                   "alike, step after step", CASES, check_running_stats_two_steps,
             examples=EXAMPLES + OFFSET_EXAMPLES, budget=0.5),
    Property(NAME, "has gradients that match torch's float64 autograd", gradient_cases(),
             check_gradients_match_torch, examples=GRADIENT_EXAMPLES, budget=0.5),
    Property(NAME, "decides training by its mode switch alone (1st ed.: is_training, whatever "
                   "the grad mode; 2nd ed.: grad enabled, not torch.no_grad())", CASES,
             check_mode_switch, dialects=("d2l-1st", "d2l-2nd"),
             examples=EXAMPLES[:1] + OFFSET_EXAMPLES, budget=0.25),
]
