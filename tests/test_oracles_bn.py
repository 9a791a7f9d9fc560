"""Tests of the batch-norm oracles (properties.oracles_bn) and their error models: the values
agree with independent formulas and with torch's modules; the bounds accept every correct way
of computing batch norm in float32 (torch, the textbook's two-pass code, Welford's update,
torch's var_mean, torch's folded affine form) and reject the known mistakes, the one-pass
variance E[x²] − E[x]² on data whose mean is large relative to its spread among them."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from properties import oracles_bn
from properties.strategies_bn import batch_norm_cases
from properties.tolerance import unit_roundoff

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F64 = torch.float64
U32 = unit_roundoff(torch.float32)
U64 = unit_roundoff(torch.float64)


def _view(v, x):
    return oracles_bn.channel_view(v, x)


def _within(got: torch.Tensor, expected, u: float = U32) -> bool:
    """The comparison of properties.checks.assert_matches: |got - round(expected)| <=
    bound(u) + u |expected|."""
    reference = expected.value.to(torch.float32).to(F64)
    allowed = torch.as_tensor(expected.bound(u)) + u * expected.value.abs()
    return bool(((got.detach().to(F64) - reference).abs() <= allowed).all())


# --------------------------------------------------------------------------- values

@FAST
@given(batch_norm_cases(affine="random", dtype=torch.float64))
def test_training_output_is_the_formula(case):
    x = case.X.to(F64)
    dims = oracles_bn.reduce_dims(x)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = _view(case.gamma, x) * (x - mean) / torch.sqrt(var + case.eps) + _view(case.beta, x)
    expected = oracles_bn.training_output(x, case.gamma, case.beta, case.eps)
    # two float64 computations (offset channels make them differ by more than 1e-12)
    assert bool(((expected.value - y).abs() <= 2 * torch.as_tensor(expected.bound(U64))
                 + 2 * U64 * y.abs()).all())


@FAST
@given(batch_norm_cases(dtype=torch.float64))
def test_evaluation_output_is_the_formula(case):
    x = case.X.to(F64)
    y = (x - _view(case.running_mean, x)) / torch.sqrt(_view(case.running_var, x) + case.eps)
    expected = oracles_bn.evaluation_output(x, case.running_mean, case.running_var,
                                            eps=case.eps)
    assert torch.allclose(expected.value, y, rtol=1e-12, atol=1e-12)


@FAST
@given(batch_norm_cases(dtype=torch.float64))
def test_torch_convention_update_is_the_formula(case):
    n = oracles_bn.values_per_channel(case.X)
    x = case.X.to(F64)
    dims = oracles_bn.reduce_dims(x)
    m = case.momentum
    mean, var = oracles_bn.updated_running_stats(x, case.running_mean, case.running_var, m,
                                                 "new-weighted", "unbiased")
    assert torch.allclose(mean.value, (1 - m) * case.running_mean + m * x.mean(dim=dims))
    unbiased = x.var(dim=dims, unbiased=True) if n > 1 else None
    assert torch.allclose(var.value, (1 - m) * case.running_var + m * unbiased)


def test_old_weighted_update_is_the_first_edition():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]], dtype=F64)
    old = torch.tensor([0.5, -1.0], dtype=F64)
    mean, var = oracles_bn.updated_running_stats(x, old, old.abs(), 0.9, "old-weighted",
                                                 "biased")
    assert torch.allclose(mean.value, 0.9 * old + 0.1 * torch.tensor([3.0, 6.0], dtype=F64))
    assert torch.allclose(var.value, 0.9 * old.abs() + 0.1 * torch.tensor([8 / 3, 32 / 3],
                                                                          dtype=F64))


@pytest.mark.parametrize("num_dims", [2, 4])
def test_module_after_training_follows_torch_and_the_recurrence(num_dims):
    torch.manual_seed(0)
    shape = (4, 3) if num_dims == 2 else (2, 3, 2, 3)
    batches = [torch.randn(shape) * 3 + 1 for _ in range(3)]
    module = (nn.BatchNorm1d(3) if num_dims == 2 else nn.BatchNorm2d(3)).double()
    for x in batches:
        module(x.double())
    unbiased = oracles_bn.module_after_training(batches, "unbiased")
    assert torch.allclose(unbiased.mean, module.running_mean)
    assert torch.allclose(unbiased.var, module.running_var)
    biased = oracles_bn.module_after_training(batches, "biased")
    var = torch.ones(3, dtype=F64)
    for x in batches:
        var = 0.9 * var + 0.1 * oracles_bn.batch_statistics(x).biased
    assert torch.allclose(biased.var, var)
    from_zeros = oracles_bn.module_after_training(batches, "unbiased", initial_var=0.0)
    assert torch.allclose(from_zeros.var, module.running_var - 0.9 ** 3)


@FAST
@given(batch_norm_cases(affine="random", dtype=torch.float64), st.randoms())
def test_gradients_are_the_closed_form(case, random):
    """dx = (gamma / s)(g - mean(g) - x_hat mean(g x_hat)), dgamma = sum g x_hat,
    dbeta = sum g."""
    x = case.X.to(F64)
    g = torch.tensor([random.uniform(-2, 2) for _ in range(x.numel())],
                     dtype=F64).reshape(x.shape)
    grads = oracles_bn.training_gradients(x, case.gamma, case.beta, g, case.eps)
    dims = oracles_bn.reduce_dims(x)
    stats = oracles_bn.batch_statistics(x)
    s = torch.sqrt(_view(stats.biased, x) + case.eps)
    x_hat = (x - _view(stats.mean, x)) / s
    gm = g.mean(dim=dims, keepdim=True)
    gx = (g * x_hat).mean(dim=dims, keepdim=True)
    dx = _view(case.gamma, x) / s * (g - gm - x_hat * gx)
    assert torch.allclose(grads["X"].value, dx, rtol=1e-9, atol=1e-9)
    assert torch.allclose(grads["gamma"].value, (g * x_hat).sum(dim=dims), rtol=1e-9,
                          atol=1e-9)
    assert torch.allclose(grads["beta"].value, g.sum(dim=dims), rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- error models

def _two_pass(x, g, b, eps):
    dims = oracles_bn.reduce_dims(x)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return g * (x - mean) / torch.sqrt(var + eps) + b


def _one_pass(x, g, b, eps):
    dims = oracles_bn.reduce_dims(x)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x * x).mean(dim=dims, keepdim=True) - mean * mean).clamp_min(0)
    return g * (x - mean) / torch.sqrt(var + eps) + b


def _welford(x, g, b, eps):
    """Welford's update, one value per channel at a time, in x's dtype."""
    values = torch.movedim(x, 1, 0).reshape(x.shape[1], -1)
    mean = torch.zeros(x.shape[1], dtype=x.dtype)
    total = torch.zeros(x.shape[1], dtype=x.dtype)
    for k in range(values.shape[1]):
        delta = values[:, k] - mean
        mean = mean + delta / (k + 1)
        total = total + delta * (values[:, k] - mean)
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
    var = total / values.shape[1]
    return g * (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps) + b


def _var_mean(x, g, b, eps):
    var, mean = torch.var_mean(x, dim=oracles_bn.reduce_dims(x), unbiased=False, keepdim=True)
    return g * (x - mean) / torch.sqrt(var + eps) + b


def _folded(x, g, b, eps):
    dims = oracles_bn.reduce_dims(x)
    mean = x.mean(dim=dims, keepdim=True)
    a = g / torch.sqrt(((x - mean) ** 2).mean(dim=dims, keepdim=True) + eps)
    return x * a + (b - mean * a)


def _torch(x, g, b, eps):
    return F.batch_norm(x, None, None, g.reshape(-1), b.reshape(-1), training=True, eps=eps)


CORRECT = {"torch": _torch, "two-pass": _two_pass, "welford": _welford,
           "var_mean": _var_mean, "folded": _folded}


def _float32_case(case):
    x = case.X.to(torch.float32)
    return x, _view(case.gamma, x).float(), _view(case.beta, x).float()


@FAST
@given(batch_norm_cases(affine="random", dtype=torch.float32, noncontiguous=False))
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_training_bound_accepts_correct_float32_implementations(name, case):
    x, g, b = _float32_case(case)
    expected = oracles_bn.training_output(x, case.gamma, case.beta, case.eps)
    assert _within(CORRECT[name](x, g, b, case.eps), expected)


@FAST
@given(batch_norm_cases(affine="random", dtype=torch.float32, noncontiguous=False),
       st.randoms())
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_gradient_bounds_accept_autograd_of_correct_implementations(name, case, random):
    x, g, b = _float32_case(case)
    upstream = torch.tensor([float(random.randint(-4, 4)) for _ in range(x.numel())],
                            dtype=torch.float32).reshape(x.shape)
    leaves = [t.clone().requires_grad_() for t in (x, g, b)]
    CORRECT[name](*leaves, case.eps).backward(upstream)
    expected = oracles_bn.training_gradients(x, case.gamma, case.beta, upstream, case.eps)
    assert _within(leaves[0].grad, expected["X"])
    assert _within(leaves[1].grad.reshape(-1), expected["gamma"])
    assert _within(leaves[2].grad.reshape(-1), expected["beta"])


def test_training_bound_rejects_unbiased_variance_in_the_normalisation():
    x = torch.tensor([[1.0, -2.0], [4.0, 0.0], [2.0, 7.0], [-3.0, 1.0], [0.0, 5.0],
                      [6.0, 2.0]])
    wrong = oracles_bn.batch_normalised_with_variance(x, "unbiased")
    assert not _within(wrong, oracles_bn.training_output(x))


def test_training_bound_rejects_eps_outside_the_square_root():
    x = torch.tensor([[0.0], [2.0 ** -10], [-(2.0 ** -10)], [2.0 ** -9]])
    wrong = oracles_bn.eps_outside_sqrt(x, eps=1e-5)
    assert not _within(wrong, oracles_bn.training_output(x, eps=1e-5))


def _offset_batch(ratio: float, seed: int = 3) -> torch.Tensor:
    """float32 (6, 3): channel c has mean ratio·(c + 1)·(−1)^c and spread about 1."""
    g = torch.Generator().manual_seed(seed)
    offsets = ratio * torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    return (torch.randn(6, 3, generator=g, dtype=F64) + offsets).float()


@pytest.mark.parametrize("ratio", [1e2, 1e3, 1e4])
def test_training_bound_rejects_the_one_pass_variance_on_offset_data(ratio):
    """E[x²] − E[x]² in float32 cancels when the mean is large relative to the spread; the
    stable algorithms pass the same input (the bound is theirs), and the one-pass variance is
    within the one-pass error model (the diagnosis's)."""
    x = _offset_batch(ratio)
    ones, zeros = torch.ones(1, 3), torch.zeros(1, 3)
    expected = oracles_bn.training_output(x)
    assert all(_within(CORRECT[name](x, ones, zeros, 1e-5), expected) for name in CORRECT)
    assert not _within(_one_pass(x, ones, zeros, 1e-5), expected)
    mean = x.mean(dim=0)
    one_pass_var = ((x * x).mean(dim=0) - mean * mean).to(F64)
    stats = oracles_bn.batch_statistics(x)
    assert bool(((one_pass_var - stats.biased).abs()
                 <= stats.variance_error("biased", U32, one_pass=True)).all())
    assert bool(((one_pass_var - stats.biased).abs()
                 > stats.variance_error("biased", U32)).any())


def test_training_bound_rejects_half_precision():
    torch.manual_seed(1)
    x = torch.randn(6, 3) * 4 + 1
    half = _torch(x.half(), torch.ones(1, 3).half(), torch.zeros(1, 3).half(), 1e-5).float()
    assert not _within(half, oracles_bn.training_output(x))


def test_running_stat_bound_accepts_float32_updates_and_rejects_the_other_form():
    torch.manual_seed(2)
    x = torch.randn(5, 3) * 3 + 2
    old_mean, old_var = torch.randn(3), torch.rand(3) + 0.5
    mean32, var32 = old_mean.clone(), old_var.clone()
    F.batch_norm(x, mean32, var32, training=True, momentum=0.3)
    mean, var = oracles_bn.updated_running_stats(x, old_mean, old_var, 0.3, "new-weighted",
                                                 "unbiased")
    assert _within(mean32, mean) and _within(var32, var)
    other_mean, other_var = oracles_bn.updated_running_stats(x, old_mean, old_var, 0.3,
                                                             "old-weighted", "unbiased")
    assert not _within(mean32, other_mean) and not _within(var32, other_var)


def test_running_stat_bound_accepts_torchs_lerp_form():
    """torch computes old + m (batch - old): with old 2.75, batch mean 2^-11 and m 0.9 the
    result (0.2754...) comes out 3 ulp from the exact one, from rounding at |batch - old|."""
    x = torch.tensor([[0.0], [2.0 ** -10]])
    old_mean, old_var = torch.tensor([2.75]), torch.tensor([0.0])
    mean32, var32 = old_mean.clone(), old_var.clone()
    F.batch_norm(x, mean32, var32, training=True, momentum=0.9)
    mean, var = oracles_bn.updated_running_stats(x, old_mean, old_var, 0.9, "new-weighted",
                                                 "unbiased")
    assert _within(mean32, mean) and _within(var32, var)
