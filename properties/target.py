"""The judge's handle on a target: what it defines, and calls into it that are checked on the way.

`Target.call(name, *args, **kwargs)` runs one contract function through the runner and returns
a `CallResult`. On the way it enforces what every call must honour (contract, "What the suite
feeds and accepts"): no input is modified (except the functional batch_norm's running stats),
the result is a tensor or a numpy array, it stays on the input's device. Any exception, hang or
crash inside the target becomes a PropertyFailure of that name, never an error of the suite.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from properties import contract
from properties.failures import PropertyFailure
from properties.runner import (InProcessRunner, TargetCrashed, TargetForbidden, TargetRaised,
                               TargetTimedOut, WorkerRunner)
from properties.sandbox import Sandbox
from properties.snippets import call_snippet, describe_call, standalone_import
from properties.tolerance import compared_dtype

#: Parameter names used to show each contract function's calls.
ARG_NAMES = {
    "corr2d": ("X", "K"), "corr2d_multi_in": ("X", "K"), "corr2d_multi_in_out": ("X", "K"),
    "corr2d_multi_in_out_1x1": ("X", "K"), "pool2d": ("X", "pool_size", "mode"),
    ("batch_norm", "d2l-2nd"): ("X", "gamma", "beta", "moving_mean", "moving_var", "eps",
                                "momentum"),
    ("batch_norm", "d2l-1st"): ("is_training", "X", "gamma", "beta", "moving_mean",
                                "moving_var", "eps", "momentum"),
    ("batch_norm", "functional"): ("input", "running_mean", "running_var", "weight", "bias",
                                   "training", "momentum", "eps"),
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode",
                   "count_include_pad", "divisor_override"),
}

#: Arguments a function may change in place.
IN_PLACE_ALLOWED = {("batch_norm", "functional"): ("running_mean", "running_var")}


# ----------------------------------------------------------------------- tasks (target side)

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
    return {"kind": "other", "type": type(value).__name__, "repr": repr(value)[:200]}


def call_function(ns, name: str, args: tuple, kwargs: dict,
                  grad_enabled: bool | None = None) -> tuple[dict, tuple, dict]:
    """Task: call ns[name] and return its result with the arguments as they are afterwards.

    With `grad_enabled` True or False the call runs in that grad mode (the d2l 2nd-edition
    batch_norm decides training by it); None leaves the grad mode as it is."""
    if grad_enabled is None:
        result = ns[name](*args, **kwargs)
    else:
        with torch.set_grad_enabled(grad_enabled):
            result = ns[name](*args, **kwargs)
    return portable(result), args, kwargs


# ----------------------------------------------------------------------- judge side

@dataclass
class CallResult:
    """One call of a target function as the judge saw it."""
    name: str
    args: tuple                 # the inputs as sent (pristine copies, on CPU)
    kwargs: dict
    returned: dict              # portable() form of the result
    args_after: tuple
    kwargs_after: dict
    description: str
    example: str

    def tensor(self, index: int | None = None, what: str = "result") -> torch.Tensor:
        """The result (or its `index`-th item) as a tensor; a PropertyFailure if it is not one."""
        returned = self.returned
        if index is not None:
            if returned["kind"] not in ("tuple", "list") or len(returned["items"]) <= index:
                raise self.failure(f"returned {_describe_portable(returned)}, expected a tuple "
                                   f"with at least {index + 1} items",
                                   prop="returns what the contract says")
            returned = returned["items"][index]
        if returned["kind"] not in ("tensor", "numpy"):
            raise self.failure(f"{what} is {_describe_portable(returned)}, expected a tensor or "
                               "numpy array", prop="returns what the contract says")
        return returned["value"]

    def is_numpy(self, index: int | None = None) -> bool:
        returned = self.returned if index is None else self.returned["items"][index]
        return returned["kind"] == "numpy"

    def failure(self, summary: str, *, details=(), prop: str | None = None,
                diagnosis: str | None = None) -> PropertyFailure:
        return PropertyFailure(self.name, summary, details=[f"called: {self.description}",
                                                            *details],
                               example=self.example, prop=prop, diagnosis=diagnosis,
                               call=self)


def _describe_portable(returned: dict) -> str:
    kind = returned["kind"]
    if kind in ("tuple", "list"):
        return f"a {kind} of {len(returned['items'])}"
    if kind == "number":
        return f"the number {returned['value']!r}"
    if kind == "other":
        return f"a {returned['type']} ({returned['repr'][:60]})"
    return f"a {kind}"


def _copy_to(value: Any, device: torch.device) -> Any:
    """A copy on `device` with the same strides, so non-contiguous inputs stay non-contiguous."""
    if isinstance(value, torch.Tensor):
        copy = torch.empty_strided(value.size(), value.stride(), dtype=value.dtype,
                                   device=device)
        return copy.copy_(value)
    if isinstance(value, tuple):
        return tuple(_copy_to(v, device) for v in value)
    if isinstance(value, list):
        return [_copy_to(v, device) for v in value]
    return value


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape \
                or before.dtype != after.dtype:
            return False
        if after.device.type == "meta":  # a device with shapes but no values
            return True
        after = after.detach().cpu()
        return bool(((before == after) | (before.isnan() & after.isnan())).all()) \
            if before.dtype.is_floating_point else torch.equal(before, after)
    return True


class Target:
    """A loaded target, as the judge sees it. Build with `Target.open(spec, ...)`."""

    def __init__(self, description: dict, runner, device: str | torch.device = "cpu"):
        self.spec = description["spec"]
        self.kind = description["kind"]
        self.origin = description["origin"]
        self.defined = list(description["defined"])
        self.dialects = dict(description["dialects"])
        self.skipped_cells = [tuple(c) for c in description["skipped_cells"]]
        self.load_output = description["load_output"]
        self.import_line = standalone_import(self.kind, self.origin, description["import_line"])
        self.runner = runner
        self.device = torch.device(device)
        self.conventions: dict[str, dict[str, str]] = {}
        self.unresponsive: dict[str, str] = {}
        self.notes: dict[str, set[str]] = {}

    @classmethod
    def open(cls, spec: str, *, isolate: bool = False, timeout: float | None = 60.0,
             memory_limit_mb: int | None = None, device: str = "cpu",
             sandbox: Sandbox | None = None) -> "Target":
        """Load SPEC in this process, or in a worker process when `isolate` (in `sandbox`,
        with its limits).

        Raises contract.TargetLoadError when it cannot be loaded."""
        if isolate:
            runner = WorkerRunner(spec, timeout=timeout, memory_limit_mb=memory_limit_mb,
                                  sandbox=sandbox)
            try:
                description = runner.describe()
            except TargetCrashed as exc:
                raise contract.TargetLoadError(f"{spec}: {exc}") from None
            except TargetTimedOut as exc:
                raise contract.TargetLoadError(f"{spec}: loading {exc}") from None
            return cls(description, runner, device)
        loaded = contract.load(spec)
        return cls(loaded.describe(), InProcessRunner(loaded.namespace, timeout), device)

    def on(self, device: str | torch.device) -> "Target":
        """The same target, fed and checked on `device` (shares runner and bookkeeping)."""
        if torch.device(device) == self.device:
            return self
        view = copy.copy(self)
        view.device = torch.device(device)
        return view

    # -- what it defines
    def defines(self, name: str) -> bool:
        return name in self.defined

    def dialect(self, name: str) -> str | None:
        return self.dialects.get(name)

    # -- running target code
    def run(self, task: Callable, *args: Any, blame: str) -> Any:
        """Run a task; anything going wrong inside the target is a failure of `blame`."""
        if blame in self.unresponsive:
            raise PropertyFailure(blame, self.unresponsive[blame],
                                  prop="returns without hanging or crashing")
        try:
            return self.runner.run(task, *args)
        except TargetRaised as exc:
            details = [line for line in exc.trace.splitlines() if line.strip()][-4:]
            raise PropertyFailure(blame, f"raised {exc.type_name}: {exc.message}",
                                  details=details, prop="runs without raising") from None
        except TargetForbidden as exc:
            raise PropertyFailure(blame, str(exc), details=[f"called from {exc.where}"],
                                  prop="uses only the operations the assignment allows") \
                from None
        except TargetTimedOut as exc:
            self.unresponsive[blame] = f"{exc} (later calls of {blame} are not attempted)"
            raise PropertyFailure(blame, str(exc),
                                  prop="returns without hanging or crashing") from None
        except TargetCrashed as exc:
            # Restarting the worker for every shrinking step would cost minutes per name.
            self.unresponsive[blame] = (f"{exc} on an earlier call (later calls of {blame} "
                                        "are not attempted)")
            raise PropertyFailure(blame, str(exc), prop="runs without crashing") from None

    def arg_names(self, name: str) -> tuple[str, ...]:
        return ARG_NAMES.get((name, self.dialect(name)), ARG_NAMES.get(name, ()))

    def call(self, name: str, *args: Any, **kwargs: Any) -> CallResult:
        """Call the target's `name`, checking it leaves its inputs alone."""
        return self.call_in_grad_mode(None, name, *args, **kwargs)

    def call_in_grad_mode(self, grad_enabled: bool | None, name: str, *args: Any,
                          **kwargs: Any) -> CallResult:
        """`call` with grad mode enabled (True) or disabled (False, as under torch.no_grad());
        None leaves it as it is. The description and the replay snippet say which."""
        arg_names = self.arg_names(name)
        pristine = _copy_to(args, torch.device("cpu")), _copy_to(kwargs, torch.device("cpu"))
        sent_args, sent_kwargs = _copy_to(args, self.device), _copy_to(kwargs, self.device)
        description = describe_call(name, arg_names, args, kwargs)
        example = call_snippet(name, arg_names, args, kwargs, self.import_line)
        if grad_enabled is False:
            description += " under torch.no_grad()"
            *setup, last = example.splitlines()
            example = "\n".join([*setup, "with torch.no_grad():", f"    {last}"])
        returned, args_after, kwargs_after = self.run(call_function, name, sent_args,
                                                      sent_kwargs, grad_enabled, blame=name)
        result = CallResult(name, pristine[0], pristine[1], returned, args_after, kwargs_after,
                            description, example)
        self._check_inputs_unchanged(result, arg_names)
        self._check_device(result)
        self._note_accepted_conventions(result)
        return result

    # -- notes: accepted conventions the report card mentions (not failures)
    def note(self, name: str, text: str) -> None:
        """Record a note about `name` for the report card (properties.session attaches it to
        the test's report; properties.report prints it once)."""
        self.notes.setdefault(name, set()).add(text)

    def take_notes(self) -> list[tuple[str, str]]:
        """The notes recorded since the last call, as (name, text) pairs; forgets them."""
        taken = [(name, text) for name, texts in self.notes.items() for text in sorted(texts)]
        self.notes.clear()
        return taken

    def _note_accepted_conventions(self, result: CallResult) -> None:
        """A numpy result, or a textbook-dialect result in lower precision than its input: the
        contract accepts both, the report card says so."""
        returned = result.returned
        if returned["kind"] in ("tuple", "list"):
            returned = returned["items"][0] if returned["items"] else {"kind": "none"}
        if returned["kind"] not in ("tensor", "numpy"):
            return
        if returned["kind"] == "numpy":
            self.note(result.name, f"{result.name} returns a numpy array (accepted: compared "
                                   "as a tensor)")
        got = returned["value"].dtype
        given = next((a.dtype for a in result.args
                      if isinstance(a, torch.Tensor) and a.dtype.is_floating_point), None)
        if self.dialect(result.name) != "functional" and given is not None and \
                got.is_floating_point and got.itemsize < given.itemsize:
            short = lambda dtype: str(dtype).removeprefix("torch.")
            self.note(result.name, f"{result.name} returns {short(got)} for {short(given)} "
                                   f"input (accepted: compared at "
                                   f"{short(compared_dtype(given, got))})")

    def _check_inputs_unchanged(self, result: CallResult, arg_names) -> None:
        allowed = IN_PLACE_ALLOWED.get((result.name, self.dialect(result.name)), ())
        pairs = list(zip(arg_names, result.args, result.args_after))
        pairs += [(k, v, result.kwargs_after.get(k)) for k, v in result.kwargs.items()]
        for arg_name, before, after in pairs:
            if arg_name not in allowed and not _same(before, after):
                raise result.failure(f"changed its input {arg_name} in place",
                                     prop="does not modify its inputs")

    def _check_device(self, result: CallResult) -> None:
        returned = result.returned
        items = returned["items"] if returned["kind"] in ("tuple", "list") else [returned]
        for item in items:
            if item["kind"] == "tensor" and item["value"].device.type != self.device.type:
                raise result.failure(f"returned a tensor on {item['value'].device}, but the "
                                     f"inputs were on {self.device}",
                                     prop="keeps results on the input's device")

    def close(self) -> None:
        self.runner.close()
