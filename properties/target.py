"""The judge's handle on a target: what it defines, and calls into it that are checked on the way.

`Target.call(name, *args, **kwargs)` runs one contract function through the runner and returns
a `CallResult`. On the way it enforces what every call must honour (contract, "What the suite
feeds and accepts"): no input is modified (except the functional batch_norm's running stats),
the result is a tensor or a numpy array, it stays on the input's device. Any exception, hang or
crash inside the target becomes a PropertyFailure of that name, never an error of the suite.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch

from properties import contract
from properties.failures import UNRESPONSIVE, CallLine, PropertyFailure
from properties.results import CallResult, copy_to, portable
from properties.runner import (InProcessRunner, TargetCrashed, TargetForbidden, TargetRaised,
                               TargetTimedOut, WorkerRunner)
from properties.sandbox import Sandbox
from properties.signatures import signature
from properties.snippets import call_snippet, describe_call, standalone_import
from properties.tolerance import compared_dtype

#: The property a call is filed under when the target misbehaves rather than computes.
RAISED_PROPERTY = "runs without raising"
UNRESPONSIVE_PROPERTY = "returns without hanging or crashing"
STATE_PROPERTY = "does not modify its inputs"


# ----------------------------------------------------------------------- tasks (target side)

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
        self.dependencies: dict[str, list[str]] = {}      # composite -> names it calls
        self.accepted: frozenset[str] = frozenset()         # contract.ACCEPTABLE_CONVENTIONS
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
                raise contract.TargetLoadError(f"{spec}: {exc}", "crash") from None
            except TargetTimedOut as exc:
                raise contract.TargetLoadError(f"{spec}: loading {exc}", "timeout") from None
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
    def run(self, task: Callable, *args: Any, blame: str,
            at_least: float | None = None) -> Any:
        """Run a task (in at most the call timeout, or `at_least` seconds when that is
        longer); anything going wrong inside the target is a failure of `blame`, of
        the kind it is (properties.failures): raised, timeout, crash or memory. After a
        timeout, a crash or running out of memory, `blame` is not called again: the run
        would cost the whole time limit again, or restart the worker at every shrinking
        step."""
        if blame in self.unresponsive:
            kind, message = self.unresponsive[blame]
            raise PropertyFailure(blame, message, prop=UNRESPONSIVE_PROPERTY, kind=kind)
        try:
            return self.runner.run(task, *args, at_least=at_least)
        except TargetRaised as exc:
            if exc.out_of_memory:
                self._unresponsive(blame, "memory", f"ran out of memory ({exc.type_name}: "
                                                    f"{exc.message[:200]})")
            details = [line for line in exc.trace.splitlines() if line.strip()]
            message = exc.message.strip().splitlines()[0] if exc.message.strip() else ""
            raise PropertyFailure(blame, f"raised {exc.type_name}: {message}",
                                  details=details, prop=RAISED_PROPERTY,
                                  kind="raised") from None
        except TargetForbidden as exc:
            raise PropertyFailure(blame, str(exc), details=[f"called from {exc.where}"],
                                  prop="uses only the operations the assignment allows",
                                  kind="forbidden") from None
        except TargetTimedOut as exc:
            self._unresponsive(blame, "timeout", str(exc))
        except TargetCrashed as exc:
            self._unresponsive(blame, "memory" if exc.out_of_memory else "crash", str(exc))

    def _unresponsive(self, blame: str, kind: str, message: str):
        """Fail `blame` now, and every later call of it at once."""
        assert kind in UNRESPONSIVE
        self.unresponsive[blame] = (kind, f"{message} on an earlier call (later calls of "
                                          f"{blame} are not attempted)")
        raise PropertyFailure(blame, f"{message} (later calls of {blame} are not attempted)",
                              prop=UNRESPONSIVE_PROPERTY, kind=kind)

    def signature(self, name: str):
        """The contract's record of `name` in this target's dialect (properties.signatures)."""
        return signature(name, self.dialect(name))

    def arg_names(self, name: str) -> tuple[str, ...]:
        return self.signature(name).arg_names

    def call(self, name: str, *args: Any, **kwargs: Any) -> CallResult:
        """Call the target's `name`, checking it leaves its inputs alone."""
        return self.call_in_grad_mode(None, name, *args, **kwargs)

    def call_in_grad_mode(self, grad_enabled: bool | None, name: str, *args: Any,
                          **kwargs: Any) -> CallResult:
        """`call` with grad mode enabled (True) or disabled (False, as under torch.no_grad());
        None leaves it as it is. The description and the replay snippet say which."""
        arg_names = self.arg_names(name)
        pristine = copy_to(args, torch.device("cpu")), copy_to(kwargs, torch.device("cpu"))
        sent_args, sent_kwargs = copy_to(args, self.device), copy_to(kwargs, self.device)
        description = describe_call(name, arg_names, args, kwargs)
        example = call_snippet(name, arg_names, args, kwargs, self.import_line,
                               no_grad=grad_enabled is False)
        if grad_enabled is False:
            description += " under torch.no_grad()"
        try:
            returned, args_after, kwargs_after = self.run(call_function, name, sent_args,
                                                          sent_kwargs, grad_enabled, blame=name)
        except PropertyFailure as failure:
            # One failure format for everything: a call that raised, hung or crashed shows the
            # call and the script that makes it too.
            failure.details.append(CallLine.of(description))  # shown first (report.py)
            failure.example = failure.example or example
            raise
        result = CallResult(name, returned, description, example, args=pristine[0],
                            kwargs=pristine[1], args_after=args_after,
                            kwargs_after=kwargs_after, arg_names=arg_names,
                            grad_enabled=grad_enabled)
        self._check_inputs_unchanged(result)
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

    def _check_inputs_unchanged(self, result: CallResult) -> None:
        allowed = self.signature(result.name).may_change
        pairs = list(zip(result.arg_names, result.args, result.args_after))
        pairs += [(k, v, result.kwargs_after.get(k)) for k, v in result.kwargs.items()]
        for arg_name, before, after in pairs:
            if arg_name not in allowed and not _same(before, after):
                raise result.failure(f"changed its input {arg_name} in place",
                                     prop=STATE_PROPERTY, kind="state-changed")

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
