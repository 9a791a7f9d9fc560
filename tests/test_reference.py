"""Tests of the naive reference package itself (the suite's oracle must be tested too).

Every reference function is checked against torch (``torch.nn.functional``,
``nn.BatchNorm1d/2d``) in float64 with a tight tolerance, the textbook
cross-correlations against ``scipy.signal``, the stride-1 poolings against
``scipy.ndimage``, the shape formulas against torch's real output shapes, and
the functional operators raise exactly where torch raises.
"""

import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from torch import nn

import reference
from reference import functional, shapes, textbook

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=15, deadline=None,
               suppress_health_check=[HealthCheck.too_slow])

RTOL = 1e-10
ATOL = 1e-10

# torch warns that 'same' with an even kernel may copy the input; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


# --------------------------------------------------------------------------
# Helpers and strategies
# --------------------------------------------------------------------------

def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    """Values equal within a tight float64 tolerance (numpy accepted on either side)."""
    actual = torch.as_tensor(np.asarray(actual) if not torch.is_tensor(actual) else actual)
    expected = torch.as_tensor(np.asarray(expected) if not torch.is_tensor(expected) else expected)
    torch.testing.assert_close(actual.to(torch.float64), expected.to(torch.float64),
                               rtol=rtol, atol=atol)


def make_tensor(shape, seed, integer_valued=False, dtype=torch.float64):
    """A reproducible tensor: standard normal, or integers in [-5, 5] stored as floats."""
    generator = torch.Generator().manual_seed(seed)
    if integer_valued:
        values = torch.randint(-5, 6, shape, generator=generator)
    else:
        values = torch.randn(shape, generator=generator, dtype=torch.float64)
    return values.to(dtype)


@st.composite
def tensors(draw, shape, label="tensor"):
    """A float64 tensor of ``shape`` drawn from a seed (normal or integer-valued)."""
    seed = draw(st.integers(0, 2**31 - 1), label=f"{label} seed")
    integer_valued = draw(st.booleans(), label=f"{label} integer-valued")
    return make_tensor(tuple(shape), seed, integer_valued)


LAYOUTS = ("contiguous", "channels_last", "transposed", "strided")


def in_layout(t, layout):
    """Same values as 4-D ``t``, stored in another memory layout."""
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "transposed":
        return t.transpose(2, 3).contiguous().transpose(2, 3)
    if layout == "strided":
        wide = torch.full(t.shape[:-1] + (2 * t.shape[-1],), float("nan"), dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    return t.contiguous()


def outcome(call):
    """('ok', result) or ('raised', exception) for a zero-argument call."""
    try:
        return "ok", call()
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        return "raised", error


def same_shape_and_values(mine, theirs):
    """Reference and torch agree on raising; when neither raises, on the values."""
    (my_status, my_value), (torch_status, torch_value) = mine, theirs
    note(f"reference: {my_status} {my_value if my_status == 'raised' else tuple(my_value.shape)}")
    note(f"torch:     {torch_status} "
         f"{torch_value if torch_status == 'raised' else tuple(torch_value.shape)}")
    assert my_status == torch_status
    if my_status == "ok":
        assert my_value.shape == torch_value.shape
        assert my_value.dtype == torch_value.dtype
        assert_close(my_value, torch_value)


def batched(X):
    """(h, w) -> (1, 1, h, w)."""
    return X.reshape((1, 1) + tuple(X.shape))


# --------------------------------------------------------------------------
# The textbook's own examples
# --------------------------------------------------------------------------

BOOK_X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
BOOK_K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])


def test_book_corr2d_example():
    assert torch.equal(reference.corr2d(BOOK_X, BOOK_K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


def test_book_corr2d_example_with_integer_tensors_keeps_integer_dtype():
    Y = reference.corr2d(BOOK_X.long(), BOOK_K.long())
    assert Y.dtype == torch.int64
    assert torch.equal(Y, torch.tensor([[19, 25], [37, 43]]))


@pytest.mark.parametrize("x_shape, k_shape, out_shape", [
    ((2, 3), (3, 2), (0, 2)), ((3, 2), (2, 3), (2, 0)), ((1, 1), (2, 2), (0, 0))])
def test_corr2d_kernel_larger_than_input_gives_an_empty_result(x_shape, k_shape, out_shape):
    """Outside the contract (textbook functions only get valid arguments), the reference still
    answers as the formula does: max(h - kh + 1, 0) rows, in the dtype X * K would have."""
    X = torch.ones(x_shape, dtype=torch.float64)
    K = torch.ones(k_shape, dtype=torch.float32)
    Y = textbook.corr2d(X, K)
    assert Y.shape == out_shape and Y.dtype == torch.float64 and Y.device == X.device
    assert textbook.corr2d(X.int(), K.int()).dtype == torch.int32


def test_book_multi_in_example():
    X = torch.stack((BOOK_X, BOOK_X + 1))
    K = torch.stack((BOOK_K, BOOK_K + 1))
    assert torch.equal(reference.corr2d_multi_in(X, K),
                       torch.tensor([[56.0, 72.0], [104.0, 120.0]]))


def test_book_multi_in_out_example():
    X = torch.stack((BOOK_X, BOOK_X + 1))
    K = torch.stack((BOOK_K, BOOK_K + 1))
    K = torch.stack((K, K + 1, K + 2), 0)
    expected = torch.tensor([[[56.0, 72.0], [104.0, 120.0]],
                             [[76.0, 100.0], [148.0, 172.0]],
                             [[96.0, 128.0], [192.0, 224.0]]])
    assert torch.equal(reference.corr2d_multi_in_out(X, K), expected)


def test_book_pool2d_examples():
    assert torch.equal(reference.pool2d(BOOK_X, (2, 2)), torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
    assert torch.equal(reference.pool2d(BOOK_X, (2, 2), 'avg'),
                       torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


def test_book_edge_detection_example():
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    Y = reference.corr2d(X, torch.tensor([[1.0, -1.0]]))
    expected = torch.zeros((6, 7))
    expected[:, 1], expected[:, 5] = 1.0, -1.0
    assert torch.equal(Y, expected)
    assert torch.equal(reference.corr2d(X.t(), torch.tensor([[1.0, -1.0]])), torch.zeros((8, 5)))


@pytest.mark.parametrize("mode", ["mean", "min", "MAX", "average", ""])
def test_pool2d_refuses_unknown_mode_naming_the_accepted_ones(mode):
    with pytest.raises(ValueError, match="'max'.*'avg'"):
        reference.pool2d(BOOK_X, (2, 2), mode)


def test_reference_exports_the_contract_names():
    contract = {"corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
                "pool2d", "batch_norm", "Conv2D", "BatchNorm", "conv2d", "max_pool2d",
                "avg_pool2d", "LeNet"}
    assert set(reference.__all__) == contract
    assert reference.batch_norm is functional.batch_norm
    assert reference.pool2d is textbook.pool2d
    with pytest.raises(AttributeError):
        reference.not_a_contract_name  # noqa: B018


# --------------------------------------------------------------------------
# Textbook cross-correlation against torch and scipy
# --------------------------------------------------------------------------

@st.composite
def image_and_kernel(draw, channels_in=None, channels_out=None, max_size=7):
    """X (ci, h, w) and K (co, ci, kh, kw) with kh ≤ h, kw ≤ w."""
    h = draw(st.integers(1, max_size), label="h")
    w = draw(st.integers(1, max_size), label="w")
    kh = draw(st.integers(1, h), label="kh")
    kw = draw(st.integers(1, w), label="kw")
    ci = channels_in or draw(st.integers(1, 3), label="ci")
    co = channels_out or draw(st.integers(1, 3), label="co")
    X = draw(tensors((ci, h, w), "X"))
    K = draw(tensors((co, ci, kh, kw), "K"))
    return X, K


@FAST
@given(image_and_kernel(channels_in=1, channels_out=1))
def test_corr2d_matches_torch_and_scipy(X_K):
    X, K = X_K[0][0], X_K[1][0, 0]
    Y = reference.corr2d(X, K)
    assert Y.dtype == X.dtype
    assert_close(Y, F.conv2d(batched(X), batched(K))[0, 0])
    assert_close(Y, scipy.signal.correlate2d(X.numpy(), K.numpy(), mode="valid"))
    flipped = K.numpy()[::-1, ::-1]
    assert_close(Y, scipy.signal.convolve2d(X.numpy(), flipped, mode="valid"))


@FAST
@given(image_and_kernel(channels_out=1))
def test_corr2d_multi_in_matches_torch_and_scipy(X_K):
    X, K = X_K[0], X_K[1][0]
    Y = reference.corr2d_multi_in(X, K)
    assert_close(Y, F.conv2d(X[None], K[None])[0, 0])
    by_scipy = sum(scipy.signal.correlate2d(x.numpy(), k.numpy(), mode="valid")
                   for x, k in zip(X, K))
    assert_close(Y, by_scipy)


@FAST
@given(image_and_kernel())
def test_corr2d_multi_in_out_matches_torch(X_K):
    X, K = X_K
    assert_close(reference.corr2d_multi_in_out(X, K), F.conv2d(X[None], K)[0])


@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5),
       st.integers(0, 2**31 - 1), st.booleans())
def test_corr2d_multi_in_out_1x1_matches_torch_and_the_loop_version(ci, co, h, w, seed,
                                                                       transposed):
    X = make_tensor((ci, h, w), seed)
    K = make_tensor((co, ci, 1, 1), seed + 1)
    if transposed:  # non-contiguous input: reshape must cope where view would not
        X = X.transpose(1, 2).contiguous().transpose(1, 2)
    Y = reference.corr2d_multi_in_out_1x1(X, K)
    assert_close(Y, F.conv2d(X[None], K)[0])
    assert_close(Y, reference.corr2d_multi_in_out(X, K))


@FEW
@given(image_and_kernel(channels_in=1, channels_out=1))
def test_textbook_functions_do_not_modify_inputs(X_K):
    X, K = X_K
    X_before, K_before = X.clone(), K.clone()
    reference.corr2d(X[0], K[0, 0])
    reference.corr2d_multi_in(X, K[0])
    reference.corr2d_multi_in_out(X, K)
    reference.pool2d(X[0], tuple(K.shape[2:]), 'avg')
    assert torch.equal(X, X_before) and torch.equal(K, K_before)


# --------------------------------------------------------------------------
# 'same' padding: torch vs scipy (two facts) and the reference
# --------------------------------------------------------------------------

@st.composite
def same_padding_case(draw):
    h = draw(st.integers(1, 7), label="h")
    w = draw(st.integers(1, 7), label="w")
    kh = draw(st.integers(1, 4), label="kh")
    kw = draw(st.integers(1, 4), label="kw")
    return draw(tensors((h, w), "X")), draw(tensors((kh, kw), "K"))


@FAST
@given(same_padding_case())
@example((make_tensor((5, 6), 0), make_tensor((2, 4), 1)))
def test_same_padding_extra_goes_at_the_end_like_correlate2d(X_K):
    """torch 'same' == scipy correlate2d 'same' == extra padding at the end (bottom/right)."""
    X, K = X_K
    torch_same = F.conv2d(batched(X), batched(K), padding="same")[0, 0]
    assert_close(torch_same, scipy.signal.correlate2d(X.numpy(), K.numpy(), mode="same"))
    assert_close(reference.conv2d(batched(X), batched(K), padding="same")[0, 0], torch_same)
    top, bottom = shapes.same_padding(K.shape[0])
    left, right = shapes.same_padding(K.shape[1])
    assert bottom - top in (0, 1) and right - left in (0, 1)
    explicit = F.conv2d(F.pad(batched(X), (left, right, top, bottom)), batched(K))[0, 0]
    assert_close(torch_same, explicit)


@FAST
@given(same_padding_case())
@example((make_tensor((5, 6), 0), make_tensor((2, 4), 1)))
def test_convolve2d_same_puts_the_extra_padding_at_the_start(X_K):
    """scipy convolve2d 'same' (flipped kernel) == torch with the extra padding at the START."""
    X, K = X_K
    top, bottom = shapes.same_padding(K.shape[0])
    left, right = shapes.same_padding(K.shape[1])
    at_start = F.conv2d(F.pad(batched(X), (right, left, bottom, top)), batched(K))[0, 0]
    flipped = K.numpy()[::-1, ::-1]
    by_convolve = scipy.signal.convolve2d(X.numpy(), flipped, mode="same")
    assert_close(by_convolve, at_start)
    assert_close(reference.conv2d(batched(X), batched(K),
                                  padding=(bottom, top, right, left))[0, 0], at_start)


def test_convolve2d_same_differs_from_torch_same_for_an_even_kernel():
    X, K = make_tensor((5, 6), 0), make_tensor((2, 4), 1)
    torch_same = F.conv2d(batched(X), batched(K), padding="same")[0, 0]
    by_convolve = scipy.signal.convolve2d(X.numpy(), K.numpy()[::-1, ::-1], mode="same")
    assert not np.allclose(by_convolve, torch_same.numpy())


# --------------------------------------------------------------------------
# Textbook pooling against torch and scipy.ndimage
# --------------------------------------------------------------------------

@st.composite
def image_and_pool_size(draw):
    h = draw(st.integers(1, 7), label="h")
    w = draw(st.integers(1, 7), label="w")
    ph = draw(st.integers(1, h), label="ph")
    pw = draw(st.integers(1, w), label="pw")
    return draw(tensors((h, w), "X")), (ph, pw)


def valid_part_of_centered_filter(filtered, pool_size, out_shape):
    """scipy filters centre a size-k window at k // 2; the valid pooling starts there."""
    (ph, pw), (oh, ow) = pool_size, out_shape
    return filtered[ph // 2:ph // 2 + oh, pw // 2:pw // 2 + ow]


@FAST
@given(image_and_pool_size())
def test_pool2d_max_matches_torch_and_maximum_filter(X_size):
    X, pool_size = X_size
    Y = reference.pool2d(X, pool_size, 'max')
    assert_close(Y, F.max_pool2d(batched(X), pool_size, stride=1)[0, 0])
    filtered = scipy.ndimage.maximum_filter(X.numpy(), size=pool_size, mode="constant",
                                            cval=-np.inf)
    assert_close(Y, valid_part_of_centered_filter(filtered, pool_size, Y.shape))


@FAST
@given(image_and_pool_size())
def test_pool2d_avg_matches_torch_and_uniform_filter(X_size):
    X, pool_size = X_size
    Y = reference.pool2d(X, pool_size, 'avg')
    assert Y.dtype == X.dtype
    assert_close(Y, F.avg_pool2d(batched(X), pool_size, stride=1)[0, 0])
    filtered = scipy.ndimage.uniform_filter(X.numpy(), size=pool_size, mode="constant")
    assert_close(Y, valid_part_of_centered_filter(filtered, pool_size, Y.shape), rtol=1e-9,
                 atol=1e-9)


# --------------------------------------------------------------------------
# Conv2D module
# --------------------------------------------------------------------------

@FEW
@given(image_and_kernel(channels_in=1, channels_out=1), st.integers(0, 2**31 - 1))
def test_conv2d_module_forward_and_gradients_match_torch(X_K, seed):
    X, K = X_K[0][0], X_K[1][0, 0]
    module = reference.Conv2D(tuple(K.shape)).double()
    assert tuple(module.weight.shape) == tuple(K.shape) and tuple(module.bias.shape) == (1,)
    with torch.no_grad():
        module.weight.copy_(K)
        module.bias.fill_(0.5)
    Y = module(X)
    upstream = make_tensor(tuple(Y.shape), seed)
    (Y * upstream).sum().backward()

    weight = K.clone().requires_grad_(True)
    bias = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    Y_torch = F.conv2d(batched(X), batched(weight), bias)[0, 0]
    (Y_torch * upstream).sum().backward()
    assert_close(Y, Y_torch)
    assert_close(module.weight.grad, weight.grad)
    assert_close(module.bias.grad, bias.grad)


def test_conv2d_module_learns_the_edge_kernel():
    """The book's experiment (seed 000: lr 0.01, weight and bias): learn K = [1, -1]."""
    torch.manual_seed(0)
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    Y = reference.corr2d(X, torch.tensor([[1.0, -1.0]]))
    module = reference.Conv2D(kernel_size=(1, 2))
    losses = []
    for _ in range(200):
        loss = ((module(X) - Y) ** 2).sum()
        module.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in module.parameters():
                parameter -= 1e-2 * parameter.grad
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]
    assert_close(module.weight.detach(), torch.tensor([[1.0, -1.0]]), rtol=0, atol=0.05)


# --------------------------------------------------------------------------
# Textbook batch norm (both editions) and the BatchNorm module
# --------------------------------------------------------------------------

@st.composite
def textbook_bn_case(draw):
    """X (N, C) or (N, C, H, W) with N·H·W > 1, plus gamma, beta, moving stats shaped to match."""
    num_dims = draw(st.sampled_from([2, 4]), label="num_dims")
    n = draw(st.integers(2, 4), label="N")
    c = draw(st.integers(1, 3), label="C")
    spatial = (draw(st.integers(1, 3), label="H"), draw(st.integers(1, 3), label="W"))
    shape = (n, c) if num_dims == 2 else (n, c) + spatial
    stat_shape = (1, c) if num_dims == 2 else (1, c, 1, 1)
    X = draw(tensors(shape, "X"))
    gamma = draw(tensors(stat_shape, "gamma"))
    beta = draw(tensors(stat_shape, "beta"))
    moving_mean = draw(tensors(stat_shape, "moving_mean"))
    moving_var = draw(tensors(stat_shape, "moving_var")).abs() + 0.5
    momentum = draw(st.sampled_from([0.1, 0.9, 0.0, 1.0, 0.25]), label="momentum")
    return X, gamma, beta, moving_mean, moving_var, momentum


def torch_reference_bn(X, gamma, beta, moving_mean, moving_var, training):
    """torch's F.batch_norm on the textbook-shaped tensors (stats flattened to (C,))."""
    flat = [t.reshape(-1).clone() for t in (moving_mean, moving_var, gamma, beta)]
    return F.batch_norm(X, flat[0], flat[1], flat[2], flat[3], training=training, eps=1e-5)


def biased_batch_stats(X):
    dims = [d for d in range(X.dim()) if d != 1]
    return X.mean(dim=dims), X.var(dim=dims, unbiased=False)


@FAST
@given(textbook_bn_case())
def test_textbook_batch_norm_second_edition_matches_torch(case):
    X, gamma, beta, moving_mean, moving_var, momentum = case
    originals = [t.clone() for t in case[:5]]
    Y, new_mean, new_var = textbook.batch_norm(X, gamma, beta, moving_mean, moving_var,
                                               1e-5, momentum)
    assert_close(Y, torch_reference_bn(*case[:5], training=True))
    batch_mean, batch_var = biased_batch_stats(X)
    assert new_mean.shape == moving_mean.shape and new_var.shape == moving_var.shape
    assert_close(new_mean.reshape(-1),
                 (1 - momentum) * moving_mean.reshape(-1) + momentum * batch_mean)
    assert_close(new_var.reshape(-1),
                 (1 - momentum) * moving_var.reshape(-1) + momentum * batch_var)
    with torch.no_grad():
        Y_eval, same_mean, same_var = textbook.batch_norm(X, gamma, beta, moving_mean,
                                                          moving_var, 1e-5, momentum)
    assert_close(Y_eval, torch_reference_bn(*case[:5], training=False))
    assert torch.equal(same_mean, moving_mean) and torch.equal(same_var, moving_var)
    for before, after in zip(originals, case[:5]):
        assert torch.equal(before, after)


@FAST
@given(textbook_bn_case())
def test_textbook_batch_norm_first_edition_weights_the_old_value(case):
    X, gamma, beta, moving_mean, moving_var, momentum = case
    originals = [t.clone() for t in case[:5]]
    Y, new_mean, new_var = textbook.batch_norm_first_edition(
        True, X, gamma, beta, moving_mean, moving_var, 1e-5, momentum)
    assert_close(Y, torch_reference_bn(*case[:5], training=True))
    batch_mean, batch_var = biased_batch_stats(X)
    assert_close(new_mean.reshape(-1),
                 momentum * moving_mean.reshape(-1) + (1 - momentum) * batch_mean)
    assert_close(new_var.reshape(-1),
                 momentum * moving_var.reshape(-1) + (1 - momentum) * batch_var)
    Y_eval, same_mean, same_var = textbook.batch_norm_first_edition(
        False, X, gamma, beta, moving_mean, moving_var, 1e-5, momentum)
    assert_close(Y_eval, torch_reference_bn(*case[:5], training=False))
    assert torch.equal(same_mean, moving_mean) and torch.equal(same_var, moving_var)
    for before, after in zip(originals, case[:5]):
        assert torch.equal(before, after)


def test_textbook_batch_norm_keeps_float32():
    X = make_tensor((4, 3, 2, 2), 0, dtype=torch.float32)
    stats = [torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1), torch.zeros(1, 3, 1, 1),
             torch.ones(1, 3, 1, 1)]
    Y, mean, var = textbook.batch_norm(X, *stats, 1e-5, 0.1)
    assert Y.dtype == mean.dtype == var.dtype == torch.float32


@FEW
@given(st.sampled_from([2, 4]), st.integers(2, 4), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2**31 - 1))
def test_batchnorm_module_behaves_as_torch_up_to_the_biased_running_var(num_dims, n, c, size,
                                                                        seed):
    mine = reference.BatchNorm(c, num_dims).double()
    theirs = (nn.BatchNorm1d(c) if num_dims == 2 else nn.BatchNorm2d(c)).double()
    stat_shape = (1, c) if num_dims == 2 else (1, c, 1, 1)
    assert isinstance(mine.gamma, nn.Parameter) and isinstance(mine.beta, nn.Parameter)
    assert {name for name, _ in mine.named_buffers()} == {"moving_mean", "moving_var"}
    assert torch.equal(mine.moving_var, torch.ones(stat_shape, dtype=torch.float64))
    assert torch.equal(mine.moving_mean, torch.zeros(stat_shape, dtype=torch.float64))
    expected_var = torch.ones(c, dtype=torch.float64)
    shape = (n, c) if num_dims == 2 else (n, c, size, size + 1)
    mine.train()
    theirs.train()
    for step in range(3):
        X = make_tensor(shape, seed + step)
        assert_close(mine(X), theirs(X))
        assert_close(mine.moving_mean.reshape(-1), theirs.running_mean)
        expected_var = 0.9 * expected_var + 0.1 * biased_batch_stats(X)[1]
        assert_close(mine.moving_var.reshape(-1), expected_var)
        assert mine.moving_mean.shape == stat_shape
    mine.eval()
    X = make_tensor(shape, seed + 10)
    with torch.no_grad():
        expected = F.batch_norm(X, mine.moving_mean.reshape(-1), mine.moving_var.reshape(-1),
                                mine.gamma.reshape(-1), mine.beta.reshape(-1), eps=1e-5)
        stats_before = (mine.moving_mean.clone(), mine.moving_var.clone())
        assert_close(mine(X), expected)
    assert torch.equal(mine.moving_mean, stats_before[0])
    assert torch.equal(mine.moving_var, stats_before[1])


def test_batchnorm_module_trains_gamma_and_beta():
    module = reference.BatchNorm(3, 4)
    X = make_tensor((4, 3, 2, 2), 0, dtype=torch.float32)
    (module(X) * make_tensor((4, 3, 2, 2), 1, dtype=torch.float32)).sum().backward()
    assert module.gamma.grad is not None and module.beta.grad is not None
    module(X).sum().backward()  # a second step does not backward through the first graph


# --------------------------------------------------------------------------
# Shape formulas against torch's real shapes
# --------------------------------------------------------------------------

@st.composite
def valid_conv_axis(draw):
    n = draw(st.integers(1, 12), label="n")
    dilation = draw(st.integers(1, 3), label="dilation")
    padding = draw(st.integers(0, 3), label="padding")
    max_k = (n + 2 * padding - 1) // dilation + 1
    k = draw(st.integers(1, max(1, min(max_k, 6))), label="k")
    stride = draw(st.integers(1, 4), label="stride")
    return n, k, stride, padding, dilation


@FAST
@given(valid_conv_axis(), valid_conv_axis())
def test_conv_output_size_is_torch_output_shape(axis_h, axis_w):
    (nh, kh, sh, ph, dh), (nw, kw, sw, pw, dw) = axis_h, axis_w
    out = F.conv2d(torch.zeros(1, 1, nh, nw), torch.zeros(1, 1, kh, kw), stride=(sh, sw),
                   padding=(ph, pw), dilation=(dh, dw))
    assert out.shape[2] == shapes.conv_output_size(nh, kh, stride=sh, pad_before=ph,
                                                    pad_after=ph, dilation=dh)
    assert out.shape[3] == shapes.conv_output_size(nw, kw, stride=sw, pad_before=pw,
                                                    pad_after=pw, dilation=dw)


@FAST
@given(st.integers(1, 10), st.integers(1, 5), st.integers(0, 5), st.integers(1, 4))
def test_textbook_output_size_is_torch_shape_with_total_padding(n, k, total_padding, stride):
    if k > n + total_padding:
        return
    before = total_padding // 2
    padded = F.pad(torch.zeros(1, 1, n, n), (before, total_padding - before) * 2)
    out = F.conv2d(padded, torch.zeros(1, 1, k, k), stride=stride)
    assert out.shape[2] == shapes.textbook_output_size(n, k, padding=total_padding,
                                                       stride=stride)
    assert out.shape[2] == shapes.conv_output_size(n, k, stride=stride, pad_before=before,
                                                   pad_after=total_padding - before)


@FAST
@given(st.integers(1, 9), st.integers(1, 6), st.integers(1, 3))
def test_same_padding_keeps_the_size_like_torch(n, k, dilation):
    before, after = shapes.same_padding(k, dilation)
    assert before + after == dilation * (k - 1) and after - before in (0, 1)
    assert shapes.conv_output_size(n, k, pad_before=before, pad_after=after,
                                   dilation=dilation) == n
    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), padding="same",
                   dilation=dilation)
    assert out.shape[2:] == (n, n)


@st.composite
def pool_axis(draw, allow_invalid=False):
    low = -1 if allow_invalid else 1
    n = draw(st.integers(1, 9), label="n")
    k = draw(st.integers(low - 1 if allow_invalid else 1, 5), label="k")
    stride = draw(st.integers(low, 4), label="stride")
    padding = draw(st.integers(-1 if allow_invalid else 0, 3), label="padding")
    dilation = draw(st.integers(low, 3), label="dilation")
    return n, k, stride, padding, dilation


@FAST
@given(pool_axis(allow_invalid=True), st.booleans())
@example((5, 2, 2, 2, 1), False)   # torch: "pad should be at most half"
@example((5, 3, 2, 1, 1), True)    # ceil mode, windows fit
@example((4, 2, 2, 1, 1), True)    # ceil mode: a window starting in the right padding is dropped
@example((6, 3, 3, 1, 1), True)
def test_pool_output_size_and_rules_match_torch(axis, ceil_mode):
    n, k, stride, padding, dilation = axis
    status, value = outcome(lambda: F.max_pool2d(torch.zeros(1, 1, n, 1), (k, 1),
                                                 stride=(stride, 1), padding=(padding, 0),
                                                 dilation=(dilation, 1), ceil_mode=ceil_mode))
    my_status, my_value = outcome(lambda: shapes.checked_pool_output_size(
        n, k, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode))
    note(f"torch: {status} {value}; reference: {my_status} {my_value}")
    assert my_status == status
    if status == "ok":
        assert my_value == value.shape[2]
        assert my_value == shapes.pool_output_size(n, k, stride=stride, padding=padding,
                                                   dilation=dilation, ceil_mode=ceil_mode)


def test_pool_ceil_rule_drops_a_window_starting_in_the_padding():
    # n=4, k=2, s=2, p=1: ⌈(4 + 2 − 1 − 1)/2⌉ + 1 = 3; (3 − 1)·2 = 4 < 4 + 1 → kept: 3.
    assert shapes.pool_output_size(4, 2, stride=2, padding=1, ceil_mode=True) == 3
    assert F.max_pool2d(torch.zeros(1, 1, 4, 4), 2, 2, 1, ceil_mode=True).shape[2] == 3
    # n=5, k=2, s=2, p=1: ceil((5 + 2 − 2)/2) + 1 = 4; (4 − 1)·2 = 6 ≥ 5 + 1 → dropped: 3.
    assert shapes.pool_output_size(5, 2, stride=2, padding=1, ceil_mode=True) == 3
    assert F.max_pool2d(torch.zeros(1, 1, 5, 5), 2, 2, 1, ceil_mode=True).shape[2] == 3


@pytest.mark.parametrize("k, padding, torch_raises", [(2, 1, False), (2, 2, True), (3, 1, False),
                                                      (3, 2, True), (4, 2, False), (1, 1, True)])
def test_check_pool_padding_is_torch_half_kernel_rule(k, padding, torch_raises):
    status, _ = outcome(lambda: F.max_pool2d(torch.zeros(1, 1, 9, 9), k, 1, padding))
    assert (status == "raised") == torch_raises
    if torch_raises:
        with pytest.raises(ValueError, match=f"padding={padding} > {k} // 2"):
            shapes.check_pool_padding(k, padding)
    else:
        shapes.check_pool_padding(k, padding)


def test_messages_name_the_argument_and_the_rule():
    with pytest.raises(ValueError, match="stride must be positive, got 0"):
        shapes.check_positive(0, "stride")
    with pytest.raises(ValueError, match=r"kernel \(effective size 7\) is larger than the "
                                         r"padded input \(5\)"):
        shapes.check_kernel_fits(5, 4, dilation=2)
    with pytest.raises(ValueError, match="padding must be at most half the kernel size: "
                                         "padding=2 > 3 // 2"):
        shapes.check_pool_padding(3, 2)
    with pytest.raises(ValueError, match="padding must be non-negative, got -1"):
        shapes.check_non_negative(-1, "padding")
    with pytest.raises(ValueError, match="dilation must be positive"):
        functional.conv2d(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), dilation=0)
    with pytest.raises(ValueError, match="groups"):
        functional.conv2d(torch.zeros(1, 4, 5, 5), torch.zeros(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="'same'.*stride"):
        functional.conv2d(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), padding="same",
                          stride=2)
    with pytest.raises(ValueError, match="divisor_override"):
        functional.avg_pool2d(torch.zeros(1, 1, 5, 5), 2, divisor_override=0)
    with pytest.raises(ValueError, match="4-D"):
        functional.max_pool2d(torch.zeros(5, 5), 2)
    with pytest.raises(ValueError, match="output size must be at least 1"):
        functional.max_pool2d(torch.zeros(1, 1, 5, 5), 6)


@pytest.mark.parametrize("weight_shape, kwargs, message", [
    ((3, 2, 2, 2), dict(dilation=(1, 2, 3)), r"^dilation must be an int or a pair of ints"),
    ((3, 2, 2, 2), dict(groups=0), r"^groups must be positive, got 0$"),
    ((0, 2, 2, 2), {}, r"^weight.shape\[0\] \(output channels\) must be positive, got 0$"),
    ((3, 2, 2, 7), {}, r"^kernel \(effective size 7\) is larger than the padded input width "
                       r"\(5\)$"),
])
def test_conv2d_messages_name_the_argument(weight_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        functional.conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(weight_shape), **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=(1, 2, 3)), r"^kernel_size must be an int or a pair of ints"),
    (dict(kernel_size=2, stride=(1, 2, 3)), r"^stride must be an int or a pair of ints"),
    (dict(kernel_size=2, stride=0), r"^stride must be positive, got 0$"),
    (dict(kernel_size=2, padding=-1), r"^padding must be non-negative, got -1$"),
])
def test_pooling_messages_name_the_argument(kwargs, message):
    for pool in (functional.max_pool2d, functional.avg_pool2d):
        with pytest.raises(ValueError, match=message):
            pool(torch.zeros(1, 1, 5, 5), **kwargs)


def test_conv2d_refuses_a_weight_of_another_dtype_like_torch():
    x, w = torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 2, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"^weight dtype torch.float64 differs from input "
                                         r"dtype torch.float32$"):
        functional.conv2d(x, w)


def test_size_formulas_defaults_and_kernel_message():
    assert shapes.textbook_output_size(5, 2) == 4  # padding 0 and stride 1 by default
    with pytest.raises(ValueError, match=r"^kernel size must be positive, got 0$"):
        shapes.checked_conv_output_size(5, 0)


def test_pair_normalises_ints_and_pairs():
    assert shapes.pair(3, "stride") == (3, 3)
    assert shapes.pair((2, 5), "stride") == (2, 5)
    assert shapes.pair([4], "stride") == (4, 4)
    with pytest.raises(ValueError, match="stride"):
        shapes.pair((1, 2, 3), "stride")
    with pytest.raises(ValueError, match="kernel_size"):
        shapes.pair(2.5, "kernel_size")


# --------------------------------------------------------------------------
# Functional conv2d: values and raise/no-raise against torch
# --------------------------------------------------------------------------

@st.composite
def conv2d_case(draw, allow_invalid=False):
    """Arguments for conv2d: valid ones, or (allow_invalid) possibly-invalid small ones."""
    lo = -1 if allow_invalid else 1
    groups = draw(st.integers(0 if allow_invalid else 1, 3), label="groups")
    per_group_in = draw(st.integers(1, 2), label="in channels per group")
    out_per_group = draw(st.integers(1, 2), label="out channels per group")
    g = max(groups, 1)
    c_in = g * per_group_in
    c_out = g * out_per_group
    if allow_invalid:
        c_in = draw(st.sampled_from([c_in, c_in + 1]), label="C_in")
        c_out = draw(st.sampled_from([c_out, c_out + 1]), label="C_out")
    n = draw(st.integers(1, 2), label="N")
    h = draw(st.integers(1, 7), label="H")
    w = draw(st.integers(1, 7), label="W")
    kh = draw(st.integers(1, 4), label="kh")
    kw = draw(st.integers(1, 4), label="kw")
    stride = draw(st.tuples(st.integers(lo, 3), st.integers(lo, 3)), label="stride")
    dilation = draw(st.tuples(st.integers(lo, 2), st.integers(lo, 2)), label="dilation")
    padding = draw(st.one_of(
        st.tuples(st.integers(-1 if allow_invalid else 0, 3),
                  st.integers(-1 if allow_invalid else 0, 3)),
        st.integers(-1 if allow_invalid else 0, 3),
        st.sampled_from(["valid", "same"])), label="padding")
    if not allow_invalid:
        if padding == "same":
            stride = (1, 1)
        pad_h, pad_w = ((0, 0) if isinstance(padding, str) else shapes.pair(padding, "p"))
        extra = (dilation[0] * (kh - 1), dilation[1] * (kw - 1)) if padding == "same" else (0, 0)
        h = max(h, dilation[0] * (kh - 1) + 1 - 2 * pad_h - extra[0])
        w = max(w, dilation[1] * (kw - 1) + 1 - 2 * pad_w - extra[1])
    layout = draw(st.sampled_from(LAYOUTS), label="layout")
    with_bias = draw(st.booleans(), label="bias")
    X = in_layout(draw(tensors((n, c_in, h, w), "input")), layout)
    W = draw(tensors((c_out, per_group_in, kh, kw), "weight"))
    b = draw(tensors((c_out,), "bias")) if with_bias else None
    return X, W, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@FAST
@given(conv2d_case())
def test_conv2d_matches_torch(case):
    X, W, b, kwargs = case
    X_before = X.clone()
    Y = functional.conv2d(X, W, b, **kwargs)
    expected = F.conv2d(X, W, b, **kwargs)
    assert Y.dtype == X.dtype and Y.shape == expected.shape
    assert_close(Y, expected)
    assert torch.equal(X, X_before)


@FAST
@given(conv2d_case(allow_invalid=True))
@example((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 6, 6), None,
          dict(stride=1, padding=0, dilation=1, groups=1)))
@example((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), None,
          dict(stride=2, padding="same", dilation=1, groups=1)))
@example((torch.zeros(1, 6, 5, 5), torch.zeros(4, 2, 3, 3), None,
          dict(stride=1, padding=0, dilation=1, groups=4)))
def test_conv2d_raises_exactly_where_torch_raises(case):
    X, W, b, kwargs = case
    same_shape_and_values(outcome(lambda: functional.conv2d(X, W, b, **kwargs)),
                          outcome(lambda: F.conv2d(X, W, b, **kwargs)))


def test_conv2d_keeps_float32():
    X = make_tensor((2, 3, 6, 6), 0, dtype=torch.float32)
    W = make_tensor((4, 3, 3, 3), 1, dtype=torch.float32)
    Y = functional.conv2d(X, W, padding=1)
    assert Y.dtype == torch.float32
    torch.testing.assert_close(Y, F.conv2d(X, W, padding=1))


# --------------------------------------------------------------------------
# Functional pooling: values and raise/no-raise against torch
# --------------------------------------------------------------------------

@st.composite
def pool_case(draw, allow_invalid=False, with_dilation=True):
    """(input, kwargs) for max/avg pooling, valid or possibly invalid."""
    lo = -1 if allow_invalid else 1
    n = draw(st.integers(1, 2), label="N")
    c = draw(st.integers(1, 2), label="C")
    h = draw(st.integers(1, 8), label="H")
    w = draw(st.integers(1, 8), label="W")
    kernel = draw(st.tuples(st.integers(lo - 1 if allow_invalid else 1, 4),
                            st.integers(lo - 1 if allow_invalid else 1, 4)), label="kernel")
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(lo, 3), st.integers(lo, 3)),
                            st.integers(lo, 3)), label="stride")
    if allow_invalid:
        padding = draw(st.tuples(st.integers(-1, 2), st.integers(-1, 2)), label="padding")
    else:
        padding = draw(st.tuples(st.integers(0, kernel[0] // 2),
                                 st.integers(0, kernel[1] // 2)), label="padding")
    dilation = (draw(st.tuples(st.integers(lo, 2), st.integers(lo, 2)), label="dilation")
                if with_dilation else (1, 1))
    if not allow_invalid:
        h = max(h, dilation[0] * (kernel[0] - 1) + 1 - 2 * padding[0])
        w = max(w, dilation[1] * (kernel[1] - 1) + 1 - 2 * padding[1])
    layout = draw(st.sampled_from(LAYOUTS), label="layout")
    X = in_layout(draw(tensors((n, c, h, w), "input")), layout)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding,
                  ceil_mode=draw(st.booleans(), label="ceil_mode"))
    if with_dilation:
        kwargs["dilation"] = dilation
    return X, kwargs


@st.composite
def avg_pool_case(draw, allow_invalid=False):
    X, kwargs = draw(pool_case(allow_invalid, with_dilation=False))
    kwargs["count_include_pad"] = draw(st.booleans(), label="count_include_pad")
    kwargs["divisor_override"] = draw(st.sampled_from(
        [None, None, 1, 3, -2] + ([0] if allow_invalid else [])), label="divisor_override")
    return X, kwargs


@FAST
@given(pool_case())
@example((torch.arange(25.0).reshape(1, 1, 5, 5) - 30, dict(kernel_size=2, stride=2, padding=1,
                                                            ceil_mode=True, dilation=1)))
def test_max_pool2d_matches_torch(case):
    X, kwargs = case
    X_before = X.clone()
    Y = functional.max_pool2d(X, **kwargs)
    expected = F.max_pool2d(X, **kwargs)
    assert Y.dtype == X.dtype and Y.shape == expected.shape
    assert_close(Y, expected)
    assert torch.equal(X, X_before)


@FAST
@given(avg_pool_case())
@example((torch.ones(1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True,
                                       count_include_pad=True, divisor_override=None)))
@example((torch.ones(1, 1, 5, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                       count_include_pad=False, divisor_override=None)))
def test_avg_pool2d_matches_torch(case):
    X, kwargs = case
    X_before = X.clone()
    Y = functional.avg_pool2d(X, **kwargs)
    expected = F.avg_pool2d(X, **kwargs)
    assert Y.dtype == X.dtype and Y.shape == expected.shape
    assert_close(Y, expected)
    assert torch.equal(X, X_before)


@FAST
@given(pool_case(allow_invalid=True))
@example((torch.zeros(1, 1, 5, 5), dict(kernel_size=2, padding=2, stride=None,
                                        dilation=1, ceil_mode=False)))
def test_max_pool2d_raises_exactly_where_torch_raises(case):
    X, kwargs = case
    same_shape_and_values(outcome(lambda: functional.max_pool2d(X, **kwargs)),
                          outcome(lambda: F.max_pool2d(X, **kwargs)))


@FAST
@given(avg_pool_case(allow_invalid=True))
def test_avg_pool2d_raises_exactly_where_torch_raises(case):
    X, kwargs = case
    same_shape_and_values(outcome(lambda: functional.avg_pool2d(X, **kwargs)),
                          outcome(lambda: F.avg_pool2d(X, **kwargs)))


@FAST
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 2**31 - 1))
def test_stride_one_pooling_matches_scipy_ndimage(h, w, kh, kw, seed):
    if kh > h or kw > w:
        return
    X = make_tensor((1, 1, h, w), seed)
    maxed = functional.max_pool2d(X, (kh, kw), stride=1)[0, 0]
    averaged = functional.avg_pool2d(X, (kh, kw), stride=1)[0, 0]
    image = X[0, 0].numpy()
    filtered_max = scipy.ndimage.maximum_filter(image, size=(kh, kw), mode="constant",
                                                cval=-np.inf)
    filtered_avg = scipy.ndimage.uniform_filter(image, size=(kh, kw), mode="constant")
    assert_close(maxed, valid_part_of_centered_filter(filtered_max, (kh, kw), maxed.shape))
    assert_close(averaged, valid_part_of_centered_filter(filtered_avg, (kh, kw), averaged.shape),
                 rtol=1e-9, atol=1e-9)


def test_results_do_not_share_memory_with_the_input():
    """A 1×1 window is the identity; the result must still be a new tensor, as in torch."""
    X = make_tensor((1, 2, 3, 3), 0)
    X_before = X.clone()
    results = [functional.max_pool2d(X, 1), functional.avg_pool2d(X, 1),
               functional.conv2d(X, torch.eye(2, dtype=X.dtype).reshape(2, 2, 1, 1))]
    for result in results:
        result.zero_()
    assert torch.equal(X, X_before)


def test_max_pool2d_pads_with_minus_infinity_not_zero():
    X = -torch.ones(1, 1, 2, 2, dtype=torch.float64)
    assert torch.equal(functional.max_pool2d(X, 2, stride=1, padding=1), -torch.ones(1, 1, 3, 3,
                                                                                  dtype=X.dtype))


def test_max_pool2d_propagates_nan_like_torch():
    X = torch.tensor([[[[1.0, float("nan")], [3.0, 4.0]]]])
    assert torch.isnan(F.max_pool2d(X, 2)).all()
    assert torch.isnan(functional.max_pool2d(X, 2)).all()


# --------------------------------------------------------------------------
# Functional batch_norm
# --------------------------------------------------------------------------

@st.composite
def functional_bn_case(draw):
    rank = draw(st.sampled_from([2, 3, 4]), label="rank")
    c = draw(st.integers(1, 3), label="C")
    shape = (draw(st.integers(1, 4), label="N"), c) + tuple(
        draw(st.integers(1, 3), label="spatial") for _ in range(rank - 2))
    if math.prod(shape) // c <= 1:  # training needs two values per channel
        shape = (2,) + shape[1:]
    X = draw(tensors(shape, "input"))
    if rank == 4:
        X = in_layout(X, draw(st.sampled_from(LAYOUTS), label="layout"))
    running_mean = draw(tensors((c,), "running_mean"))
    running_var = draw(tensors((c,), "running_var")).abs() + 0.5
    weight = draw(st.one_of(st.none(), tensors((c,), "weight")), label="weight")
    bias = draw(st.one_of(st.none(), tensors((c,), "bias")), label="bias")
    momentum = draw(st.sampled_from([0.1, 0.5, 0.0, 1.0]), label="momentum")
    eps = draw(st.sampled_from([1e-5, 1e-3]), label="eps")
    return X, running_mean, running_var, weight, bias, momentum, eps


@FAST
@given(functional_bn_case(), st.booleans())
def test_functional_batch_norm_matches_torch_including_in_place_running_stats(case, training):
    X, running_mean, running_var, weight, bias, momentum, eps = case
    X_before = X.clone()
    torch_mean, torch_var = running_mean.clone(), running_var.clone()
    mean_object = running_mean
    Y = functional.batch_norm(X, running_mean, running_var, weight, bias, training=training,
                              momentum=momentum, eps=eps)
    expected = F.batch_norm(X, torch_mean, torch_var, weight, bias, training=training,
                            momentum=momentum, eps=eps)
    assert Y.dtype == X.dtype and Y.shape == expected.shape
    assert_close(Y, expected)
    assert running_mean is mean_object
    assert_close(running_mean, torch_mean)
    assert_close(running_var, torch_var)
    assert torch.equal(X, X_before)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1), (2, 3), (1, 3, 2)])
def test_functional_batch_norm_needs_two_values_per_channel_like_torch(shape):
    def call(function):
        return outcome(lambda: function(torch.zeros(shape), torch.zeros(3), torch.ones(3),
                                        training=True))
    assert call(functional.batch_norm)[0] == call(F.batch_norm)[0]


def test_functional_batch_norm_keeps_float32():
    X = make_tensor((4, 3, 2, 2), 0, dtype=torch.float32)
    Y = functional.batch_norm(X, torch.zeros(3), torch.ones(3), training=True)
    assert Y.dtype == torch.float32
