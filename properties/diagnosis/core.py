"""The machinery of diagnosis by recomputation (see properties.diagnosis).

A `View` looks at one wrong call (a CallResult): its arguments by name, the *parts* of what it
produced and whether each part agrees with a float64 value under the tolerance model.
A part is "result" (the returned value), "item0", "item1", ... (items of a returned tuple) or
"arg:NAME" (the argument NAME as it was after the call: in-place updates and mistakes).

A `Mistake` is a known wrong computation: an id, one line saying what it is, and `shows(view)`
deciding whether the call's outcome is that mistake's. Most mistakes are built with `variant`:
the part is wrong (it agrees with no correct value) and agrees with one of the mistake's
float64 variants. A variant value may hold NaN where the wrong computation is undefined (a
window that only exists in the wrong output shape): those elements are not compared, but the
shape must be the variant's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from properties.failures import PropertyFailure
from properties.target import IN_PLACE_ALLOWED
from properties.tolerance import LOWEST_COMPARED, Expected, compared_dtype, unit_roundoff

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
    """One wrong call as the diagnosis sees it.

    params      argument name -> value as sent (defaults of the contract's signature filled in)
    after       argument name -> value after the call
    dialect     the contract name's dialect (batch_norm: 'd2l-1st', 'd2l-2nd', 'functional')
    conventions the detected conventions of the target for this name ({} when unknown)
    correct     part -> the correct values (any one of them is right), set by the Spec
    """
    call: object                      # properties.target.CallResult
    params: dict
    after: dict
    dialect: str | None
    input_dtype: torch.dtype
    conventions: dict = field(default_factory=dict)
    correct: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    def value(self, part: str) -> torch.Tensor | None:
        """The part as a tensor, or None when it is not a tensor (or does not exist)."""
        try:
            if part == RESULT:
                return self.call.tensor()
            if part.startswith("item"):
                return self.call.tensor(int(part[4:]))
            value = self.after.get(part.removeprefix("arg:"))
            return value if isinstance(value, torch.Tensor) else None
        except PropertyFailure:
            return None

    def agrees(self, part: str, expected: Expected | None,
               compare_at: torch.dtype | None = None) -> bool:
        """Whether the part equals `expected` within its bound at the compared precision (the
        lower of the input's and the part's, or `compare_at`); NaN in `expected` means
        "undefined here, not compared". Never raises."""
        if expected is None:
            return False
        got = self.value(part)
        try:
            return _within(got, expected, self.input_dtype, compare_at)
        except (RuntimeError, ValueError, TypeError, IndexError):
            return False

    def wrong(self, part: str) -> bool:
        """True when the part agrees with none of its correct values (and the Spec knows them)."""
        if part not in self._cache:
            values = self.correct.get(part)
            self._cache[part] = bool(values) and self.value(part) is not None and not any(
                self.agrees(part, e) for e in values)
        return self._cache[part]

    def is_wrong(self) -> bool:
        """Whether any part is wrong, or an argument changed that the contract says must not
        (properties.target.IN_PLACE_ALLOWED)."""
        may_change = IN_PLACE_ALLOWED.get((self.call.name, self.dialect), ())
        return any(self.wrong(part) for part in self.correct) or any(
            self.changed(name) for name in self.params if name not in may_change)

    def changed(self, name: str) -> bool:
        """Whether the argument `name` differs after the call from what was sent."""
        before, after = self.params.get(name), self.after.get(name)
        if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor):
            return False
        return before.shape != after.shape or not torch.equal(
            before.detach().cpu().to(F64).nan_to_num(), after.detach().cpu().to(F64).nan_to_num())


def _within(got: torch.Tensor | None, expected: Expected, input_dtype: torch.dtype,
            compare_at: torch.dtype | None) -> bool:
    """The comparison of properties.checks.assert_matches, with NaN in the expected value
    marking elements that are not compared."""
    if got is None or not got.dtype.is_floating_point and input_dtype.is_floating_point:
        return False
    want = expected.value.detach().to(F64).cpu()
    if tuple(got.shape) != tuple(want.shape):
        return False
    defined = ~want.isnan()
    if want.numel() and not bool(defined.any()):
        return False
    # A mistake may be recognised at half precision (compare_at float16 or bfloat16), below
    # the lowest precision a result is ever compared at.
    cmp = compare_at if compare_at is not None and \
        unit_roundoff(compare_at) > unit_roundoff(LOWEST_COMPARED) else \
        compared_dtype(input_dtype, got.dtype, *([compare_at] if compare_at else []))
    u = unit_roundoff(cmp)
    got = got.detach().to(F64).cpu()
    reference = want.to(cmp).to(F64)
    bound = torch.as_tensor(expected.bound(u), dtype=F64)
    allowed = bound.nan_to_num(nan=0.0) + u * want.abs()
    close = (got - reference).abs() <= allowed
    same_inf = torch.isinf(got) & (got == reference)
    return bool((close | same_inf | ~defined).all())


# --------------------------------------------------------------------------- mistakes

@dataclass(frozen=True)
class Mistake:
    """A known mistake: `shows(view)` is True when the call's outcome is this mistake's."""
    id: str
    says: str
    shows: Callable[[View], bool]

    def line(self) -> str:
        return f"{self.id}: {self.says}"


Variants = Callable[[View], Iterable[Expected | None]]


def variant(mistake_id: str, says: str, values: Variants, part: str = RESULT,
            when: Callable[[View], bool] = lambda view: True) -> Mistake:
    """A mistake recognised by its values: `part` is wrong and agrees with one of
    `values(view)` (computed lazily; one that cannot be computed is passed over)."""
    def shows(view: View) -> bool:
        if not when(view) or not view.wrong(part):
            return False
        return any(view.agrees(part, e) for e in _safely(values, view))
    return Mistake(mistake_id, says, shows)


def _safely(values: Variants, view: View) -> Iterable[Expected]:
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


def half_precision(part: str = RESULT) -> Mistake:
    """The part is wrong at the compared precision but right at float16's or bfloat16's: the
    computation (or its accumulation) ran in half precision."""
    def shows(view: View) -> bool:
        if not view.wrong(part):
            return False
        return any(view.agrees(part, e, compare_at=half)
                   for e in view.correct.get(part, ())
                   for half in (torch.float16, torch.bfloat16))
    return Mistake("half-precision-accumulation",
                   "the result is as accurate as a float16/bfloat16 computation, not as the "
                   "input's precision (accumulate in the input's dtype)", shows)


@dataclass(frozen=True)
class Spec:
    """How to diagnose calls of one contract name: its correct values and known mistakes."""
    correct: Callable[[View], dict[str, Sequence[Expected]]]
    mistakes: Sequence[Mistake]


# --------------------------------------------------------------------------- helpers

def reshaped(expected: Expected, shape: Sequence[int]) -> Expected:
    """`expected` cropped or extended to `shape` (aligned at the start of every axis); the
    added elements are undefined (NaN: not compared)."""
    shape = tuple(int(s) for s in shape)
    if any(s <= 0 for s in shape):
        raise ValueError(f"no output of shape {shape}")
    source = expected.value.to(F64)
    value = torch.full(shape, float("nan"), dtype=F64)
    overlap = tuple(slice(0, min(a, b)) for a, b in zip(shape, source.shape))
    value[overlap] = source[overlap]

    def bound(u: float):
        full = torch.as_tensor(expected.bound(u), dtype=F64).expand(source.shape)
        out = torch.zeros(shape, dtype=F64)
        out[overlap] = full[overlap]
        return out
    return Expected(value, bound)


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
                    lambda u: torch.as_tensor(expected.bound(u), dtype=F64) * abs(factor))


def pair(value) -> tuple[int, int]:
    """An int-or-pair argument as (height value, width value)."""
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))
