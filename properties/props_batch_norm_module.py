"""Properties of the `BatchNorm(num_features, num_dims)` module (contract: behaves as torch's
BatchNorm1d/2d with momentum 0.1 and eps 1e-5, up to the running-variance convention, which
the suite detects; moving_var starts at ones). Modules run in training as module.train() with
grad enabled, and in evaluation as module.eval() under torch.no_grad(). Modules run in float32,
their parameters' dtype.

    training:   y = gamma (x - mu) / sqrt(sigma2 + eps) + beta       (batch statistics)
                r_mean <- 0.9 r_mean + 0.1 mu,  r_var <- 0.9 r_var + 0.1 v
                (v the biased or the unbiased batch variance, per the convention)
    evaluation: y = gamma (x - r_mean) / sqrt(r_var + eps) + beta
A fresh module has gamma = 1, beta = 0, r_mean = 0, r_var = 1, so in evaluation
y = x / sqrt(1 + eps).

No attribute names are assumed: gamma and beta are found among module.parameters() (the
parameter of C elements starting at ones, and the one starting at zeros), running statistics
are read from what the module outputs.
"""
from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn

from properties import oracles_bn
from properties.checks import assert_matches
from properties.compare import mismatch
from properties.contract import ACCEPTABLE_CONVENTIONS
from properties.registry import Property
from properties.results import Observation, portable
from properties.snippets import value_literal
from properties.strategies_bn import CHANNELS, MODULE_EXAMPLES, ModuleCase, module_cases

NAME = "BatchNorm"
EPS = oracles_bn.MODULE_EPS
TORCH_MODULES = {2: "torch.nn.BatchNorm1d", 4: "torch.nn.BatchNorm2d"}


# =========================================================================== tasks (target side)

def _build(ns, channels: int, num_dims: int):
    return ns[NAME](channels, num_dims)


def _affine_parameters(module, channels: int):
    """(gamma, beta): the module's parameters of C elements that start at ones and at zeros
    (None for each not found)."""
    params = [p for p in module.parameters() if p.numel() == channels] \
        if isinstance(module, nn.Module) else []
    gamma = next((p for p in params if bool((p == 1).all())), None)
    beta = next((p for p in params if p is not gamma and bool((p == 0).all())), None)
    return gamma, beta


def _set_affine(module, channels, gamma, beta):
    """Give the module's gamma and beta these values; returns the two parameters, or None
    when they cannot be found."""
    found_gamma, found_beta = _affine_parameters(module, channels)
    if found_gamma is None or found_beta is None:
        return None
    with torch.no_grad():
        found_gamma.copy_(gamma.reshape(found_gamma.shape))
        found_beta.copy_(beta.reshape(found_beta.shape))
    return found_gamma, found_beta


def describe_parameters(ns, channels: int, num_dims: int) -> dict:
    """Task: what a fresh module holds: its parameters, and its tensor attributes of C
    elements that are not parameters."""
    module = _build(ns, channels, num_dims)
    is_module = isinstance(module, nn.Module)
    params = [{"shape": tuple(p.shape), "requires_grad": bool(p.requires_grad),
               "ones": bool((p == 1).all()), "zeros": bool((p == 0).all())}
              for p in (module.parameters() if is_module else ())]
    plain = [{"name": name, "requires_grad": bool(value.requires_grad)}
             for name, value in vars(module).items()
             if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter)
             and value.numel() == channels]
    return {"is_module": is_module, "type": type(module).__name__, "parameters": params,
            "plain_tensors": plain}


def evaluate_fresh(ns, channels: int, num_dims: int, X) -> dict:
    """Task: a fresh module in evaluation mode applied to X."""
    module = _build(ns, channels, num_dims)
    module.eval()
    with torch.no_grad():
        return portable(module(X))


def train_then_evaluate(ns, channels: int, num_dims: int, batches, probe) -> dict:
    """Task: train a fresh module on each batch in turn (forward only), then evaluate it on
    `probe` twice."""
    module = _build(ns, channels, num_dims)
    module.train()
    with torch.enable_grad():
        outputs = [portable(module(x)) for x in batches]
    module.eval()
    with torch.no_grad():
        first, second = portable(module(probe)), portable(module(probe))
    return {"train": outputs, "eval": first, "eval_again": second}


def train_with_affine(ns, channels: int, num_dims: int, X, gamma, beta) -> dict:
    """Task: a fresh module with gamma and beta set, one training forward pass on X."""
    module = _build(ns, channels, num_dims)
    affine = _set_affine(module, channels, gamma, beta)
    module.train()
    with torch.enable_grad():
        return {"affine_set": affine is not None, "Y": portable(module(X))}


def gradients_with_affine(ns, channels: int, num_dims: int, X, gamma, beta, upstream) -> dict:
    """Task: gradients of sum(upstream * module(X)) in training, with respect to X, gamma and
    beta (the module's own parameters, given these values)."""
    module = _build(ns, channels, num_dims)
    affine = _set_affine(module, channels, gamma, beta)
    if affine is None:
        return {"status": "no parameters"}
    found_gamma, found_beta = affine
    X = X.detach().clone().requires_grad_()
    module.train()
    with torch.enable_grad():
        Y = module(X)
        if not isinstance(Y, torch.Tensor) or not Y.requires_grad:
            return {"status": "detached"}
        Y.backward(upstream.to(Y.dtype))
    grads = {"X": X.grad, "gamma": _per_channel(found_gamma.grad),
             "beta": _per_channel(found_beta.grad)}
    return {"status": "ok", "grads": {k: None if g is None else g.detach()
                                      for k, g in grads.items()}}


def _per_channel(grad):
    """A parameter's gradient as a (C,) vector (parameters may be (1, C) or (1, C, 1, 1))."""
    return None if grad is None else grad.reshape(-1)


# =========================================================================== judge side

def _convention(target) -> tuple[str, str]:
    """(running-variance kind, where it comes from)."""
    kind = target.conventions.get(NAME, {}).get("running_var")
    if kind:
        return kind, "the running-variance convention detected for this module"
    return "unbiased", ("torch's unbiased running variance: the suite could not detect this "
                        "module's convention")


def _import_lines(target) -> list[str]:
    return ["import torch", target.import_line]


def _trained_from_zeros(case: ModuleCase, kind: str):
    """What a module whose moving variance starts at zeros gives after case.batches."""
    state = oracles_bn.module_after_training(case.batches, kind, initial_var=0.0)
    return oracles_bn.evaluation_output(case.probe, state.mean, state.var, eps=EPS,
                                        mean_error=state.mean_error, var_error=state.var_error)


def observed(description: str, returned: dict, example: str, stage: str = "output",
             **inputs) -> Observation:
    """One module output as an Observation: its failures read like a call's, and the
    diagnosis knows the module's mistakes by the stage (properties.diagnosis.modules)."""
    return Observation(NAME, returned, description, example, stage=stage, inputs=inputs)


def _mode_lines(training: bool, line: str) -> list[str]:
    if training:
        return ["m.train()", line]
    return ["m.eval()", "with torch.no_grad():", f"    {line}"]


def _forward_snippet(target, case_channels, num_dims, steps) -> str:
    """Runnable Python: build the module, run `steps` ((training, tensor) pairs), print the
    last output."""
    lines = _import_lines(target) + [f"m = BatchNorm({case_channels}, {num_dims})"]
    for i, (training, x) in enumerate(steps):
        lines.append(f"x{i} = {value_literal(x)}")
        lines += _mode_lines(training, f"y{i} = m(x{i})")
    lines.append(f"print(y{len(steps) - 1})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- parameters

def check_parameters(target, sizes) -> None:
    """gamma and beta are nn.Parameters: module.parameters() yields two tensors of C elements
    requiring grad, one starting at ones (gamma) and one at zeros (beta)."""
    channels, num_dims = sizes
    found = target.run(describe_parameters, channels, num_dims, blame=NAME)
    where = f"BatchNorm({channels}, {num_dims})"
    of_c = [p for p in found["parameters"] if _numel(p["shape"]) == channels]
    complete = any(p["ones"] for p in of_c) and any(p["zeros"] for p in of_c)
    facts = {"is_module": found["is_module"], "complete": complete,
             "frozen": [p["shape"] for p in of_c if not p["requires_grad"]]}
    script = "\n".join(_import_lines(target) + [
        f"m = BatchNorm({channels}, {num_dims})",
        "print([(tuple(p.shape), p.requires_grad) for p in m.parameters()])"])
    fact = Observation(NAME, portable(None), f"a fresh {where}", script, stage="parameters",
                       facts=facts)
    if not found["is_module"]:
        raise fact.failure(f"{where} is a {found['type']}, not a torch.nn.Module")
    if not complete:
        plain = ", ".join(t["name"] for t in found["plain_tensors"]) or "none"
        raise fact.failure(
            f"module.parameters() of {where} does not hold gamma (C ones) and beta (C "
            f"zeros): it yields {_describe_parameters(found['parameters'])}",
            details=[f"tensor attributes of {channels} elements that are not parameters: "
                     f"{plain} (wrap gamma and beta in nn.Parameter, so optimisers see them)"])
    if facts["frozen"]:
        raise fact.failure(f"a parameter of {where} does not require grad, so gamma/beta "
                           "cannot learn")


def _numel(shape) -> int:
    total = 1
    for s in shape:
        total *= s
    return total


def _describe_parameters(params) -> str:
    if not params:
        return "no parameters at all"
    return "; ".join(f"shape {p['shape']}" + (" (ones)" if p["ones"] else "")
                     + (" (zeros)" if p["zeros"] else "") for p in params)


# --------------------------------------------------------------------------- evaluation

def check_fresh_evaluation_is_identity(target, case: ModuleCase) -> None:
    """A fresh module in evaluation: y = (x - 0) / sqrt(1 + eps) * 1 + 0 = x / sqrt(1 + eps)."""
    X = case.probe
    returned = target.run(evaluate_fresh, case.channels, case.num_dims, X, blame=NAME)
    snippet = _forward_snippet(target, case.channels, case.num_dims, [(False, X)])
    result = observed(f"a fresh BatchNorm({case.channels}, {case.num_dims}) in evaluation on "
                      f"x: float32 {tuple(X.shape)}", returned, snippet, "fresh-evaluation",
                      x=X, channels=case.channels)
    zeros, ones = torch.zeros(case.channels), torch.ones(case.channels)
    if accepted_zero_start(target, result, oracles_bn.evaluation_output(X, zeros, zeros,
                                                                        eps=EPS)):
        return
    assert_matches(result, oracles_bn.evaluation_output(X, zeros, ones, eps=EPS),
                   input_dtype=X.dtype, what="y",
                   oracle="x / sqrt(1 + eps) (running mean 0, running variance 1)")


ZERO_START = "moving-var-zeros"


def accepted_zero_start(target, result, from_zeros) -> bool:
    """Whether the instructor accepts a moving variance starting at zeros (--accept
    moving-var-zeros) and the result is exactly that module's: then a note, not a failure."""
    if ZERO_START not in target.accepted:
        return False
    value = result.tensor()
    if mismatch(value, from_zeros, input_dtype=value.dtype) is not None:
        return False
    target.note(NAME, f"{ACCEPTABLE_CONVENTIONS[ZERO_START]}: accepted by this assignment")
    return True


def check_train_then_evaluate(target, case: ModuleCase) -> None:
    """Training on each batch normalises it with its own statistics and moves the running
    statistics as torch's BatchNorm1d/2d does (running variance per the convention); then
    evaluation normalises with them, twice alike."""
    returned = target.run(train_then_evaluate, case.channels, case.num_dims, case.batches,
                          case.probe, blame=NAME)
    steps = [(True, x) for x in case.batches]
    module = f"BatchNorm({case.channels}, {case.num_dims})"
    for i, (x, output) in enumerate(zip(case.batches, returned["train"])):
        result = observed(f"{module} in training, step {i + 1} (x: float32 "
                          f"{tuple(x.shape)})", output,
                          _forward_snippet(target, case.channels, case.num_dims,
                                           steps[:i + 1]), "training")
        assert_matches(result, oracles_bn.training_output(x, eps=EPS), input_dtype=x.dtype,
                       what=f"y of training step {i + 1}",
                       oracle="(x - batch mean) / sqrt(biased batch variance + eps)")
    kind, source = _convention(target)
    state = oracles_bn.module_after_training(case.batches, kind)
    expected = oracles_bn.evaluation_output(case.probe, state.mean, state.var, eps=EPS,
                                            mean_error=state.mean_error,
                                            var_error=state.var_error)
    snippet = _forward_snippet(target, case.channels, case.num_dims,
                               steps + [(False, case.probe)])
    oracle = (f"{TORCH_MODULES[case.num_dims]} fed the same batches"
              if kind == "unbiased" else
              f"{TORCH_MODULES[case.num_dims]} fed the same batches, with the biased batch "
              "variance in its running variance")
    for label, output in (("", returned["eval"]), (" (evaluated a second time)",
                                                   returned["eval_again"])):
        result = observed(f"{module} trained {len(case.batches)} step(s), then in "
                          f"evaluation{label}", output, snippet, "trained-evaluation",
                          batches=case.batches, probe=case.probe, channels=case.channels)
        if accepted_zero_start(target, result, _trained_from_zeros(case, kind)):
            continue
        assert_matches(result, expected, input_dtype=case.probe.dtype,
                       what=f"y in evaluation{label}", oracle=f"{oracle} ({source})")


# --------------------------------------------------------------------------- training

def check_training_agrees(target, case: ModuleCase) -> None:
    """With gamma and beta set through module.parameters(), one training step gives
    y = gamma (x - mu) / sqrt(sigma2 + eps) + beta."""
    X = case.batches[0]
    returned = target.run(train_with_affine, case.channels, case.num_dims, X, case.gamma,
                          case.beta, blame=NAME)
    gamma, beta = (case.gamma, case.beta) if returned["affine_set"] else (None, None)
    lines = _import_lines(target) + [f"m = BatchNorm({case.channels}, {case.num_dims})"]
    if returned["affine_set"]:
        lines += ["# gamma and beta: the parameters of C elements starting at ones and zeros",
                  "gamma, beta = [p for p in m.parameters() if p.numel() == "
                  f"{case.channels}][:2]",
                  "with torch.no_grad():",
                  f"    gamma.copy_({value_literal(case.gamma)}.reshape(gamma.shape))",
                  f"    beta.copy_({value_literal(case.beta)}.reshape(beta.shape))"]
    lines += [f"x = {value_literal(X)}", "m.train()", "print(m(x))"]
    result = observed(f"BatchNorm({case.channels}, {case.num_dims}) in training on x: "
                      f"float32 {tuple(X.shape)}" + (", gamma and beta set" if
                                                     returned["affine_set"] else ""),
                      returned["Y"], "\n".join(lines), "training")
    assert_matches(result, oracles_bn.training_output(X, gamma, beta, EPS),
                   input_dtype=X.dtype, what="y", oracle="the float64 batch norm "
                   "(torch's F.batch_norm in training)")


def check_gradients(target, case: ModuleCase) -> None:
    """dL/dx, dL/dgamma, dL/dbeta of L = sum(upstream * module(x)) in training equal torch's
    float64 autograd of F.batch_norm. Unlike a function's, a module's parameters must learn
    by autograd: a gradient that does not reach them is a failure."""
    X = case.batches[0]
    outcome = target.run(gradients_with_affine, case.channels, case.num_dims, X, case.gamma,
                         case.beta, case.upstream, blame=NAME)
    description = (f"BatchNorm({case.channels}, {case.num_dims}) in training on x: float32 "
                   f"{tuple(X.shape)}, then backward of sum(upstream * y)")
    snippet = _gradient_snippet(target, case)
    grads = outcome.get("grads", {})
    facts = {"parameters_found": outcome["status"] != "no parameters",
             "differentiable": outcome["status"] != "detached",
             "unreached": [k for k, g in grads.items() if g is None]}
    fact = Observation(NAME, portable(None), description, snippet, stage="gradients",
                       facts=facts)
    if outcome["status"] == "no parameters":
        raise fact.failure("gamma and beta are not among module.parameters(), so no gradient "
                           "can reach them")
    if outcome["status"] == "detached":
        raise fact.failure("y does not require grad: the output is detached from autograd")
    if facts["unreached"]:
        raise fact.failure(f"no gradient reached {', '.join(facts['unreached'])}: not "
                           "connected to y through autograd")
    expected = oracles_bn.training_gradients(X, case.gamma, case.beta, case.upstream, EPS)
    for name, exp in expected.items():
        result = observed(f"{description}: the gradient with respect to {name}",
                          portable(grads[name]), snippet, "gradient")
        assert_matches(result, exp, input_dtype=X.dtype, what=f"dL/d{name}",
                       oracle="torch's float64 autograd of F.batch_norm")


def _gradient_snippet(target, case: ModuleCase) -> str:
    lines = _import_lines(target) + [
        f"m = BatchNorm({case.channels}, {case.num_dims})",
        f"gamma, beta = [p for p in m.parameters() if p.numel() == {case.channels}][:2]",
        "with torch.no_grad():",
        f"    gamma.copy_({value_literal(case.gamma)}.reshape(gamma.shape))",
        f"    beta.copy_({value_literal(case.beta)}.reshape(beta.shape))",
        f"x = {value_literal(case.batches[0])}.requires_grad_()",
        "m.train()",
        f"m(x).backward({value_literal(case.upstream)})",
        "print(x.grad, gamma.grad, beta.grad)"]
    return "\n".join(lines)


# =========================================================================== declarations

MODULE_SIZES = st.tuples(CHANNELS, st.sampled_from((2, 4)))

PROPERTIES = [
    Property(NAME, "keeps gamma and beta as nn.Parameters (C ones and C zeros, requiring grad)",
             MODULE_SIZES, check_parameters, examples=((3, 4),), budget=0.1),
    Property(NAME, "fresh, in evaluation mode, is the identity up to eps: y = x/sqrt(1+eps)",
             module_cases(steps=st.just(1)), check_fresh_evaluation_is_identity,
             examples=MODULE_EXAMPLES[:1], budget=0.25),
    Property(NAME, "trained on a few batches then evaluated matches torch's "
                   "BatchNorm1d/2d fed the same batches",
             module_cases(), check_train_then_evaluate, examples=MODULE_EXAMPLES, budget=0.5),
    Property(NAME, "in training agrees with the float64 oracle (gamma and beta set)",
             module_cases(steps=st.just(1)), check_training_agrees, examples=MODULE_EXAMPLES,
             budget=0.5),
    Property(NAME, "has gradients wrt input, gamma and beta that match torch's",
             module_cases(steps=st.just(1)), check_gradients, examples=MODULE_EXAMPLES[1:],
             budget=0.5),
]
