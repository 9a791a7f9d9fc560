"""PropertyFailure: how a property says no, in words a student can act on, and as data.

A failure's `kind` says what happened, set where it happens (never read back from its text):

    wrong          the result (or an observed value) is not what the contract says
    raised         the target raised an exception
    timeout        a call did not return within the time limit (later calls are not made)
    crash          the process running the target died (later calls are not made)
    memory         the target ran out of memory (later calls are not made)
    state-changed  the call changed something it must leave alone (an input, in place)
    forbidden      the call used an operation the assignment forbids (the grader's rules)
"""
from __future__ import annotations

from typing import Sequence

KINDS = ("wrong", "raised", "timeout", "crash", "memory", "state-changed", "forbidden")
#: Kinds after which the name is not called again (the target is unresponsive for it).
UNRESPONSIVE = ("timeout", "crash", "memory")


class CallLine(str):
    """A failure's detail line that names the call made ("called: corr2d(X: float32 (3, 4),
    ...)"): the report shows these lines first, found by their type."""

    @classmethod
    def of(cls, description: str) -> CallLine:
        return cls(f"called: {description}")


class PropertyFailure(AssertionError):
    """A property does not hold for the target.

    culprit   the contract name whose result was wrong (the report files the failure there)
    summary   one line: what is wrong
    details   further lines: the call, expected, got, where they first differ
    example   a runnable Python snippet reproducing the call, or None
    prop      the property's sentence (filled in by the property runner when left None)
    diagnosis the known mistake that explains the result as the report prints it
              ("ID: what it is", maybe "also consistent with ..."), or None
    mistake   that mistake's id alone (set with the diagnosis), or None
    result    the properties.results.CallResult or Observation that was wrong, if one is
    kind      what happened (module docstring)
    mismatch  the properties.compare.Mismatch behind a wrong value, when there is one
    """

    def __init__(self, culprit: str, summary: str, *, details: Sequence[str] = (),
                 example: str | None = None, prop: str | None = None,
                 diagnosis: str | None = None, result=None, kind: str = "wrong",
                 mismatch=None):
        assert kind in KINDS, kind
        self.culprit, self.summary, self.details = culprit, summary, list(details)
        self.result = result
        self.example, self.prop, self.diagnosis = example, prop, diagnosis
        self.kind, self.mismatch = kind, mismatch
        self.mistake: str | None = None
        super().__init__(summary)

    @property
    def call(self):
        """The wrong call (a CallResult), when one call shows the failure: the diagnosis
        recomputes known mistakes from its arguments."""
        return self.result if getattr(self.result, "is_call", False) else None

    @property
    def observation(self):
        """The wrong Observation (not a call), when the failure is about one."""
        return self.result if getattr(self.result, "is_observation", False) else None

    def one_line(self) -> str:
        return f"{self.summary}" if not self.details else f"{self.summary} [{self.details[0]}]"

    def __str__(self) -> str:
        lines = [f"{self.culprit} — {self.prop or 'property'}", f"  {self.summary}"]
        lines += [f"  {line}" for line in self.details]
        if self.diagnosis:
            lines.append(f"  diagnosis: {self.diagnosis}")
        if self.example:
            lines.append("  to replay, run:")
            lines += [f"    {line}" for line in self.example.splitlines()]
        return "\n".join(lines)


def property_failures(exc: BaseException | None) -> list[PropertyFailure]:
    """Every PropertyFailure inside `exc`, looking through exception groups and causes."""
    found, seen, stack = [], set(), [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PropertyFailure):
            found.append(current)
            continue
        stack.extend(getattr(current, "exceptions", ()))
        stack.extend([current.__cause__, current.__context__])
    return found


def find_property_failure(exc: BaseException | None) -> PropertyFailure | None:
    """The PropertyFailure a test's outcome reports (the first property_failures finds; of
    an exception group, its last member), or None."""
    found = property_failures(exc)
    return found[0] if found else None
