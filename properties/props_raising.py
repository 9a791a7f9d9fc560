"""The contract's raising rule, one property for every name whose signature names torch's own
function (properties.signatures): the target raises — any exception type — exactly for the
arguments torch refuses (kernel larger than the padded input, non-positive stride or
dilation, negative padding, ...), and returns a result wherever torch does.

Each name's explicit calls (its signature's `raising_examples`, one per rule and valid
corners) run before the drawn ones, whose strategies break at most one rule at a time.
"""
from __future__ import annotations

import warnings

import torch
from hypothesis import note

from properties.registry import Property
from properties.results import Observation, copy_to, portable
from properties.signatures import SIGNATURES, Signature
from properties.snippets import call_snippet, describe_call
from properties.strategies_conv import maybe_invalid_cases
from properties.strategies_pool import raise_cases

TITLE = "raises exactly where torch raises"
#: Calls that may break one of torch's rules, per name.
STRATEGIES = {"conv2d": maybe_invalid_cases(), "max_pool2d": raise_cases("max"),
              "avg_pool2d": raise_cases("avg")}


def call_catching(ns, name: str, args: tuple, kwargs: dict) -> dict:
    """Task: call ns[name]; {"raised": "Type: message"} instead of raising, else
    {"returned": portable result}."""
    try:
        result = ns[name](*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any exception type is a refusal
        message = str(exc).splitlines()[0] if str(exc) else ""
        return {"raised": f"{type(exc).__name__}: {message}"[:300]}
    return {"returned": portable(result)}


def torch_verdict(signature: Signature, args: tuple, kwargs: dict) -> tuple[str | None, tuple]:
    """(torch's refusal "Type: message", None) or (None, the shape of torch's result), torch's
    function called on float64 copies (its warnings, e.g. about 'same' padding, silenced)."""
    args = tuple(a.to(torch.float64) if isinstance(a, torch.Tensor) else a for a in args)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = signature.torch_equivalent()(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}", None
    return None, tuple(value.shape)


def check_raises_like_torch(signature: Signature):
    """The check of one name (module docstring)."""
    name = signature.name

    def check(target, case):
        args, kwargs = case.arguments()
        refusal, shape = torch_verdict(signature, args, kwargs)
        outcome = target.run(call_catching, name, copy_to(args), copy_to(kwargs), blame=name)
        note(f"meant to break: {getattr(case, 'breakage', 'see the case')}; torch: "
             f"{refusal or 'accepts'}")
        if refusal and "returned" in outcome:
            summary = f"returned a result where torch raises ({refusal})"
        elif refusal is None and "raised" in outcome:
            summary = (f"raised {outcome['raised']} where torch accepts these arguments "
                       f"(result shape {shape})")
        else:
            return
        details = [f"the arguments break a rule: {case.breakage}"] \
            if refusal and getattr(case, "breakage", "none") != "none" else []
        # Not a value to recompute: an observation of the call, not a wrong result.
        raise Observation(name, outcome.get("returned", portable(None)),
                          describe_call(name, target.arg_names(name), args, kwargs),
                          call_snippet(name, target.arg_names(name), args, kwargs,
                                       target.import_line),
                          stage="raising").failure(summary, details=details)
    return check


PROPERTIES = [Property(s.name, TITLE, STRATEGIES[s.name], check_raises_like_torch(s),
                       examples=s.raising_examples, budget=0.5)
              for s in SIGNATURES.values() if s.torch_function]
