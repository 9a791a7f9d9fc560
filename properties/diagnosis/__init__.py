"""Diagnosis of known mistakes, by recomputation.

When a property fails on a result — one call of the target (a CallResult) or an observation
of a module (an Observation) — the suite computes in float64, from that result's inputs, what
each known mistake of its contract name would have produced (a flipped kernel, channels
averaged, a pool padded with zeros, batch norm with the unbiased variance, ...) and compares
the target's result with it under the one comparison of the suite (properties.compare). The
target's source is never read: a mistake is recognised by what it computes.

The naming rule, the only one:
  1. the mistakes tried are the ones the name's signature lists (properties.signatures), in
     that order, each as properties.diagnosis.mistakes declares it;
  2. of those the result shows, a call's are confirmed on a second call of the target on a
     generic input (`second_call`: new values, and generic sizes where mistakes hide in
     sizes): only the mistakes that explain its result too are kept (its result is the
     mistake's value, wrong or — where the mistake makes no difference — right). A mistake
     only the minimal input fits is not named: the failure says "on this input your result
     equals ..." instead (a hint, not a diagnosis);
  3. the first mistake kept is named ("mistake-id: what it is"); when the input cannot tell
     it from others that are kept too, they follow ("on this input also consistent with").

    explain(failure, target)  fills failure.diagnosis and makes the replay snippet print the
                              expected value after the target's. Property.verify calls it
                              once per failure Hypothesis reports (its minimal example).
"""
from __future__ import annotations

import warnings

import torch

from properties.diagnosis.core import RESULT, View
from properties.diagnosis.generic import generic_params
from properties.diagnosis.mistakes import CORRECT, MISTAKES, Mistake
from properties.failures import PropertyFailure
from properties.results import CallResult, Observation
from properties.signatures import signature
from properties.snippets import value_literal

#: mistake id -> what it is, in one line.
DESCRIPTIONS = {m.id: m.says for m in MISTAKES.values()}

#: The seed of the second call's generic values.
SECOND_CALL_SEED = 20261122


# --------------------------------------------------------------------------- the view

def view_of(result, dialect: str | None = None, conventions: dict | None = None) -> View:
    """A View of a CallResult (its arguments by name, the signature's defaults filled in) or
    of an Observation (its inputs)."""
    if isinstance(result, CallResult):
        sig = signature(result.name, dialect or _guess_dialect(result))
        params, after = sig.bind(result.args, result.kwargs), result.after()
        subject, may_change, dialect = result.name, sig.may_change, sig.dialect
    else:
        params, after = dict(result.inputs), {}
        subject, may_change = f"{result.name}:{result.stage}", ()
    first = next((v for v in params.values() if isinstance(v, torch.Tensor)), None)
    view = View(result, subject, params, after, dialect,
                first.dtype if first is not None else torch.float64, dict(conventions or {}),
                may_change=may_change)
    correct = CORRECT.get(subject)
    if correct is not None:
        view.correct = correct(view)
    return view


def _guess_dialect(call: CallResult) -> str | None:
    """batch_norm's dialect from the call's arguments, when no target says it."""
    if call.name != "batch_norm":
        return None
    names = call.arg_names
    return {"is_training": "d2l-1st", "X": "d2l-2nd", "input": "functional"}.get(
        names[0] if names else "", "d2l-2nd")


def candidates(view: View) -> list[Mistake]:
    """The mistakes tried for the view's subject, in its signature's order."""
    sig = signature(view.name, view.dialect)
    return [MISTAKES[m] for m in sig.mistakes if view.subject in MISTAKES[m].shows_in]


def shown_mistakes(view: View) -> list[Mistake]:
    """The known mistakes the view's result shows, in the order they are tried."""
    return [m for m in candidates(view) if m.shows(view)]


def diagnosis_line(shown: list[Mistake]) -> str | None:
    """Rule 3: the first mistake's line; others the input cannot tell from it follow."""
    if not shown:
        return None
    others = [m.id for m in shown[1:]]
    return shown[0].line() + (f" (on this input also consistent with: {', '.join(others)})"
                              if others else "")


def diagnose_view(view: View) -> str | None:
    """Rules 1 and 3, without the second call."""
    return diagnosis_line(shown_mistakes(view))


def confirmed(shown: list[Mistake], view: View, target) -> list[Mistake]:
    """Rule 2: the mistakes of `shown` that the second call of the target, on a generic input
    (`second_call`), shows as well.

    A minimal input is often degenerate: on `[[0, 1]]` a corr2d that returns zeros agrees with
    the flipped kernel; with pool sizes (1, 3) a divisor p_h·p_h is p_h·p_w. A mistake only
    the degenerate input fits is not named. When there is no second call to make (no tensor
    argument, no target), `shown` stands."""
    if not shown or target is None or view.call is None:
        return shown
    call = second_call(view.call, target)
    if call is None:
        return shown
    second = view_of(call, view.dialect, view.conventions)
    return [m for m in shown if m.explains(second)]


def second_call(call: CallResult, target) -> CallResult | None:
    """The target's CallResult for `call` made generic (properties.diagnosis.generic: every
    tensor redrawn from a seeded normal, the sizes made generic where mistakes hide in
    them), in the same grad mode; None when the call has no tensor argument or the target
    does not return."""
    if not any(isinstance(v, torch.Tensor) and v.dtype.is_floating_point
               for v in (*call.args, *call.kwargs.values())):
        return None
    sig = signature(call.name, _guess_dialect(call) if call.name == "batch_norm" else None)
    params = sig.bind(call.args, call.kwargs)
    generator = torch.Generator().manual_seed(SECOND_CALL_SEED)
    fresh = generic_params(call.name, params, generator)
    args = tuple(fresh[name] for name in sig.arg_names[:len(call.args)])
    kwargs = {name: fresh[name] for name in call.kwargs}
    try:
        return target.call_in_grad_mode(call.grad_enabled, call.name, *args, **kwargs)
    except PropertyFailure as failure:  # e.g. an input changed in place: the call is kept
        return failure.call


def diagnose(failure: PropertyFailure, dialect: str | None = None,
             conventions: dict | None = None) -> str | None:
    """"MISTAKE-ID: what it is" when the failure's wrong call computes a known mistake, else
    None (also when the failure carries no call). No second call (no target here)."""
    if failure.call is None:
        return None
    return diagnose_view(view_of(failure.call, dialect, conventions))


# --------------------------------------------------------------------------- the hook

def explain(failure: PropertyFailure, target=None) -> None:
    """Complete a failure for the report: spell out a bare mistake id; name the mistake the
    failing result shows (the naming rule above); make the replay snippet print the expected
    value. Never raises: a diagnosis that breaks is a warning, not a failure of the run."""
    if failure.diagnosis in DESCRIPTIONS:
        failure.mistake = failure.diagnosis
        failure.diagnosis = f"{failure.diagnosis}: {DESCRIPTIONS[failure.diagnosis]}"
    result = failure.call if failure.call is not None else failure.observation
    if result is None:
        return
    try:
        view = view_of(result, target.dialect(result.name) if target is not None else None,
                       getattr(target, "conventions", {}).get(result.name))
        if failure.diagnosis is None:
            shown = shown_mistakes(view)
            kept = confirmed(shown, view, target)
            failure.diagnosis = diagnosis_line(kept)
            failure.mistake = kept[0].id if kept else None
            if shown and not kept:
                failure.details.append(
                    f"on this input your result equals what {shown[0].id} computes "
                    f"({shown[0].says}), but a larger input shows it is not that mistake")
        if failure.call is not None and failure.example is not None and \
                failure.example == failure.call.example:
            failure.example = "\n".join([failure.example,
                                         *expected_lines(view, failure.mismatch)])
    except Exception as exc:  # noqa: BLE001 - diagnosis must not turn a failure into an error
        warnings.warn(f"convcheck: diagnosing {result.name} raised {type(exc).__name__}: "
                      f"{exc}", stacklevel=2)


def expected_lines(view: View, found=None) -> list[str]:
    """Lines for the replay snippet printing, after the target's own result (`got`), the
    correct value of each wrong part (when it is unique) and the largest difference between
    the two, where it is, and the error allowed at the first wrong element (`found`, the
    failure's properties.compare.Mismatch), so a difference too small for torch's four
    printed decimals still shows."""
    lines = []
    for part, values in view.correct.items():
        if len(values) != 1 or not view.wrong(part):
            continue
        literal = value_literal(values[0].value.to(torch.float64))
        if part == RESULT:
            got, label = "got", "expected (float64):"
        elif part.startswith("item"):
            got, label = f"got[{part[4:]}]", f"expected item {part[4:]} (float64):"
        else:
            got = part.removeprefix("arg:")
            label = f"expected {got} after the call (float64):"
            lines.append(f"print('{got} after the call:', {got})")
        lines += [f"expected = {literal}", f"print({label!r}, expected)"]
        shape = values[0].value.shape
        if tuple(view.value(part).shape) == tuple(shape):
            lines += ["difference = (torch.as_tensor(" + got + ").double() - expected).abs()",
                      "print('largest difference:', difference.max().item(), 'at', "
                      "[int(i) for i in (difference == difference.max()).nonzero()[0]])"]
            if found is not None and found.kind == "values" and part == RESULT:
                lines.append(f"print('error allowed at {list(found.where)}:', "
                             f"{found.allowed_at:.3g})")
    return lines


__all__ = ["DESCRIPTIONS", "MISTAKES", "Observation", "View", "confirmed", "diagnose",
           "diagnose_view", "diagnosis_line", "explain", "expected_lines", "second_call",
           "shown_mistakes", "view_of"]
