"""What the contract says about each contract name, in one record per (name, dialect).

A `Signature` holds the call's parameters in order with their defaults, which arguments the
call may change in place, the family the name belongs to, torch's own function when the
contract says "raise wherever torch raises" with the explicit calls that break each of its
rules, and the ids of the known mistakes that apply, in the order the diagnosis tries them
(properties.diagnosis.mistakes says what each one is).

Everything else reads these records: how a call is shown and replayed (properties.target),
which arguments must be left alone, the defaults the diagnosis fills in, the generic "raises
exactly where torch raises" property (properties.props_raising). Adding a contract name starts
here (docs/architecture.md, "Adding a contract name").
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from properties.contract import dialect_of
from properties.strategies import Case

REQUIRED = object()  # a parameter without a default


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = REQUIRED
    in_place: bool = False          # the call may change this argument (it must, even)


@dataclass(frozen=True, repr=False)
class Arguments(Case):
    """One call's arguments, as data: positional, keyword, and which of torch's rules they
    are meant to break ('none': a valid corner)."""
    args: tuple
    kwargs: dict
    breakage: str = "none"

    def arguments(self) -> tuple[tuple, dict]:
        return self.args, self.kwargs


@dataclass(frozen=True)
class Signature:
    name: str
    dialect: str                     # 'textbook', 'functional', 'module', or batch_norm's
    family: str                      # 'correlation', 'convolution', 'pooling', 'batch-norm',
    #                                  'module'
    params: tuple[Param, ...]
    mistakes: tuple[str, ...] = ()   # known mistake ids, in the order they are tried
    torch_function: str | None = None    # "raises exactly where this raises" (dotted name)
    raising_examples: tuple[Arguments, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.dialect)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if p.default is not REQUIRED}

    @property
    def may_change(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.in_place)

    def bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        """Argument name -> value for a call, the defaults filled in."""
        return {**self.defaults, **dict(zip(self.arg_names, args)), **kwargs}

    def torch_equivalent(self) -> Callable:
        """torch's own function of the same signature (for the raising rule)."""
        module, _, attribute = self.torch_function.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


def _params(*names: str, **defaults: Any) -> tuple[Param, ...]:
    return tuple(Param(n, defaults.get(n, REQUIRED)) for n in names)


# --------------------------------------------------------------------------- raising examples

def _grid(n: int, dtype=torch.float32) -> torch.Tensor:
    """A (1, 1, n, n) batch of one holding 0 .. n² − 1 shifted to be centred on 0."""
    return (torch.arange(n * n, dtype=dtype) - (n * n) // 2).reshape(1, 1, n, n)


def _conv(breakage: str, x_shape, w_shape, **kwargs) -> Arguments:
    """An explicit conv2d call with arange values and a ones kernel."""
    x = torch.arange(math.prod(x_shape), dtype=torch.float32).reshape(x_shape)
    call = dict(stride=1, padding=0, dilation=1, groups=1) | kwargs
    return Arguments((x, torch.ones(w_shape), None), call, breakage)


def _pool(breakage: str, kernel_size, stride=None, **kwargs) -> Arguments:
    """An explicit pooling call on the 4×4 grid (stride left out when None)."""
    kwargs = ({} if stride is None else {"stride": stride}) | kwargs
    return Arguments((_grid(4), kernel_size), kwargs, breakage)


#: One call per rule torch enforces (and valid corners), run on every target before the
#: drawn ones.
CONV2D_RAISING = (
    _conv("kernel larger than the padded input", (1, 1, 2, 3), (1, 1, 3, 3)),
    _conv("non-positive stride", (1, 1, 4, 4), (1, 1, 2, 2), stride=0),
    _conv("non-positive stride", (1, 1, 4, 4), (1, 1, 2, 2), stride=(1, -1)),
    _conv("non-positive dilation", (1, 1, 4, 4), (1, 1, 2, 2), dilation=(0, 1)),
    _conv("negative padding", (1, 1, 5, 5), (1, 1, 2, 2), padding=-1),
    _conv("negative padding", (1, 1, 5, 5), (1, 1, 2, 2), padding=(0, -1)),
    _conv("'same' with stride above 1", (1, 1, 5, 5), (1, 1, 3, 3), padding="same", stride=2),
    _conv("groups not dividing the output channels", (1, 2, 4, 4), (3, 1, 2, 2), groups=2),
    _conv("groups not dividing the input channels", (1, 3, 4, 4), (2, 1, 2, 2), groups=2),
    _conv("input channels mismatch", (1, 3, 4, 4), (2, 2, 2, 2)),
    _conv("none", (1, 1, 1, 1), (1, 1, 3, 3), padding=1),      # kernel = padded input
    _conv("none", (1, 1, 3, 4), (1, 1, 2, 2), padding="same", dilation=2),
)
MAX_POOL2D_RAISING = (
    _pool("kernel not positive", 0), _pool("stride not positive", 2, 0),
    _pool("negative padding", 3, 1, padding=-1),
    _pool("padding above half the kernel", 2, 1, padding=2),
    _pool("dilation not positive", 2, 1, padding=0, dilation=0),
    _pool("kernel larger than the padded input", 7, 1, padding=1),
    _pool("none", 6, 1, padding=1),                             # kernel = padded input
    _pool("none", 3, 1, padding=1, dilation=2),
)
AVG_POOL2D_RAISING = (
    _pool("kernel not positive", 0), _pool("stride not positive", 2, 0),
    _pool("negative padding", 3, 1, padding=-1),
    _pool("padding above half the kernel", 2, 1, padding=2),
    _pool("kernel larger than the padded input", 7, 1, padding=1),
    _pool("none", 6, 1, padding=1),
    _pool("zero divisor_override", 2, None, padding=0, ceil_mode=False,
          count_include_pad=True, divisor_override=0),
    _pool("none", 2, None, padding=0, ceil_mode=False, count_include_pad=True,
          divisor_override=-3),
)


# --------------------------------------------------------------------------- the records

_CORRELATION_X_K = _params("X", "K")
_BATCH_NORM_TEXTBOOK = ("X", "gamma", "beta", "moving_mean", "moving_var", "eps", "momentum")

SIGNATURES: dict[tuple[str, str], Signature] = {s.key: s for s in (
    Signature("corr2d", "textbook", "correlation", _CORRELATION_X_K,
              mistakes=("flipped-kernel", "kernel-height-for-width", "output-one-short",
                        "half-precision-accumulation")),
    Signature("corr2d_multi_in", "textbook", "correlation", _CORRELATION_X_K,
              mistakes=("channels-averaged", "first-channel-only", "last-channel-only",
                        "flipped-kernel", "output-one-short", "half-precision-accumulation")),
    Signature("corr2d_multi_in_out", "textbook", "correlation", _CORRELATION_X_K,
              mistakes=("output-channels-wrong-axis", "flipped-kernel", "channels-averaged",
                        "first-channel-only", "output-one-short",
                        "half-precision-accumulation")),
    Signature("corr2d_multi_in_out_1x1", "textbook", "correlation", _CORRELATION_X_K,
              mistakes=("reshape-scrambles-channels", "channels-averaged",
                        "half-precision-accumulation")),
    Signature("pool2d", "textbook", "pooling", _params("X", "pool_size", "mode", mode="max"),
              mistakes=("avg-computes-min", "avg-computes-sum", "avg-divisor-wrong",
                        "avg-computes-max",
                        "max-computes-avg", "max-of-absolute-values",
                        "mode-name-unrecognised", "output-one-short",
                        "half-precision-accumulation")),
    *(Signature("batch_norm", dialect, "batch-norm",
                _params(*(("is_training",) if dialect == "d2l-1st" else ()),
                        *_BATCH_NORM_TEXTBOOK),
                mistakes=("bn-input-normalised-in-place", "bn-unbiased-variance-in-normalisation",
                          "bn-eps-outside-sqrt", "bn-wrong-axes", "bn-eval-uses-batch-stats",
                          "bn-training-uses-running-stats", "bn-gamma-beta-swapped",
                          "bn-one-pass-variance", "half-precision-accumulation",
                          "bn-running-stats-not-updated", "bn-momentum-mixed",
                          "bn-running-stats-updated-in-eval"))
      for dialect in ("d2l-1st", "d2l-2nd")),
    Signature("batch_norm", "functional", "batch-norm",
              (Param("input"), Param("running_mean", in_place=True),
               Param("running_var", in_place=True), Param("weight", None), Param("bias", None),
               Param("training", False), Param("momentum", 0.1), Param("eps", 1e-5)),
              mistakes=("bn-input-normalised-in-place", "bn-unbiased-variance-in-normalisation",
                        "bn-eps-outside-sqrt", "bn-wrong-axes", "bn-eval-uses-batch-stats",
                        "bn-training-uses-running-stats", "bn-gamma-beta-swapped",
                        "bn-one-pass-variance", "half-precision-accumulation",
                        "bn-running-stats-not-in-place", "bn-momentum-mixed",
                        "bn-momentum-inverted", "bn-running-var-biased",
                        "bn-running-stats-updated-in-eval")),
    Signature("Conv2D", "module", "module", _params("kernel_size"),
              mistakes=("parameters-not-nn-parameter", "parameters-detached")),
    Signature("BatchNorm", "module", "module", _params("num_features", "num_dims"),
              mistakes=("parameters-not-nn-parameter", "parameters-detached",
                        "bn-moving-var-zeros", "bn-eval-uses-batch-stats",
                        "bn-running-stats-not-updated", "bn-momentum-mixup")),
    Signature("conv2d", "functional", "convolution",
              _params("input", "weight", "bias", "stride", "padding", "dilation", "groups",
                      bias=None, stride=1, padding=0, dilation=1, groups=1),
              mistakes=("flipped-kernel", "stride-ignored", "dilation-ignored",
                        "same-padding-misplaced", "output-one-short", "padding-one-side",
                        "padding-hw-swapped", "groups-ignored", "half-precision-accumulation"),
              torch_function="torch.nn.functional.conv2d", raising_examples=CONV2D_RAISING),
    Signature("max_pool2d", "functional", "pooling",
              _params("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                      stride=None, padding=0, dilation=1, ceil_mode=False),
              mistakes=("max-pool-pads-with-zero", "ceil-window-in-padding-kept",
                        "default-stride-one", "dilation-ignored", "output-one-short",
                        "padding-one-side", "padding-hw-swapped", "max-of-absolute-values"),
              torch_function="torch.nn.functional.max_pool2d",
              raising_examples=MAX_POOL2D_RAISING),
    Signature("avg_pool2d", "functional", "pooling",
              _params("input", "kernel_size", "stride", "padding", "ceil_mode",
                      "count_include_pad", "divisor_override", stride=None, padding=0,
                      ceil_mode=False, count_include_pad=True, divisor_override=None),
              mistakes=("divisor-override-ignored", "count-include-pad-ignored",
                        "ceil-window-in-padding-kept", "default-stride-one",
                        "output-one-short", "padding-one-side", "padding-hw-swapped",
                        "avg-computes-sum", "avg-divisor-wrong", "half-precision-accumulation"),
              torch_function="torch.nn.functional.avg_pool2d",
              raising_examples=AVG_POOL2D_RAISING),
    Signature("LeNet", "module", "module", ()),
)}


def signature(name: str, dialect: str | None = None) -> Signature:
    """The record of `name` in `dialect` (batch_norm's; the others have one dialect)."""
    return SIGNATURES[(name, dialect if name == "batch_norm" else dialect_of(name))]


def signatures_of(name: str) -> list[Signature]:
    """Every record of `name` (batch_norm has one per dialect)."""
    return [s for (n, _), s in SIGNATURES.items() if n == name]

