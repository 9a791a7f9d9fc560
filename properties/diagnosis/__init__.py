"""Diagnosis of known mistakes, by recomputation.

When a property fails on one call of the target (PropertyFailure.call, a CallResult), the
suite computes in float64, from that call's arguments, the results of the mistakes students
make with that contract name — a flipped kernel, channels averaged, a pool padded with zeros,
batch norm with the unbiased variance, ... — and names the first one the target's result
agrees with, under the same tolerance model as the properties (properties.tolerance). The
target's source is never read: a mistake is recognised by what it computes.

    diagnose(failure)  -> "flipped-kernel: computes convolution (the kernel flipped), not
                           cross-correlation", or None
    explain(failure, target)  fills failure.diagnosis (Property.verify calls it), spells out a
                           bare mistake id set by a property, and makes the replay snippet print
                           the expected value after the target's.

The known mistakes live in diagnosis_conv.py, diagnosis_pool.py and diagnosis_bn.py, one
`Spec` per contract name (its correct values and its mistakes, in the order they are tried);
the machinery in diagnosis_core.py. Mistakes of the modules (Conv2D, BatchNorm) are named by
their own properties; `MODULE_MISTAKES` says them in words.
"""
from __future__ import annotations

import warnings

import torch
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument

from properties.diagnosis import bn as diagnosis_bn, conv as diagnosis_conv, pool as diagnosis_pool
from properties.diagnosis.core import RESULT, Mistake, View
from properties.failures import PropertyFailure
from properties.snippets import value_literal
from properties.target import ARG_NAMES

#: contract name -> Spec (its correct values and known mistakes).
REGISTRY = {**diagnosis_conv.SPECS, **diagnosis_pool.SPECS, **diagnosis_bn.SPECS}
_DEFAULTS = {**diagnosis_conv.DEFAULTS, **diagnosis_pool.DEFAULTS, **diagnosis_bn.DEFAULTS}

#: Mistakes that the module properties name themselves (props_conv_module, props_batch_norm*).
MODULE_MISTAKES = {
    "bn-moving-var-zeros": "the module's moving variance starts at zeros; it must start at "
                           "ones (a fresh module in eval mode is then the identity up to eps)",
    "parameters-not-nn-parameter": "the weights are plain tensors, not nn.Parameter, so the "
                                   "module's parameters() does not list them and no optimiser "
                                   "trains them",
    "parameters-detached": "the parameters are detached from autograd (.data, .detach(), "
                           "torch.no_grad or a new tensor), so no gradient reaches them",
}

#: mistake id -> what it is, in one line (the first wording wins when ids are shared).
DESCRIPTIONS: dict[str, str] = {}
for _spec in REGISTRY.values():
    for _mistake in _spec.mistakes:
        DESCRIPTIONS.setdefault(_mistake.id, _mistake.says)
for _id, _says in MODULE_MISTAKES.items():
    DESCRIPTIONS.setdefault(_id, _says)


# --------------------------------------------------------------------------- the view

def guess_dialect(call) -> str | None:
    """batch_norm's dialect from the call's arguments, when no target says it."""
    if call.name != "batch_norm":
        return None
    args = call.args
    if args and isinstance(args[0], bool):
        return "d2l-1st"
    if "training" in call.kwargs or (len(args) > 1 and isinstance(args[1], torch.Tensor)
                                     and args[1].dim() == 1):
        return "functional"
    return "d2l-2nd"


def view_of(call, dialect: str | None = None, conventions: dict | None = None) -> View:
    """A View of a CallResult: its arguments by name, with the signature's defaults."""
    dialect = dialect or guess_dialect(call)
    names = ARG_NAMES.get((call.name, dialect), ARG_NAMES.get(call.name, ()))
    defaults = _DEFAULTS.get((call.name, dialect), _DEFAULTS.get(call.name, {}))
    params = {**defaults, **dict(zip(names, call.args)), **call.kwargs}
    after = {**dict(zip(names, call.args_after)), **call.kwargs_after}
    first = next((v for v in params.values() if isinstance(v, torch.Tensor)), None)
    view = View(call, params, after, dialect,
                first.dtype if first is not None else torch.float64, dict(conventions or {}))
    spec = REGISTRY.get(call.name)
    if spec is not None:
        view.correct = spec.correct(view)
    return view


def shown_mistakes(view: View) -> list[Mistake]:
    """The known mistakes of the view's contract name that its outcome shows, in the order
    they are tried (one entry per mistake id)."""
    spec = REGISTRY.get(view.call.name)
    shown: list[Mistake] = []
    for mistake in spec.mistakes if spec is not None else ():
        if mistake.id not in (m.id for m in shown) and mistake.shows(view):
            shown.append(mistake)
    return shown


def diagnosis_line(shown: list[Mistake]) -> str | None:
    """The first mistake's line; when the input cannot tell it from others, they follow."""
    if not shown:
        return None
    others = [m.id for m in shown[1:]]
    return shown[0].line() + (f" (on this input also consistent with: {', '.join(others)})"
                              if others else "")


def diagnose_view(view: View) -> str | None:
    """The first known mistake of the view's contract name that its outcome shows; when the
    (minimal) input cannot tell it from other known mistakes, they are named after it."""
    return diagnosis_line(shown_mistakes(view))


def confirmed(shown: list[Mistake], view: View, target) -> list[Mistake]:
    """The mistakes of `shown` that also show on a second call of the target with generic
    values (`second_call`) of the same shapes and parameters.

    A minimal input is often degenerate: on `[[0, 1]]` a corr2d that returns zeros agrees with
    the flipped kernel. When the second result is wrong too, only the mistakes it shows are
    kept (none: no diagnosis); when it is right or cannot be had, the second call says nothing
    and `shown` stands."""
    if not shown or target is None:
        return shown
    call = second_call(view.call, target)
    if call is None:
        return shown
    second = view_of(call, view.dialect, view.conventions)
    if not second.is_wrong():
        return shown
    return [m for m in shown if m.shows(second)]


def second_call(call, target):
    """The target's CallResult for `call`'s arguments with every tensor redrawn from a seeded
    standard normal (positive for variances), or None when the call has no tensor argument or
    the target does not return."""
    def drawable(value) -> bool:
        return isinstance(value, torch.Tensor) and value.dtype.is_floating_point

    if not any(drawable(v) for v in (*call.args, *call.kwargs.values())):
        return None
    generator = torch.Generator().manual_seed(20261122)

    def redrawn(name: str, value):
        if not drawable(value):
            return value
        fresh = torch.randn(value.shape, generator=generator, dtype=torch.float64)
        if "var" in name:
            fresh = fresh.abs() + 0.5
        return fresh.to(value.dtype)

    names = (*target.arg_names(call.name), *[""] * len(call.args))
    args = tuple(redrawn(name, value) for name, value in zip(names, call.args))
    kwargs = {name: redrawn(name, value) for name, value in call.kwargs.items()}
    grad_mode = False if call.description.endswith("under torch.no_grad()") else None
    try:
        return target.call_in_grad_mode(grad_mode, call.name, *args, **kwargs)
    except PropertyFailure as failure:  # e.g. an input changed in place: the call is kept
        return failure.call


def diagnose(failure: PropertyFailure, dialect: str | None = None,
             conventions: dict | None = None) -> str | None:
    """"MISTAKE-ID: what it is" when the failure's wrong call computes a known mistake, else
    None (also when the failure carries no call)."""
    if failure.call is None or failure.call.name not in REGISTRY:
        return None
    return diagnose_view(view_of(failure.call, dialect, conventions))


# --------------------------------------------------------------------------- the hook

def explain(failure: PropertyFailure, target=None) -> None:
    """Complete a failure for the report: spell out a bare mistake id; on Hypothesis's final
    (minimal) example only, diagnose the wrong call and add the expected value to the replay
    snippet. Never raises: a diagnosis that breaks is a warning, not a failure of the run."""
    if failure.diagnosis in DESCRIPTIONS:
        failure.diagnosis = f"{failure.diagnosis}: {DESCRIPTIONS[failure.diagnosis]}"
    call = failure.call
    if call is None or call.name not in REGISTRY or not _final_example():
        return
    try:
        view = view_of(call, target.dialect(call.name) if target is not None else None,
                       getattr(target, "conventions", {}).get(call.name))
        if failure.diagnosis is None:
            failure.diagnosis = diagnosis_line(confirmed(shown_mistakes(view), view, target))
        if failure.example is not None and failure.example == call.example:
            failure.example = "\n".join([failure.example, *expected_lines(view)])
    except Exception as exc:  # noqa: BLE001 - diagnosis must not turn a failure into an error
        warnings.warn(f"convcheck: diagnosing {call.name} raised {type(exc).__name__}: {exc}",
                      stacklevel=2)


def _final_example() -> bool:
    """True on Hypothesis's final run of the minimal example (and outside Hypothesis), so
    shrinking does not pay for diagnosis at every step."""
    try:
        return bool(current_build_context().is_final)
    except InvalidArgument:
        return True


def expected_lines(view: View) -> list[str]:
    """Lines for the replay snippet printing the correct value of each wrong part (when the
    correct value is unique), after the target's own result."""
    lines = []
    for part, values in view.correct.items():
        if len(values) != 1 or not view.wrong(part):
            continue
        literal = value_literal(values[0].value.to(torch.float64))
        if part == RESULT:
            lines.append(f"print('expected (float64):', {literal})")
        elif part.startswith("item"):
            lines.append(f"print('expected item {part[4:]} (float64):', {literal})")
        else:
            name = part.removeprefix("arg:")
            lines += [f"print('{name} after the call:', {name})",
                      f"print('expected {name} after the call (float64):', {literal})"]
    return lines
