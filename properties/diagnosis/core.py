"""The machinery of diagnosis by recomputation (see properties.diagnosis).

A `View` looks at one wrong result: a call (a CallResult: its arguments by name, the defaults
of the contract's signature filled in) or an observation (an Observation: what a property
looked at, with the inputs it was computed from). It splits what was produced into *parts*
and decides whether each agrees with a float64 value, with the one comparison of the suite
(properties.compare.mismatch). A part is "result" (the returned value), "item0", "item1", ...
(items of a returned tuple) or "arg:NAME" (the argument NAME as the call left it: in-place
updates and mistakes).

Known mistakes (properties.diagnosis.mistakes) are recognised by `shows(view)` functions,
most built with `variant`: the part is wrong (it agrees with no correct value) and agrees
with one of the mistake's float64 values. A value may be defined on part of its shape only
(`Expected.defined`: a window that only exists in the wrong output shape).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from properties.compare import mismatch
from properties.failures import PropertyFailure
from properties.results import CallResult
from properties.tolerance import Expected, unit_roundoff

F64 = torch.float64
RESULT = "result"


def item(index: int) -> str:
    """The part naming the `index`-th item of a returned tuple."""
    return f"item{index}"


def arg_after(name: str) -> str:
    """The part naming the argument `name` as it was after the call."""
    return f"arg:{name}"


@dataclass
class View:
    """One wrong result as the diagnosis sees it.

    subject     what it is a result of: the contract name for a call, "NAME:STAGE" for an
                observation (e.g. "BatchNorm:fresh-evaluation")
    params      argument name -> value as sent (a call: defaults of the signature filled in;
                an observation: the inputs it was computed from)
    after       argument name -> value after the call ({} for an observation)
    dialect     the contract name's dialect (batch_norm: 'd2l-1st', 'd2l-2nd', 'functional')
    conventions the detected conventions of the target for this name ({} when unknown)
    correct     part -> the correct values (any one of them is right)
    """
    result: object                    # properties.results.CallResult or Observation
    subject: str
    params: dict
    after: dict
    dialect: str | None
    input_dtype: torch.dtype
    conventions: dict = field(default_factory=dict)
    correct: dict = field(default_factory=dict)
    may_change: tuple = ()
    _cache: dict = field(default_factory=dict)

    @property
    def call(self) -> CallResult | None:
        return self.result if isinstance(self.result, CallResult) else None

    @property
    def name(self) -> str:
        return self.result.name

    def value(self, part: str) -> torch.Tensor | None:
        """The part as a tensor, or None when it is not a tensor (or does not exist)."""
        try:
            if part == RESULT:
                return self.result.tensor()
            if part.startswith("item"):
                return self.result.tensor(int(part[4:]))
            value = self.after.get(part.removeprefix("arg:"))
            return value if isinstance(value, torch.Tensor) else None
        except PropertyFailure:
            return None

    def agrees(self, part: str, expected: Expected | None,
               precision: torch.dtype | None = None) -> bool:
        """Whether the part equals `expected` under the tolerance model (at `precision` when
        given, else the compared precision). Never raises."""
        got = self.value(part)
        if expected is None or got is None:
            return False
        try:
            return mismatch(got, expected, input_dtype=self.input_dtype,
                            precision=precision) is None
        except (RuntimeError, ValueError, TypeError, IndexError):
            return False

    def wrong(self, part: str) -> bool:
        """True when the part agrees with none of its correct values (and they are known)."""
        if part not in self._cache:
            values = self.correct.get(part)
            self._cache[part] = bool(values) and self.value(part) is not None and not any(
                self.agrees(part, e) for e in values)
        return self._cache[part]

    def is_wrong(self) -> bool:
        """Whether any part is wrong, or an argument changed that the contract says must not
        (the signature's in-place parameters may)."""
        return any(self.wrong(part) for part in self.correct) or any(
            self.changed(name) for name in self.params if name not in self.may_change)

    def changed(self, name: str) -> bool:
        """Whether the argument `name` differs after the call from what was sent."""
        before, after = self.params.get(name), self.after.get(name)
        if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor):
            return False
        return before.shape != after.shape or not torch.equal(
            before.detach().cpu().to(F64).nan_to_num(), after.detach().cpu().to(F64).nan_to_num())


# --------------------------------------------------------------------------- recognising

Shows = Callable[[View], bool]
Values = Callable[[View], Iterable[Expected | None]]


def variant(values: Values, part: str = RESULT,
            when: Callable[[View], bool] = lambda view: True) -> Shows:
    """A mistake recognised by its values: `part` is wrong (it agrees with no correct value)
    and agrees with one of `values(view)` (computed lazily; one that cannot be computed is
    passed over)."""
    def shows(view: View) -> bool:
        if not when(view) or not view.wrong(part):
            return False
        return explains(view)

    def explains(view: View) -> bool:
        """The part agrees with the mistake's value, wrong or not (on some inputs a mistake
        computes the right value: it still explains the result); where the mistake has no
        value to compute (it cannot happen on this input), a right result is explained."""
        found = list(_safely(values, view)) if when(view) else []
        if not found:
            return not view.wrong(part)
        return any(view.agrees(part, e) for e in found)
    shows.explains = explains
    return shows


def _safely(values: Values, view: View) -> Iterable[Expected]:
    """The variants one by one, skipping any whose computation fails (a wrong computation may
    be undefined for these arguments: torch refuses, a shape goes negative)."""
    try:
        iterator = iter(values(view))
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError):
        return
    while True:
        try:
            found = next(iterator)
        except StopIteration:
            return
        except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError):
            continue
        if found is not None:
            yield found


#: A result rounded to a precision of unit roundoff u is off by about u·|y| somewhere: errors
#: below this fraction of that are not half precision's (a float32 formula's mistake of a few
#: float32 ulps is not).
HALF_ERROR_FRACTION = 1 / 16


def half_precision(part: str = RESULT) -> Shows:
    """The part is wrong at the compared precision but right at float16's or bfloat16's, and
    its error is of the size half precision leaves — at least HALF_ERROR_FRACTION · u_half·|y|
    on some element —: the computation (or its accumulation) ran in half precision."""
    def shows(view: View) -> bool:
        if not view.wrong(part):
            return False
        got = view.value(part)
        return any(view.agrees(part, e, precision=half) and _half_sized(got, e, half)
                   for e in view.correct.get(part, ())
                   for half in (torch.float16, torch.bfloat16))

    shows.explains = shows   # half precision changes a generic result: a right one is not its
    return shows


def _half_sized(got: torch.Tensor, expected: Expected, half: torch.dtype) -> bool:
    want = expected.value.to(F64)
    error = (got.detach().to(F64).cpu() - want).abs()
    floor = HALF_ERROR_FRACTION * unit_roundoff(half) * want.abs()
    return bool(((error >= floor) & (want != 0) & error.isfinite()).any())


half_precision_result = half_precision()


# --------------------------------------------------------------------------- helpers

def reshaped(expected: Expected, shape: Sequence[int]) -> Expected:
    """`expected` cropped or extended to `shape` (aligned at the start of every axis); the
    added elements are undefined (not compared)."""
    shape = tuple(int(s) for s in shape)
    if any(s <= 0 for s in shape):
        raise ValueError(f"no output of shape {shape}")
    source = expected.value.to(F64)
    value = torch.zeros(shape, dtype=F64)
    defined = torch.zeros(shape, dtype=torch.bool)
    overlap = tuple(slice(0, min(a, b)) for a, b in zip(shape, source.shape))
    value[overlap] = source[overlap]
    defined[overlap] = True if expected.defined is None else \
        expected.defined.expand(source.shape)[overlap]

    def bound(u: float):
        full = torch.as_tensor(expected.bound(u), dtype=F64).expand(source.shape)
        out = torch.zeros(shape, dtype=F64)
        out[overlap] = full[overlap]
        return out
    return Expected(value, bound, defined)


def cropped(expected: Expected, rows: int, cols: int) -> Expected:
    """The last two axes shortened by `rows` and `cols` (an output one short)."""
    shape = list(expected.value.shape)
    shape[-2] -= rows
    shape[-1] -= cols
    return reshaped(expected, shape)


def one_short(expected: Expected) -> list[Expected]:
    """The output one row short, one column short, or both."""
    return [cropped(expected, r, c) for r, c in ((1, 0), (0, 1), (1, 1))
            if expected.value.shape[-2] > r and expected.value.shape[-1] > c]


def scaled(expected: Expected, factor: float) -> Expected:
    """`factor` times the value, under the correspondingly scaled bound."""
    return Expected(expected.value * factor,
                    lambda u: torch.as_tensor(expected.bound(u), dtype=F64) * abs(factor),
                    expected.defined)


def pair(value) -> tuple[int, int]:
    """An int-or-pair argument as (height value, width value)."""
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))
