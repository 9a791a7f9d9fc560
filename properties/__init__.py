"""convcheck's judging side: the target contract, the properties, the diagnosis, the grader.

The façade for property authors (docs/architecture.md, "Adding a property"):

    from properties import Property, Case, tensors, dtypes, assert_matches, Expected

    Property          one declared property: subject, sentence, strategy, check (registry)
    Case, tensors, dtypes, kernel_and_input_sizes, with_layout
                      Hypothesis strategies' building blocks (strategies)
    assert_matches, result_tensor
                      the assertion on a result under the tolerance model (checks)
    mismatch, Mismatch
                      the one comparison, as data (compare)
    Expected, sum_of_products, compared_dtype, unit_roundoff
                      an oracle's value and its error bound (tolerance)
    check_gradients   the gradient check of a function (gradients)
    CallResult, Observation, PropertyFailure
                      what the judge gets back, and how a property says no (results, failures)
    signature         the contract's record of a name (signatures)

Names load on first use, so importing the grader (properties.grading, which never imports
torch) does not import torch through this package.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Property": "properties.registry",
    "Case": "properties.strategies", "tensors": "properties.strategies",
    "dtypes": "properties.strategies", "kernel_and_input_sizes": "properties.strategies",
    "with_layout": "properties.strategies",
    "assert_matches": "properties.checks", "result_tensor": "properties.checks",
    "mismatch": "properties.compare", "Mismatch": "properties.compare",
    "Expected": "properties.tolerance", "sum_of_products": "properties.tolerance",
    "compared_dtype": "properties.tolerance", "unit_roundoff": "properties.tolerance",
    "check_gradients": "properties.gradients",
    "CallResult": "properties.results", "Observation": "properties.results",
    "PropertyFailure": "properties.failures",
    "signature": "properties.signatures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'properties' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return sorted([*globals(), *_EXPORTS])
