"""Hypothesis strategies that reach the corners without heavy filtering.

Shapes are drawn *kernel first, then input at least as large* (or parameters first, then the
input that makes them valid), so nothing is filtered away. Values mix integer-valued floats
(the float64 oracle is then exact) with arbitrary floats, negatives included; they shrink
towards zeros and small integers, so a minimal failing example is easy to read.

Every case is a `Case`: a frozen dataclass whose repr is runnable Python.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from properties.snippets import value_literal

FLOAT_DTYPES = (torch.float32, torch.float64)


@dataclasses.dataclass(frozen=True)
class Case:
    """Base for drawn cases: repr shows each field as a runnable literal."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={value_literal(getattr(self, f.name))}"
                           for f in dataclasses.fields(self))
        return f"{type(self).__name__}({fields})"


def dtypes() -> st.SearchStrategy[torch.dtype]:
    return st.sampled_from(FLOAT_DTYPES)


def _elements(kind: str, low: float, high: float):
    if kind == "integers":
        return st.integers(int(low), int(high)).map(float)
    return st.one_of(st.integers(int(low), int(high)).map(float),
                     st.floats(low, high, allow_nan=False, allow_infinity=False, width=32))


@st.composite
def tensors(draw, shape: Sequence[int], dtype: torch.dtype | None = None, *,
            low: float = -8.0, high: float = 8.0, integer_valued: bool | None = None,
            label: str = "tensor") -> torch.Tensor:
    """A tensor of `shape` (dtype drawn if None) with entries in [low, high]: integer-valued
    ones (`integer_valued` True), general floats (False), or either (None: drawn)."""
    dtype = dtype or draw(dtypes(), label=f"{label} dtype")
    kind = {True: "integers", False: "floats"}.get(integer_valued) or \
        draw(st.sampled_from(["integers", "floats"]), label=f"{label} values")
    array = draw(hnp.arrays(np.float64, tuple(shape), elements=_elements(kind, low, high)),
                 label=label)
    return torch.from_numpy(array).to(dtype)


@st.composite
def kernel_and_input_sizes(draw, *, max_kernel: int = 4, max_extra: int = 4,
                           label: str = "") -> tuple[int, int]:
    """(k, n) with n >= k: the kernel may be as large as the input."""
    k = draw(st.integers(1, max_kernel), label=f"{label}kernel size")
    n = k + draw(st.integers(0, max_extra), label=f"{label}extra input size")
    return k, n


NONCONTIGUOUS_LAYOUTS = ("contiguous", "channels_last", "transposed", "strided")


def with_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values as `t` in another memory layout (for the functional dialect)."""
    if layout == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "transposed" and t.dim() >= 2:
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "strided":
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    return t


def layouts() -> st.SearchStrategy[str]:
    return st.sampled_from(NONCONTIGUOUS_LAYOUTS)
