"""Which of the target's contract names each composite one calls, found by tracing a call.

The textbook builds names on names: corr2d_multi_in sums corr2d over channels, Conv2D's
forward calls corr2d, BatchNorm's calls batch_norm. When a composite fails and a name it calls
fails too, the student should fix the callee first: the report card says so ("BatchNorm calls
your batch_norm, which fails: fix it first").

What a composite calls is decided by running it once on a small input with a profiler that
notes every call of one of the target's own contract functions (by their code objects) — not
by reading the source, so `d2l.corr2d`, an alias or a helper in between all count.

    detect(target) -> {composite name: [names it calls, in contract order]}
"""
from __future__ import annotations

import sys

import torch

from properties.contract import CONTRACT_NAMES
from properties.failures import PropertyFailure

#: Composites and the small call that exercises each: (args of the function, or of the
#: module's constructor and then the forward's input).
PROBES = {
    "corr2d_multi_in": lambda: ((torch.ones(2, 3, 4), torch.ones(2, 2, 2)), None),
    "corr2d_multi_in_out": lambda: ((torch.ones(2, 3, 4), torch.ones(2, 2, 2, 2)), None),
    "corr2d_multi_in_out_1x1": lambda: ((torch.ones(2, 3, 4), torch.ones(2, 2, 1, 1)), None),
    "Conv2D": lambda: (((1, 2),), torch.ones(3, 4)),
    "BatchNorm": lambda: ((2, 2), torch.arange(8.0).reshape(4, 2)),
    "LeNet": lambda: ((), torch.zeros(2, 1, 28, 28)),
}


def called_names(ns, name: str) -> list[str]:
    """Task: run `name` once on its probe and return the other contract functions it called."""
    codes = {getattr(obj, "__code__", None): other for other, obj in ns.items()
             if other != name and callable(obj) and not isinstance(obj, type)}
    codes.pop(None, None)
    seen: set[str] = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            seen.add(codes[frame.f_code])

    args, module_input = PROBES[name]()
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        with torch.enable_grad():
            if module_input is None:
                ns[name](*args)
            else:
                module = ns[name](*args)
                module.train()
                module(module_input)
    except Exception:  # noqa: BLE001 - a composite that fails is judged by its properties
        pass
    finally:
        sys.setprofile(previous)
    return [n for n in CONTRACT_NAMES if n in seen]


def detect(target) -> dict[str, list[str]]:
    """{composite: the contract names it calls}, for the composites the target defines."""
    found = {}
    for name in PROBES:
        if not target.defines(name):
            continue
        try:
            calls = target.run(called_names, name, blame=name)
        except PropertyFailure:   # hangs or crashes: its properties will say so
            continue
        if calls:
            found[name] = calls
    return found
