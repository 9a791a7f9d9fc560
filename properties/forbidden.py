"""Operations an assignment forbids, per contract name, caught in the worker while that name runs.

A rule pairs a contract name with an operation, written as

    torch.nn.functional.conv2d   a function by its dotted name; the same object under another
                                 name is caught too (torch.conv2d is torch.nn.functional.conv2d)
    scipy.signal.*               every public function of a module
    aten.convolution             aten operators, a glob (aten.*convolution*): caught where torch
                                 dispatches them, however they were reached; this costs Python
                                 work on every torch operation of the name's calls (tens of
                                 times slower for loop-heavy code), so name functions when you can

Torch functions are caught by a TorchFunctionMode, aten operators by a TorchDispatchMode, both
active only during calls of a name that has rules; other functions (numpy, scipy) by wrappers
put on their modules before the target loads, so that `from scipy.signal import correlate2d`
gets the wrapper. A call that uses a forbidden operation fails with "uses OP, which this
assignment forbids" and the line of the target that called it.

This runs in the submission's own process (properties.runner's worker): a determined student
can undo it. It catches honest use of a library function the assignment asks them to write.
"""
from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import inspect
import os
import sys
import traceback
from typing import Any

from properties.contract import CONTRACT_NAMES

#: What a rule's operation looks like when it names aten operators.
ATEN_PREFIX = "aten."
SUITE = os.path.dirname(os.path.abspath(__file__))


class RuleError(ValueError):
    """A rule that cannot be used (one line)."""


class ForbiddenOperation(BaseException):
    """Raised inside the target when it calls a forbidden operation; a BaseException so that
    `except Exception` in the target does not swallow it (and it is recorded anyway)."""

    def __init__(self, operation: str, where: str):
        super().__init__(f"uses {operation}, which this assignment forbids")
        self.operation, self.where = operation, where


def parse_rule(text: str) -> tuple[str, str]:
    """`NAME=OPERATION` (the pytest option's form) as (name, operation)."""
    name, sep, operation = text.partition("=")
    name, operation = name.strip(), operation.strip()
    if not sep or not operation:
        raise RuleError(f"--forbid {text!r}: expected NAME=OPERATION, e.g. "
                        "corr2d=torch.nn.functional.conv2d")
    check_rule(name, operation)
    return name, operation


def check_rule(name: str, operation: str) -> None:
    if name not in CONTRACT_NAMES:
        raise RuleError(f"forbidden operations for {name!r}: not a contract name; known: "
                        f"{', '.join(CONTRACT_NAMES)}")
    if not operation.replace(".", "").replace("_", "").replace("*", "").isalnum():
        raise RuleError(f"forbidden operation {operation!r} for {name}: expected a dotted "
                        "name (torch.nn.functional.conv2d, scipy.signal.*, aten.convolution)")


def _resolve(operation: str) -> list[tuple[str, Any, Any, str]]:
    """(label, module, attribute name, object) of each function `operation` names; nothing
    when its module is not installed (then it cannot be used either)."""
    parts = operation.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        rest = parts[cut:]
        owner = module
        for part in rest[:-1]:
            owner = getattr(owner, part, None)
            if owner is None:
                return []
        last = rest[-1]
        if "*" in last:
            names = [n for n in dir(owner) if not n.startswith("_") and fnmatch.fnmatch(n, last)]
        else:
            names = [last] if hasattr(owner, last) else []
        found = []
        for attribute in names:
            obj = getattr(owner, attribute)
            if callable(obj) and not inspect.isclass(obj) and not inspect.ismodule(obj):
                label = ".".join([*parts[:-1], attribute])
                found.append((label, owner, attribute, obj))
        return found
    return []


def _caller() -> str:
    """The innermost frame of the target's own code: where the forbidden call was made."""
    library = {os.path.dirname(os.__file__), SUITE, sys.prefix, sys.base_prefix}
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        if not any(path.startswith(root) for root in library) and "site-packages" not in path:
            line = f": {frame.line}" if frame.line else ""
            return f"{frame.filename}, line {frame.lineno}, in {frame.name}{line}"
    return "the target"


class Guard:
    """The rules of one target: `install()` before it loads, `wrap(namespace)` after."""

    def __init__(self, rules: dict[str, tuple[str, ...]]):
        self.rules = {name: tuple(ops) for name, ops in rules.items() if ops}
        self.current: str | None = None
        self.violation: ForbiddenOperation | None = None
        self._torch: dict[str, dict[int, tuple[Any, str]]] = {}   # name -> id -> (obj, label)
        self._aten: dict[str, list[str]] = {}
        self._python: dict[str, set[str]] = {}                   # name -> labels

    # -- set-up
    def install(self) -> None:
        """Resolve every rule; put wrappers on the modules of non-torch functions."""
        for name, operations in self.rules.items():
            for operation in operations:
                if operation.startswith(ATEN_PREFIX):
                    self._aten.setdefault(name, []).append(
                        "aten::" + operation[len(ATEN_PREFIX):])
                    continue
                for label, owner, attribute, obj in _resolve(operation):
                    if (getattr(obj, "__module__", None) or "").startswith("torch") or \
                            getattr(owner, "__name__", "").startswith("torch"):
                        self._torch.setdefault(name, {})[id(obj)] = (obj, label)
                    else:
                        self._python.setdefault(name, set()).add(label)
                        if not getattr(obj, "__convcheck_guarded__", False):
                            setattr(owner, attribute, self._python_wrapper(label, obj))

    def _python_wrapper(self, label: str, function):
        guard = self

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if guard.current is not None and label in guard._python.get(guard.current, ()):
                guard.forbid(label)
            return function(*args, **kwargs)
        wrapper.__convcheck_guarded__ = True
        return wrapper

    def wrap(self, namespace: dict) -> dict:
        """The namespace with every name that has rules running under them."""
        wrapped = dict(namespace)
        for name in self.rules:
            obj = namespace.get(name)
            if obj is None:
                continue
            if inspect.isclass(obj):
                for method in ("__init__", "forward"):
                    if method in vars(obj):
                        setattr(obj, method, self._guarded(name, vars(obj)[method]))
            elif callable(obj):
                wrapped[name] = self._guarded(name, obj)
        return wrapped

    def _guarded(self, name: str, function):
        guard = self

        @functools.wraps(function)
        def guarded(*args, **kwargs):
            outer = guard.current
            guard.current = name
            guard.violation = None if outer is None else guard.violation
            try:
                with guard._modes(name):
                    result = function(*args, **kwargs)
            finally:
                guard.current = outer
            if guard.violation is not None:   # caught by the target and ignored: still a use
                raise guard.violation
            return result
        return guarded

    # -- while a name runs
    def forbid(self, label: str) -> None:
        self.violation = ForbiddenOperation(label, _caller())
        raise self.violation

    def _modes(self, name: str) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        function_mode, dispatch_mode = _mode_classes()
        if self._torch.get(name):
            stack.enter_context(function_mode(self, self._torch[name]))
        if self._aten.get(name):
            stack.enter_context(dispatch_mode(self, self._aten[name]))
        return stack


@functools.cache
def _mode_classes():
    """The two torch modes (built on first use: torch is imported only in the worker)."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class FunctionMode(TorchFunctionMode):
        def __init__(self, guard: Guard, forbidden: dict[int, tuple[Any, str]]):
            super().__init__()
            self.guard, self.forbidden = guard, forbidden

        def __torch_function__(self, func, types, args=(), kwargs=None):
            entry = self.forbidden.get(id(func))
            if entry is not None and entry[0] is func:
                self.guard.forbid(entry[1])
            return func(*args, **(kwargs or {}))

    class DispatchMode(TorchDispatchMode):
        def __init__(self, guard: Guard, patterns: list[str]):
            super().__init__()
            self.guard, self.patterns = guard, patterns

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            op = func.name()  # aten::convolution
            if any(fnmatch.fnmatch(op, p) for p in self.patterns):
                self.guard.forbid(op.replace("::", "."))
            return func(*args, **(kwargs or {}))

    return FunctionMode, DispatchMode
