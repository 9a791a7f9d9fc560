"""What the judge gets back from a target, as data.

A value crosses from the target (possibly another process) as `portable(value)`: a plain
dict saying what it was ("tensor", "numpy", "number", "tuple"/"list" of items, "other").

Two kinds of results are judged:
- `CallResult`: one call of a contract function (properties.target.Target.call builds it):
  the arguments as sent and as the call left them, what it returned, how to show and replay
  it. Its failures carry the call, so the diagnosis can recompute known mistakes from it.
- `Observation`: anything else a property looks at — a gradient, a module's output, a
  statistic the module kept — with the description and the replay script of how it was
  obtained. Its failures carry no call: nothing to recompute by value.

Both answer `tensor(part)` and `failure(summary, ...)`. A part is None (the returned value),
an int (that item of a returned tuple), or an argument's name (that argument as the call left
it: the functional batch_norm's running statistics are updated in place).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from properties.failures import CallLine, PropertyFailure

#: The contract's rule for what a result may be: the property such a failure is filed as.
RESULT_KIND_PROPERTY = "returns what the contract says"


def portable(value: Any) -> dict:
    """A result as plain data that crosses a process boundary and says what it was."""
    if isinstance(value, torch.Tensor):
        return {"kind": "tensor", "value": value.detach()}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"kind": "other", "type": "numpy object array", "repr": repr(value)[:200]}
        return {"kind": "numpy", "value": torch.from_numpy(np.array(value))}
    if isinstance(value, np.generic):
        return {"kind": "number", "value": value.item()}
    if isinstance(value, (bool, int, float)):
        return {"kind": "number", "value": value}
    if isinstance(value, (tuple, list)):
        return {"kind": type(value).__name__, "items": [portable(v) for v in value]}
    if value is None:
        return {"kind": "other", "type": "NoneType", "repr": "None"}
    return {"kind": "other", "type": type(value).__name__, "repr": repr(value)[:200]}


def copy_to(value: Any, device: torch.device | str = "cpu") -> Any:
    """A copy on `device` with the same strides, so non-contiguous inputs stay non-contiguous
    (tensors inside tuples, lists and dicts too): what is sent to a target, which may change
    it, is never the caller's own tensor."""
    if isinstance(value, torch.Tensor):
        copy = torch.empty_strided(value.size(), value.stride(), dtype=value.dtype,
                                   device=device)
        return copy.copy_(value)
    if isinstance(value, tuple):
        return tuple(copy_to(v, device) for v in value)
    if isinstance(value, list):
        return [copy_to(v, device) for v in value]
    if isinstance(value, dict):
        return {k: copy_to(v, device) for k, v in value.items()}
    return value


def describe_portable(returned: dict) -> str:
    """'a tuple of 2', 'the number 3', 'a NoneType (None)', 'a tensor'."""
    kind = returned["kind"]
    if kind in ("tuple", "list"):
        return f"a {kind} of {len(returned['items'])}"
    if kind == "number":
        return f"the number {returned['value']!r}"
    if kind == "other":
        return f"a {returned['type']} ({returned['repr'][:60]})"
    return f"a {kind}"


def is_none(returned: dict) -> bool:
    return returned["kind"] == "other" and returned["type"] == "NoneType"


@dataclass
class Result:
    """A value the judge got from the target: what it was (`returned`, portable form), which
    contract name it is about, what was done to get it and a script that does it again."""
    name: str
    returned: dict
    description: str
    example: str

    def tensor(self, part: int | str | None = None, what: str = "result") -> torch.Tensor:
        """The part as a tensor, or a PropertyFailure saying what it is instead."""
        returned = self.returned
        if isinstance(part, int):
            if returned["kind"] not in ("tuple", "list") or len(returned["items"]) <= part:
                raise self.failure(f"returned {describe_portable(returned)}, expected a tuple "
                                   f"with at least {part + 1} items", prop=RESULT_KIND_PROPERTY)
            returned = returned["items"][part]
        if returned["kind"] not in ("tensor", "numpy"):
            raise self.failure(f"{what} is {describe_portable(returned)}, expected a tensor or "
                               "numpy array", prop=RESULT_KIND_PROPERTY)
        return returned["value"]

    def failure(self, summary: str, *, details=(), prop: str | None = None,
                diagnosis: str | None = None, kind: str = "wrong",
                mismatch=None) -> PropertyFailure:
        return PropertyFailure(self.name, summary,
                               details=[CallLine.of(self.description), *details],
                               example=self.example, prop=prop, diagnosis=diagnosis,
                               result=self, kind=kind, mismatch=mismatch)

    is_call = False
    is_observation = False


@dataclass
class CallResult(Result):
    """One call of a target function as the judge saw it: args/kwargs as sent (pristine
    copies, on CPU) and as the call left them, and the grad mode it ran in."""
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    args_after: tuple = ()
    kwargs_after: dict = field(default_factory=dict)
    arg_names: tuple[str, ...] = ()
    grad_enabled: bool | None = None     # the grad mode the call ran in (None: as it was)

    def tensor(self, part: int | str | None = None, what: str = "result") -> torch.Tensor:
        if isinstance(part, str):
            value = self.after().get(part)
            if not isinstance(value, torch.Tensor):
                raise self.failure(f"{what} is not a tensor after the call",
                                   prop=RESULT_KIND_PROPERTY)
            return value
        return super().tensor(part, what)

    def after(self) -> dict:
        """Argument name -> value as the call left it (names from `arg_names`)."""
        return {**dict(zip(self.arg_names, self.args_after)), **self.kwargs_after}

    is_call = True


@dataclass
class Observation(Result):
    """What a property observed that is not one call's result (see the module docstring).

    stage   what was observed ("fresh-evaluation", "gradients", ...): the diagnosis knows a
            module's mistakes by "NAME:STAGE" (properties.diagnosis.modules)
    inputs  the values it was computed from, by name
    facts   what a task found out (e.g. which parameters a module registers)"""
    stage: str = ""
    inputs: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    is_observation = True
