"""The one gradient check of the contract's functions.

For a call f(args) and an upstream gradient G of f's output's shape, with L = Σ G ⊙ f(args),
the gradients dL/da of the arguments `a` named in `wrt` (those that require grad) must equal
torch's float64 autograd of the same computation, within the error model the caller gives
(an Expected per argument).

The policy for results autograd cannot follow (contract, "Differentiability"): a function's
result need not carry gradients — a numpy or loop-based forward-only implementation is a
valid target. When the output carries no gradient at all, the check is skipped; when some
arguments get no gradient, only theirs are not compared. Either way the report card says so
in a `note:` line. (The modules are different: their parameters must learn by autograd, and
their properties hold them to it.)
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from properties.checks import assert_matches
from properties.failures import PropertyFailure
from properties.results import Observation, copy_to, portable
from properties.snippets import Script, describe_call, value_literal
from properties.tolerance import Expected

#: The stage of the observation a gradient is (properties.results.Observation).
STAGE = "gradients"


def backward(ns, name: str, args: tuple, kwargs: dict, arg_names: tuple, wrt: tuple,
             upstream: torch.Tensor, output_item: int | None) -> dict:
    """Task: back-propagate `upstream` through ns[name](*args, **kwargs) (its
    `output_item`-th returned item when given) to the arguments named in `wrt`.

    {"status": "not-differentiable", "type": ...}   the output carries no gradient
    {"status": "shape", "shape": ...}                the output's shape is not upstream's
    {"status": "ok", "dtype": "float32", "grads": {name: portable or None}}"""
    args, kwargs, leaves = list(args), dict(kwargs), {}
    for leaf in wrt:
        index = arg_names.index(leaf)
        if index < len(args) and isinstance(args[index], torch.Tensor):
            args[index] = leaves[leaf] = args[index].detach().clone().requires_grad_()
        elif isinstance(kwargs.get(leaf), torch.Tensor):
            kwargs[leaf] = leaves[leaf] = kwargs[leaf].detach().clone().requires_grad_()
    with torch.enable_grad():
        out = ns[name](*args, **kwargs)
        if output_item is not None and isinstance(out, (tuple, list)) and len(out) > output_item:
            out = out[output_item]
        if isinstance(out, np.ndarray) or not isinstance(out, torch.Tensor) \
                or not out.requires_grad:
            return {"status": "not-differentiable", "type": type(out).__name__}
        if tuple(out.shape) != tuple(upstream.shape):
            return {"status": "shape", "shape": tuple(out.shape)}
        out.backward(upstream.to(out.dtype))
    return {"status": "ok", "dtype": str(out.dtype).removeprefix("torch."),
            "grads": {leaf: None if t.grad is None else portable(t.grad)
                      for leaf, t in leaves.items()}}


def gradient_script(target, name: str, args: tuple, kwargs: dict, wrt: tuple,
                    upstream: torch.Tensor, output_item: int | None) -> str:
    """A runnable script: the call with the `wrt` arguments requiring grad, backward of
    Σ upstream ⊙ output, each gradient printed."""
    script = Script(target.import_line)
    call = script.call(name, target.arg_names(name), args, kwargs)
    leaves = [leaf for leaf in wrt if isinstance(target.signature(name).bind(args, kwargs)
                                                 .get(leaf), torch.Tensor)]
    script.add(*(f"{leaf}.requires_grad_()" for leaf in leaves))
    script.add(f"out = {call}" + ("" if output_item is None else f"[{output_item}]"))
    script.add(f"out.backward({value_literal(upstream)})")
    for leaf in leaves:
        script.show(f"{leaf}.grad", f"d/d{leaf}:")
    return script.text()


def check_gradients(target, name: str, args: tuple, kwargs: dict,
                    expected: dict[str, Expected], upstream: torch.Tensor, *,
                    input_dtype: torch.dtype, oracle: str, output_item: int | None = None,
                    same_dtype: bool = False, labels: dict[str, str] | None = None) -> None:
    """The gradients of L = Σ upstream ⊙ name(args) with respect to each argument in
    `expected` (by name) agree with `expected` (see the module docstring for the policy),
    compared at the precision of the output too (a textbook function may compute in float32
    for float64 input)."""
    wrt = tuple(expected)
    arg_names = target.arg_names(name)
    outcome = target.run(backward, name, copy_to(args), copy_to(kwargs), arg_names, wrt,
                         upstream, output_item, blame=name)
    description = (describe_call(name, arg_names, args, kwargs)
                   + ", then backward of Σ upstream ⊙ output")
    script = gradient_script(target, name, args, kwargs, wrt, upstream, output_item)
    labels = labels or {}

    def observed(returned: dict) -> Observation:
        return Observation(name, returned, description, script, stage=STAGE)

    if outcome["status"] == "not-differentiable":
        note = (f"{name}'s result carries no gradient (forward only): its gradient checks "
                "and the training checks built on it are skipped")
        target.note(name, note)
        pytest.skip(note)
    if outcome["status"] == "shape":
        raise observed(portable(None)).failure(
            f"output has shape {outcome['shape']}, expected {tuple(upstream.shape)}")
    grads = outcome["grads"]
    unreached = [leaf for leaf in wrt if leaf in grads and grads[leaf] is None]
    if unreached:
        target.note(name, f"{name}'s result is not differentiable with respect to "
                          f"{', '.join(labels.get(u, u) for u in unreached)}: that gradient "
                          "is not checked")
    compared = [leaf for leaf in wrt if grads.get(leaf) is not None]
    if not compared:
        pytest.skip(f"{name}'s result carries no gradient to its inputs (forward only)")
    for leaf in compared:
        try:
            assert_matches(observed(grads[leaf]), expected[leaf], input_dtype=input_dtype,
                           oracle=oracle, what=f"gradient w.r.t. {labels.get(leaf, leaf)}",
                           same_dtype=same_dtype,
                           compare_at=getattr(torch, outcome["dtype"], None))
        except PropertyFailure as failure:
            if failure.example == script:
                failure.example += ("\nprint('expected (float64):', "
                                    f"{value_literal(expected[leaf].value)})")
            raise
