"""Assertions on a target's result: the one comparison (properties.compare.mismatch) turned
into a failure a student can read."""
from __future__ import annotations

import torch

from properties.compare import Mismatch, mismatch
from properties.tolerance import Expected

#: The property a failure of the contract's dtype rules is filed as.
DTYPE_PROPERTIES = {"integer": "returns a floating-point result",
                    "dtype": "keeps the input's dtype"}


def result_tensor(result, input_dtype: torch.dtype, *, index: int | None = None,
                  what: str = "result", same_dtype: bool = False) -> torch.Tensor:
    """The result (or its `index`-th item) as a tensor, held to the contract's dtype rules:
    an integer result for floating input is wrong; with `same_dtype` (functional dialect) the
    result's dtype must be the input's."""
    value = result.tensor(index, what)
    if input_dtype.is_floating_point and not value.dtype.is_floating_point:
        _fail(result, Mismatch("integer", what, value, value, value.dtype, input_dtype))
    if same_dtype and value.dtype != input_dtype:
        _fail(result, Mismatch("dtype", what, value, value, value.dtype, input_dtype))
    return value


def assert_matches(result, expected: Expected, *, input_dtype: torch.dtype,
                   oracle: str = "the float64 oracle", index: int | None = None,
                   what: str = "result", same_dtype: bool = False, prop: str | None = None,
                   compare_at: torch.dtype | None = None) -> None:
    """The result (a CallResult or an Observation; its `index`-th item when given) agrees
    with `expected` under the tolerance model (properties.compare), else a PropertyFailure
    saying how. `compare_at` lowers the compared precision further, when the expected value
    is itself another computed result (e.g. the target's own float32 result of a related
    function)."""
    value = result.tensor(index, what)
    found = mismatch(value, expected, input_dtype=input_dtype, what=what,
                     same_dtype=same_dtype, compare_at=compare_at)
    if found is not None:
        _fail(result, found, oracle, prop)


def _fail(result, found: Mismatch, oracle: str = "the float64 oracle",
          prop: str | None = None):
    raise result.failure(found.summary(oracle), details=found.details(),
                         prop=DTYPE_PROPERTIES.get(found.kind, prop), mismatch=found)
