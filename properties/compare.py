"""The one comparison of a result with an expected value under the tolerance model.

    mismatch(got, expected, input_dtype=...) -> Mismatch | None

None means "agrees": every compared element satisfies

    |got − round(expected)| ≤ bound(u) + u·|expected| + UNDERFLOW_ALLOWANCE · tiny

at the compared precision (u its unit roundoff, tiny its smallest normal number; properties/
tolerance.py), where round() rounds the float64 expected value to that precision. NaN agrees
with NaN, an infinity with the same infinity. Elements outside `expected.defined` (a mask the
diagnosis uses for windows that only exist in a wrong output's shape) are not compared, but
the shape must be the expected one, and an expected value with no defined element agrees
with nothing.

A Mismatch is data: what kind of disagreement (an integer result for floating input, a dtype
the functional dialect does not allow, a shape, values), with the numbers a message, a
diagnosis or a picture needs. `properties.checks.assert_matches` turns one into a failure;
the diagnosis (properties.diagnosis) asks the same question of each known mistake's value.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from properties.tolerance import UNDERFLOW_ALLOWANCE, Expected, compared_dtype, unit_roundoff

F64 = torch.float64


@dataclass(frozen=True)
class Mismatch:
    """How a result disagrees with its expected value.

    kind      'integer' (integer result for floating input), 'dtype' (not the input's dtype,
              where it must be), 'shape', 'values'
    expected  the expected value (float64), got the result (float64 for 'values' and 'shape')
    bad       for 'values': the mask of elements outside their allowed error
    where     for 'values': the first bad element's index; error and allowed there
    """
    kind: str
    what: str
    expected: torch.Tensor
    got: torch.Tensor
    got_dtype: torch.dtype
    input_dtype: torch.dtype
    compared_at: torch.dtype | None = None
    bad: torch.Tensor | None = None
    allowed: torch.Tensor | None = None
    where: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        return int(self.bad.sum()) if self.bad is not None else 0

    @property
    def error_at(self) -> float:
        return float((self.got[self.where] - self.expected[self.where]).abs())

    @property
    def allowed_at(self) -> float:
        return float(self.allowed[self.where])

    def summary(self, oracle: str = "the float64 oracle") -> str:
        """One line saying what disagrees (the student reads it first)."""
        if self.kind == "integer":
            return (f"{self.what} has dtype {self.got_dtype} for {self.input_dtype} input: an "
                    "integer result cannot hold the values")
        if self.kind == "dtype":
            return (f"{self.what} has dtype {self.got_dtype} for {self.input_dtype} input; the "
                    "functional dialect keeps the input's dtype, as torch does")
        if self.kind == "shape":
            return (f"{self.what} has shape {tuple(self.got.shape)}, expected "
                    f"{tuple(self.expected.shape)}")
        where = self.where
        return (f"{self.what} differs from {oracle} at {list(where)}: expected "
                f"{float(self.expected[where]):.9g}, got {float(self.got[where]):.9g} (error "
                f"{self.error_at:.3g}, allowed {self.allowed_at:.3g}; {self.count} of "
                f"{self.bad.numel()} elements wrong)")

    def details(self) -> list[str]:
        """The values around the first difference, expected above got."""
        if self.kind not in ("shape", "values"):
            return []
        centre = self.where if self.kind == "values" else None
        return [f"expected: {format_values(self.expected, centre)}",
                f"got:      {format_values(self.got, centre)}"]


def mismatch(got: torch.Tensor, expected: Expected, *, input_dtype: torch.dtype,
             what: str = "result", same_dtype: bool = False,
             compare_at: torch.dtype | None = None,
             precision: torch.dtype | None = None) -> Mismatch | None:
    """None when `got` agrees with `expected` (module docstring), else how it does not.

    The compared precision is the lower of the input's and the result's (and `compare_at`'s,
    when the expected value is itself another computed result), never below float32
    (tolerance.compared_dtype); `precision` overrides it (the diagnosis asks whether a result
    is as accurate as a half-precision computation)."""
    if input_dtype.is_floating_point and not got.dtype.is_floating_point:
        return Mismatch("integer", what, expected.value, got, got.dtype, input_dtype)
    if same_dtype and got.dtype != input_dtype:
        return Mismatch("dtype", what, expected.value, got, got.dtype, input_dtype)
    want = expected.value.detach().to(F64).cpu()
    value = got.detach().to(F64).cpu()
    if tuple(value.shape) != tuple(want.shape):
        return Mismatch("shape", what, want, value, got.dtype, input_dtype)
    cmp = precision or compared_dtype(input_dtype, got.dtype,
                                      *([compare_at] if compare_at else []))
    u = unit_roundoff(cmp)
    reference = want.to(cmp).to(F64)
    bound = torch.as_tensor(expected.bound(u), dtype=F64)
    allowed = (bound + u * want.abs() + UNDERFLOW_ALLOWANCE * torch.finfo(cmp).tiny) \
        .expand_as(want)
    error = (value - reference).abs()
    ok = (error <= allowed) | (value.isnan() & want.isnan()) | \
        (torch.isinf(value) & (value == reference))
    if expected.defined is not None:
        defined = expected.defined.expand_as(want)
        if want.numel() and not bool(defined.any()):
            return Mismatch("values", what, want, value, got.dtype, input_dtype, cmp,
                            torch.ones_like(ok), allowed, (0,) * want.dim())
        ok = ok | ~defined
    if bool(ok.all()):
        return None
    bad = ~ok
    where = tuple(int(i) for i in bad.nonzero()[0])
    return Mismatch("values", what, want, value, got.dtype, input_dtype, cmp, bad, allowed,
                    where)


def format_values(t: torch.Tensor, centre: tuple[int, ...] | None = None, width: int = 3) -> str:
    """Small tensors in full; large ones as the 2-D window around `centre`."""
    t = t.detach().to(F64).cpu()
    if t.numel() <= 36 or t.dim() == 0:
        return _round_list(t.tolist())
    centre = centre or (0,) * t.dim()
    index, header = [], []
    for d, c in enumerate(centre):
        if d < t.dim() - 2:
            index.append(c)
            header.append(str(c))
        else:
            lo = max(0, c - width)
            hi = min(t.shape[d], c + width + 1)
            index.append(slice(lo, hi))
            header.append(f"{lo}:{hi}")
    return f"[{', '.join(header)}] = {_round_list(t[tuple(index)].tolist())}"


def _round_list(values) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_round_list(v) for v in values) + "]"
    return f"{values:.6g}"
