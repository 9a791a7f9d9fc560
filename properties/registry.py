"""The Property type and how one runs under Hypothesis.

A property is declared once — the contract name it is about, a sentence, a strategy of cases
and a check — and `tests/test_properties.py` turns every declared property into one pytest
item. `check(target, case)` asks the target for results (through `target.call`/`target.run`)
and raises PropertyFailure when the property does not hold.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from properties.diagnosis import explain
from properties.failures import PropertyFailure, property_failures
from properties.target import UNRESPONSIVE_PROPERTY


@dataclass(frozen=True)
class Property:
    subject: str                                   # the contract name it is about
    title: str                                     # reads as a sentence after the name
    strategy: st.SearchStrategy                    # draws one case
    check: Callable[[Any, Any], None]              # check(target, case)
    dialects: tuple[str, ...] | None = None        # batch_norm: the dialects it applies to
    examples: tuple = ()                           # must-run cases (the textbook's own)
    budget: float = 1.0                            # fraction of the profile's max_examples
    skip_unless: Callable[[Any], str | None] | None = None  # target -> reason to skip, or None

    @property
    def test_id(self) -> str:
        return f"{self.subject} {self.title}"

    def verify(self, target) -> None:
        """Run the property against `target` (skips when the target does not define the name)."""
        if not target.defines(self.subject):
            pytest.skip(f"target does not define {self.subject}")
        dialect = target.dialect(self.subject)
        if self.dialects is not None and dialect not in self.dialects:
            pytest.skip(f"applies to the {'/'.join(self.dialects)} {self.subject}, "
                        f"not the {dialect} one")
        reason = self.skip_unless(target) if self.skip_unless else None
        if reason:
            pytest.skip(reason)
        if self.subject in target.unresponsive:
            kind, message = target.unresponsive[self.subject]
            raise PropertyFailure(self.subject, message, prop=UNRESPONSIVE_PROPERTY, kind=kind)

        def run_case(case):
            try:
                self.check(target, case)
            except PropertyFailure as failure:
                failure.prop = failure.prop or self.title
                raise

        # Hypothesis keys its example database and its derandomized seed by a digest of the
        # test function, which includes its signature: one signature per property (the
        # property's words as its return annotation) keeps them apart.
        run_case.__name__ = run_case.__qualname__ = "property"
        run_case.__signature__ = inspect.Signature(
            [inspect.Parameter("case", inspect.Parameter.POSITIONAL_OR_KEYWORD)],
            return_annotation=self.test_id)
        test = given(case=self.strategy)(run_case)
        for case in reversed(self.examples):
            test = example(case=case)(test)
        if self.budget != 1.0:
            test = settings(max_examples=max(1, round(settings().max_examples * self.budget)))(
                test)
        try:
            test()
        except BaseException as exc:
            # What Hypothesis reports is each distinct failure's minimal example: only these
            # pay for the diagnosis (properties.diagnosis), not every shrinking step.
            for failure in property_failures(exc):
                explain(failure, target)
            raise


def properties_of(*modules) -> list[Property]:
    """All Property objects declared in `modules` (each module lists them in PROPERTIES)."""
    found = []
    for module in modules:
        found.extend(module.PROPERTIES)
    return found
