"""Hypothesis strategies for batch normalisation.

A `BatchNormCase` holds one call's worth of arguments in dialect-neutral form (per-channel
vectors of shape (C,)); the properties reshape them for the textbook dialect ((1, C) or
(1, C, 1, 1)). Corners reached without filtering:
- small batches (N = 2..6 for 2-D input), so n / (n - 1) is far from 1 and an unbiased
  variance in the normalisation shows;
- tiny-variance channels (values k * 2^-10 around a small integer, variance below eps), where
  eps decides the output;
- offset channels (values in [-8, 8] plus ±10^k: a mean 10^k/8 to 10^k times the spread, up
  to k = 4 in float32 and k = 7 in float64), where the one-pass variance E[x^2] - mean^2
  cancels catastrophically while a stable algorithm keeps the error the tolerance model
  allows (contract: "Accuracy on ill-conditioned inputs");
- a batch of one with spatial positions (4-D and 3-D), always at least 2 values per channel;
- weight without bias (and the other combinations) in the functional dialect;
- non-contiguous layouts in the functional dialect.
"""
from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from properties.strategies import Case, dtypes, layouts, tensors, with_layout

#: 2^-10: tiny-variance channels are small integers plus multiples of it (exact in float32).
TINY_STEP = 2.0 ** -10
#: Drawn values are 0 or at least this in magnitude, so no intermediate of a batch norm, its
#: running statistics or its gradients comes near float32's underflow threshold (2^-126):
#: the error model is relative (tolerance.py), and underflow is not what a batch norm is
#: judged on.
SMALLEST_MAGNITUDE = 2.0 ** -16
EPS_VALUES = (1e-5, 1e-3, 0.1)
#: 0.5 is left out: with it both momentum forms give the same running statistics.
MOMENTUM_VALUES = (0.1, 0.9, 0.3, 0.75)
CHANNELS = st.integers(1, 3)
#: Offset channels add ±10^k to values in [-8, 8]: the mean is 10^k/8 to 10^k times the spread
#: (more when the values shrink towards equal ones). 10^k is exact in either dtype; the ratio
#: reaches 10^3 in float32 and 10^6 in float64, where the one-pass variance has lost every
#: digit (float32 keeps a spread of 8 around 10^4 to about 10 bits).
OFFSET_EXPONENTS = {torch.float32: (2, 3, 4), torch.float64: (2, 4, 6, 7)}
#: What each channel of a batch may be (see `batches`).
CHANNEL_KINDS = ("spread", "tiny", "offset")


@dataclasses.dataclass(frozen=True, repr=False)
class BatchNormCase(Case):
    """X (N, C), (N, C, L) or (N, C, H, W); gamma/beta/running stats per channel, shape (C,)."""
    X: torch.Tensor
    gamma: torch.Tensor | None
    beta: torch.Tensor | None
    running_mean: torch.Tensor
    running_var: torch.Tensor
    eps: float
    momentum: float

    @property
    def channels(self) -> int:
        return self.X.shape[1]

    def replace(self, **changes) -> "BatchNormCase":
        return dataclasses.replace(self, **changes)


@st.composite
def batch_shapes(draw, ndims=(2, 4), channels=CHANNELS) -> tuple[int, ...]:
    """(N, C), (N, C, L) or (N, C, H, W) with at least 2 values per channel."""
    ndim = draw(st.sampled_from(ndims), label="input dimensions")
    c = draw(channels, label="channels")
    if ndim == 2:
        return draw(st.integers(2, 6), label="batch size"), c
    n = draw(st.integers(1, 3), label="batch size")
    spatial = tuple(draw(st.integers(1, 3), label=f"spatial size {d}")
                    for d in range(ndim - 2))
    if n * _product(spatial) < 2:
        n = 2
    return (n, c, *spatial)


def without_tiny(t: torch.Tensor) -> torch.Tensor:
    """t with every entry smaller in magnitude than SMALLEST_MAGNITUDE set to 0."""
    return t.masked_fill(t.abs() < SMALLEST_MAGNITUDE, 0.0)


def _product(sizes) -> int:
    total = 1
    for s in sizes:
        total *= s
    return total


@st.composite
def spread_channel(draw, shape, dtype, label="channel", integer_valued=None):
    """One channel's values in [-8, 8], integer-valued or general floats (None: drawn)."""
    return without_tiny(draw(tensors(shape, dtype, integer_valued=integer_valued,
                                     label=label)))


@st.composite
def offset_channel(draw, shape, dtype, label="channel", integer_valued=None):
    """±10^k + values in [-8, 8] (k from OFFSET_EXPONENTS): a per-channel mean large relative
    to the spread, rounded to dtype."""
    exponent = draw(st.sampled_from(OFFSET_EXPONENTS[dtype]), label=f"{label} offset 10^")
    sign = draw(st.sampled_from((1, -1)), label=f"{label} offset sign")
    values = draw(spread_channel(shape, torch.float64, label, integer_valued))
    return (sign * 10.0 ** exponent + values).to(dtype)


@st.composite
def tiny_variance_channel(draw, shape, dtype, label="channel", max_offset=1):
    """offset + k * 2^-10 with k in [-2, 2] and a small integer offset: variance at most
    4 * 2^-20 (below 1e-5), so eps decides the output. The offset stays small: these channels
    judge eps, offset channels judge the conditioning."""
    offset = draw(st.integers(-max_offset, max_offset), label=f"{label} offset")
    steps = draw(tensors(shape, torch.float64, low=-2, high=2, integer_valued=True,
                         label=f"{label} steps"))
    return (offset + steps * TINY_STEP).to(dtype)


@st.composite
def batches(draw, shape, dtype, channel_kinds=CHANNEL_KINDS,
            integer_valued=None) -> torch.Tensor:
    """X of `shape` built channel by channel, each channel of a drawn kind: 'spread'
    (`spread_channel`), 'tiny' (`tiny_variance_channel`) or 'offset' (`offset_channel`)."""
    per_channel = (shape[0], *shape[2:])
    channels = []
    for c in range(shape[1]):
        kind = draw(st.sampled_from(channel_kinds), label=f"channel {c} kind")
        if kind == "spread":
            channel = spread_channel(per_channel, dtype, f"channel {c}", integer_valued)
        elif kind == "offset":
            channel = offset_channel(per_channel, dtype, f"channel {c}", integer_valued)
        else:
            channel = tiny_variance_channel(per_channel, dtype, f"channel {c}")
        channels.append(draw(channel))
    return torch.stack(channels, dim=1).contiguous()


AFFINE_KINDS = ("optional", "random", "identity")


@st.composite
def affine_parameters(draw, channels, dtype, affine="random"):
    """(gamma, beta) per channel: 'random', 'identity' (ones and zeros), or 'optional':
    random with either possibly None (the functional dialect's weight=None / bias=None)."""
    if affine not in AFFINE_KINDS:
        raise ValueError(f"affine must be one of {AFFINE_KINDS}, got {affine!r}")
    if affine == "identity":
        return torch.ones(channels, dtype=dtype), torch.zeros(channels, dtype=dtype)
    gamma = without_tiny(draw(tensors((channels,), dtype, low=-3, high=3, label="gamma")))
    beta = without_tiny(draw(tensors((channels,), dtype, low=-4, high=4, label="beta")))
    if affine == "optional":
        keep_gamma = draw(st.booleans(), label="weight given")
        keep_beta = draw(st.booleans(), label="bias given")
        gamma, beta = (gamma if keep_gamma else None), (beta if keep_beta else None)
    return gamma, beta


@st.composite
def running_statistics(draw, channels, dtype):
    """running mean in [-4, 4]; running variance in [0, 4] (zero included: eps keeps it
    finite)."""
    mean = without_tiny(draw(tensors((channels,), dtype, low=-4, high=4, label="running_mean")))
    var = without_tiny(draw(tensors((channels,), dtype, low=0, high=4,
                                    label="running_var")).abs())
    return mean, var


@st.composite
def batch_norm_cases(draw, *, ndims=(2, 3, 4), channel_kinds=CHANNEL_KINDS,
                     affine="optional", noncontiguous=True, integer_valued=None,
                     eps_values=EPS_VALUES, dtype=None) -> BatchNormCase:
    """A BatchNormCase in the functional dialect's range: 2-D to 4-D input, any layout
    (`noncontiguous`), gamma/beta per `affine` (see affine_parameters). The properties adapt
    it for the textbook dialect (props_batch_norm.adapt)."""
    dtype = dtype or draw(dtypes(), label="dtype")
    shape = draw(batch_shapes(ndims))
    X = draw(batches(shape, dtype, channel_kinds, integer_valued))
    if noncontiguous:
        X = with_layout(X, draw(layouts(), label="layout"))
    gamma, beta = draw(affine_parameters(shape[1], dtype, affine))
    mean, var = draw(running_statistics(shape[1], dtype))
    eps = draw(st.sampled_from(eps_values), label="eps")
    momentum = draw(st.sampled_from(MOMENTUM_VALUES), label="momentum")
    return BatchNormCase(X, gamma, beta, mean, var, eps, momentum)


@dataclasses.dataclass(frozen=True, repr=False)
class RescaledCase(Case):
    """A case and a per-channel positive scale and shift to apply to its input."""
    case: BatchNormCase
    scale: torch.Tensor
    shift: torch.Tensor


#: Shifts of the rescaled cases are integers in [-4, 4] times one of these powers of two: up
#: to 4 * 2^12, about 10^4 times the spread of the scaled values (an offset, see
#: OFFSET_EXPONENTS), still exact in float32 (at most 17 significant bits).
SHIFT_FACTORS = (1, 2 ** 6, 2 ** 12)


@st.composite
def rescaled_cases(draw, **case_options) -> RescaledCase:
    """Scales are powers of two in [1/4, 4] and shifts integers in [-4, 4] times a factor of
    SHIFT_FACTORS: applied to integer-valued spread channels, the rescaled input is exact in
    either precision, and a large shift makes it ill-conditioned."""
    case = draw(batch_norm_cases(channel_kinds=("spread",), integer_valued=True,
                                 **case_options))
    c = case.channels
    exponents = draw(st.lists(st.integers(-2, 2), min_size=c, max_size=c), label="scale = 2^")
    shifts = draw(st.lists(st.integers(-4, 4), min_size=c, max_size=c), label="shift")
    factor = draw(st.sampled_from(SHIFT_FACTORS), label="shift factor")
    return RescaledCase(case, 2.0 ** torch.tensor(exponents, dtype=torch.float64),
                        factor * torch.tensor(shifts, dtype=torch.float64))


@dataclasses.dataclass(frozen=True, repr=False)
class PermutedCase(Case):
    """A case and, per channel, a permutation of its n = N * spatial positions."""
    case: BatchNormCase
    permutations: tuple[tuple[int, ...], ...]


@st.composite
def permuted_cases(draw, **case_options) -> PermutedCase:
    """A different permutation of the batch and spatial positions for every channel."""
    case = draw(batch_norm_cases(**case_options))
    n = case.X.numel() // case.channels
    perms = tuple(tuple(draw(st.permutations(range(n)), label=f"channel {c} permutation"))
                  for c in range(case.channels))
    return PermutedCase(case, perms)


@dataclasses.dataclass(frozen=True, repr=False)
class GradientCase(Case):
    """A training case and the upstream gradient dL/dY (shaped like X)."""
    case: BatchNormCase
    upstream: torch.Tensor


@st.composite
def gradient_cases(draw, **case_options) -> GradientCase:
    case = draw(batch_norm_cases(**case_options))
    upstream = without_tiny(draw(tensors(tuple(case.X.shape), case.X.dtype, low=-4, high=4,
                                         label="upstream gradient")))
    return GradientCase(case, upstream)


@dataclasses.dataclass(frozen=True, repr=False)
class ModuleCase(Case):
    """BatchNorm(C, num_dims) fed float32 training `batches` (each (N, C) or (N, C, H, W)),
    then `probe` in evaluation; gamma/beta (C,) to set its parameters to."""
    num_dims: int
    batches: tuple[torch.Tensor, ...]
    probe: torch.Tensor
    gamma: torch.Tensor
    beta: torch.Tensor
    upstream: torch.Tensor

    @property
    def channels(self) -> int:
        return self.probe.shape[1]


TRAINING_STEPS = st.integers(1, 3)


@st.composite
def module_cases(draw, steps=TRAINING_STEPS) -> ModuleCase:
    """Modules run in float32 (their parameters' dtype); batches of a common shape."""
    dtype = torch.float32
    shape = draw(batch_shapes((2, 4)))
    count = draw(steps, label="training steps")
    training = tuple(draw(batches(shape, dtype), label=f"batch {i}") for i in range(count))
    probe = draw(batches(shape, dtype, ("spread",)), label="probe")
    gamma, beta = draw(affine_parameters(shape[1], dtype, "random"))
    upstream = without_tiny(draw(tensors(shape, dtype, low=-4, high=4,
                                         label="upstream gradient")))
    return ModuleCase(len(shape), training, probe, gamma, beta, upstream)


# --------------------------------------------------------------------------- must-run examples
# Run on every target before anything random (and under any example budget): several channels
# of distinct values, so statistics over the wrong axes, a swapped gamma/beta or a mixed
# convention cannot hide behind a degenerate minimal example.

def _example_2d(dtype=torch.float32) -> BatchNormCase:
    X = torch.tensor([[1.0, 2.0, 0.0], [3.0, -1.0, 4.0], [0.0, 5.0, 1.0], [2.0, 0.0, -2.0]],
                     dtype=dtype)
    return BatchNormCase(X, torch.tensor([1.5, -0.5, 2.0], dtype=dtype),
                         torch.tensor([0.5, 1.0, -1.0], dtype=dtype),
                         torch.tensor([0.5, -1.0, 2.0], dtype=dtype),
                         torch.tensor([2.0, 0.5, 1.0], dtype=dtype), 1e-5, 0.1)


def _example_4d(dtype=torch.float64) -> BatchNormCase:
    X = (torch.arange(24, dtype=dtype).reshape(2, 2, 2, 3) * 7 % 11) - 5
    return BatchNormCase(X, torch.tensor([2.0, -1.0], dtype=dtype),
                         torch.tensor([-0.5, 3.0], dtype=dtype),
                         torch.tensor([1.0, -2.0], dtype=dtype),
                         torch.tensor([0.25, 3.0], dtype=dtype), 1e-3, 0.9)


def _example_tiny_variance(dtype=torch.float32) -> BatchNormCase:
    steps = torch.tensor([[0.0, 2.0], [1.0, -2.0], [-1.0, 1.0], [2.0, 0.0]], dtype=dtype)
    return BatchNormCase(steps * TINY_STEP + torch.tensor([0.0, 1.0], dtype=dtype), None,
                         None, torch.zeros(2, dtype=dtype), torch.ones(2, dtype=dtype), 1e-5,
                         0.1)


def _example_offset(dtype=torch.float32) -> BatchNormCase:
    """Pixel-like channels around 1000 and -3000 with a spread of about 1 (means 10^3 and more
    times the spread) beside a centred one: a float32 one-pass variance loses every digit."""
    X = torch.tensor([[1000.25, 2.0, -2999.5], [999.5, -1.0, -3001.0], [1001.0, 0.5, -3000.25],
                      [1000.75, 3.0, -2998.75], [999.0, -2.5, -3000.5]], dtype=dtype)
    return BatchNormCase(X, torch.tensor([1.5, -0.5, 2.0], dtype=dtype),
                         torch.tensor([0.5, 1.0, -1.0], dtype=dtype),
                         torch.tensor([0.5, -1.0, 2.0], dtype=dtype),
                         torch.tensor([2.0, 0.5, 1.0], dtype=dtype), 1e-5, 0.1)


EXAMPLES = (_example_2d(), _example_4d())
#: Run after EXAMPLES (a target's other mistakes show on those first) wherever the batch's own
#: statistics are used: the training output, its moments, the mode switch, the running
#: statistics and the gradients (and, shifted, the rescaling invariance).
OFFSET_EXAMPLES = (_example_offset(),)
IDENTITY_EXAMPLES = tuple(c.replace(gamma=torch.ones_like(c.gamma),
                                    beta=torch.zeros_like(c.beta), eps=1e-5)
                          for c in EXAMPLES + OFFSET_EXAMPLES)
TINY_VARIANCE_EXAMPLES = (_example_tiny_variance(),)
RESCALED_EXAMPLES = (RescaledCase(EXAMPLES[0], torch.tensor([2.0, 0.5, 4.0], dtype=torch.float64),
                                  torch.tensor([1.0, -3.0, 2.0], dtype=torch.float64)),
                     RescaledCase(EXAMPLES[0], torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64),
                                  torch.tensor([4096.0, -192.0, 8192.0], dtype=torch.float64)))
PERMUTED_EXAMPLES = (PermutedCase(EXAMPLES[0], ((1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0))),
                     PermutedCase(EXAMPLES[1], (tuple(range(11, -1, -1)),
                                                (1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10))))
GRADIENT_EXAMPLES = tuple(GradientCase(c, ((torch.arange(c.X.numel(), dtype=c.X.dtype) * 5 % 7)
                                           - 3).reshape(c.X.shape))
                          for c in EXAMPLES + OFFSET_EXAMPLES)
MODULE_EXAMPLES = (
    ModuleCase(2, (EXAMPLES[0].X, EXAMPLES[0].X.flip(0) * 2 - 1), EXAMPLES[0].X.flip(1),
               EXAMPLES[0].gamma, EXAMPLES[0].beta, GRADIENT_EXAMPLES[0].upstream),
    ModuleCase(4, (EXAMPLES[1].X.float(),), EXAMPLES[1].X.float().flip(0),
               EXAMPLES[1].gamma.float(), EXAMPLES[1].beta.float(),
               GRADIENT_EXAMPLES[1].upstream.float()),
)
