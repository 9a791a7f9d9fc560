"""Properties of the textbook's `Conv2D(kernel_size)` module (d2l 7.2): on one (h, w) image,

    forward(x) = corr2d(x, weight) + bias,   Y[i, j] = b + Σ_{a, b} x[i + a, j + b] W[a, b]

with weight (kh, kw) and bias (one element) its parameters, learning by autograd. Training runs
as module.train() with grad enabled, evaluation as module.eval() under torch.no_grad().

The parameters are found generically (contract: "weight and bias are its parameters"): the
parameter shaped like the kernel is the weight, the one-element one the bias (a name containing
'bias' settles a 1x1 kernel). Tasks (module-level, they may run in a worker process) build the
module, compute and return plain data; the checks judge.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import assume
from hypothesis import strategies as st

from properties import oracles_conv
from properties.checks import assert_matches
from properties.registry import Property
from properties.results import Observation, portable
from properties.snippets import value_literal
from properties.strategies_conv import (ModuleForwardCase, ModuleGradCase, RecoveryCase,
                                        module_forward_cases, module_gradient_cases,
                                        recovery_cases)
from properties.tolerance import Expected, compared_dtype

NAME = "Conv2D"
PARAMETERS_TITLE = "has a weight and a bias parameter of the right shapes that require grad"
KERNEL_SIZES = [(1, 2), (2, 2), (3, 1), (1, 1), (2, 3)]

# --------------------------------------------------------------------------- tasks (target side)


def _tensor_attributes(module) -> list[tuple[str, torch.Tensor]]:
    """Tensors stored as plain attributes (not registered parameters), in definition order."""
    return [(name, value) for name, value in vars(module).items()
            if isinstance(value, torch.Tensor)]


def find_weight_and_bias(module, kernel_size) -> tuple[tuple[str, torch.Tensor],
                                                       tuple[str, torch.Tensor]] | str:
    """((weight name, weight), (bias name, bias)) among the module's parameters (else among
    its tensor attributes), or a sentence saying what is missing."""
    candidates = list(module.named_parameters()) or _tensor_attributes(module)
    by_bias_name = sorted(candidates, key=lambda item: "bias" in item[0].lower())
    weight = next((c for c in by_bias_name if tuple(c[1].shape) == tuple(kernel_size)), None)
    if weight is None:
        return (f"has no parameter shaped like the kernel {tuple(kernel_size)} "
                f"(found {[(n, tuple(t.shape)) for n, t in candidates]})")
    bias = next((c for c in reversed(by_bias_name) if c[1].numel() == 1 and c is not weight),
                None)
    if bias is None:
        return (f"has no one-element bias parameter "
                f"(found {[(n, tuple(t.shape)) for n, t in candidates]})")
    return weight, bias


def describe_parameters(ns, kernel_size) -> dict:
    """Task: what a fresh Conv2D(kernel_size) holds: its registered parameters, and tensors
    that require grad stored outside parameters()."""
    module = ns[NAME](kernel_size)
    registered = [(name, tuple(p.shape), bool(p.requires_grad), type(p).__name__)
                  for name, p in module.named_parameters()]
    loose = [(name, tuple(t.shape)) for name, t in _tensor_attributes(module)
             if t.requires_grad]
    loose += [(name, tuple(t.shape)) for name, t in module.named_buffers() if t.requires_grad]
    return {"parameters": registered, "loose": loose}


def forward_module(ns, kernel_size, seed, weight, bias, x, mode) -> dict:
    """Task: torch.manual_seed(seed); Conv2D(kernel_size); parameters set to weight/bias unless
    None; forward x in `mode`; return the output and the parameters read back."""
    torch.manual_seed(seed)
    module = ns[NAME](kernel_size)
    found = find_weight_and_bias(module, kernel_size)
    if isinstance(found, str):
        return {"missing": found}
    (weight_name, w), (bias_name, b) = found
    if weight is not None:
        with torch.no_grad():
            w.copy_(weight.reshape(w.shape))
            b.copy_(bias.reshape(b.shape))
    if mode == "train":
        module.train()
        with torch.enable_grad():
            y = module(x)
    else:
        module.eval()
        with torch.no_grad():
            y = module(x)
    return {"result": portable(y), "weight": w.detach().clone(), "bias": b.detach().clone(),
            "names": (weight_name, bias_name)}


def module_gradients(ns, kernel_size, weight, bias, x, upstream) -> dict:
    """Task: parameters set to weight/bias, L = Σ upstream ⊙ module(x) in training,
    L.backward(); return each parameter's grad (None when none reached it)."""
    module = ns[NAME](kernel_size)
    found = find_weight_and_bias(module, kernel_size)
    if isinstance(found, str):
        return {"missing": found}
    (weight_name, w), (bias_name, b) = found
    with torch.no_grad():
        w.copy_(weight.reshape(w.shape))
        b.copy_(bias.reshape(b.shape))
    module.train()
    with torch.enable_grad():
        y = module(x)
        if not isinstance(y, torch.Tensor) or not y.requires_grad:
            return {"differentiable": False, "names": (weight_name, bias_name)}
        if tuple(y.shape) != tuple(upstream.shape):
            return {"shape": tuple(y.shape)}
        (y * upstream.to(y.dtype)).sum().backward()
    grads = {"weight": w.grad, "bias": b.grad}
    return {"differentiable": True, "names": (weight_name, bias_name),
            "grads": {k: None if g is None else portable(g) for k, g in grads.items()}}


def train_module(ns, kernel_size, init_seed, inputs, targets, lr, momentum, steps) -> dict:
    """Task: `steps` full-batch steps of SGD with momentum on module.parameters() for
    L = ½ Σ_X Σ (module(X) − Y)²; return the learned weight and bias and what went wrong.

    The update is torch.optim.SGD's (v ← momentum·v + ∇L, θ ← θ − lr·v), written out as the
    textbook does its updates (torch.optim would import torch._dynamo: seconds, once)."""
    torch.manual_seed(init_seed)
    module = ns[NAME](kernel_size)
    params = list(module.parameters())
    if not params:
        return {"status": "no parameters"}
    found = find_weight_and_bias(module, kernel_size)
    if isinstance(found, str):
        return {"status": "missing", "missing": found}
    velocities = [torch.zeros_like(p) for p in params]
    module.train()
    for step in range(steps):
        with torch.enable_grad():
            for p in params:
                p.grad = None
            outputs = [module(X) for X in inputs]
            if any(tuple(y.shape) != tuple(Y.shape) for y, Y in zip(outputs, targets)):
                return {"status": "shape", "shape": tuple(outputs[0].shape)}
            loss = sum(((y - Y.to(y.dtype)) ** 2).sum() for y, Y in zip(outputs, targets)) / 2
            if not loss.requires_grad:
                return {"status": "not differentiable"}
            loss.backward()
        if step == 0:
            unreached = [name for name, p in module.named_parameters() if p.grad is None]
            if unreached:
                return {"status": "no gradient", "unreached": unreached}
            first_loss = float(loss.detach())
        with torch.no_grad():
            for p, v in zip(params, velocities):
                v.mul_(momentum).add_(p.grad)
                p.sub_(lr * v)
    (_, w), (_, b) = found
    return {"status": "trained", "weight": w.detach().clone(), "bias": b.detach().clone(),
            "first_loss": first_loss, "last_loss": float(loss.detach())}


# --------------------------------------------------------------------------- judge side

def _module_snippet(target, kernel_size, x, mode: str, *, before=(), after=(),
                    run: str = "print(module(x))") -> str:
    """A runnable script: build Conv2D(kernel_size), set it up, run it on x in `mode`."""
    if mode == "train":
        running = ["module.train()", run]
    else:
        running = ["module.eval()", "with torch.no_grad():", f"    {run}"]
    return "\n".join(["import torch", target.import_line, *before,
                      f"module = Conv2D({kernel_size!r})", *after, f"x = {value_literal(x)}",
                      *running])


def _module_description(kernel_size, x, mode: str) -> str:
    return (f"Conv2D({kernel_size!r}) in {mode} mode, forward(x: "
            f"{str(x.dtype).replace('torch.', '')} {tuple(x.shape)})")


def _parameter_setting(names, weight, bias) -> list[str]:
    """Snippet lines setting the parameters found by name (registered, else attributes)."""
    weight_name, bias_name = names
    return ["params = dict(module.named_parameters()) or vars(module)",
            "with torch.no_grad():",
            f"    params[{weight_name!r}].copy_({value_literal(weight)})",
            f"    params[{bias_name!r}].copy_({value_literal(bias)})"]


def _observed(returned: dict, description: str, snippet: str, stage: str,
              **facts) -> Observation:
    """A value (or the facts) a module task returned, as an Observation of `stage`."""
    return Observation(NAME, returned, description, snippet, stage=stage, facts=facts)


def _parameters_snippet(target, kernel_size) -> str:
    return "\n".join(["import torch", target.import_line, f"module = Conv2D({kernel_size!r})",
                      "print([(name, tuple(p.shape), p.requires_grad)",
                      "       for name, p in module.named_parameters()])"])


def check_parameters(target, kernel_size) -> None:
    """parameters() holds exactly a weight of shape kernel_size and a one-element bias,
    nn.Parameters that require grad."""
    found = target.run(describe_parameters, kernel_size, blame=NAME)
    registered, loose = found["parameters"], found["loose"]
    call = f"Conv2D({kernel_size!r})"
    weights = [p for p in registered if p[1] == tuple(kernel_size)]
    biases = [p for p in registered if math.prod(p[1]) == 1 and p not in weights[:1]]
    complete = len(registered) == 2 and bool(weights) and bool(biases)
    frozen = [name for name, _, requires_grad, _ in registered if not requires_grad]
    fact = _observed(portable(None), f"a fresh {call}", _parameters_snippet(target, kernel_size),
                     "parameters", loose=loose, complete=complete, frozen=frozen)
    if not registered:
        raise fact.failure(
            f"{call}.parameters() is empty",
            details=[f"tensors that require grad but are not nn.Parameters: {loose}"
                     if loose else "no tensor attribute requires grad either",
                     "wrap them: self.weight = nn.Parameter(torch.rand(kernel_size))"])
    if not complete:
        raise fact.failure(
            f"{call} should have exactly two parameters, a weight of shape "
            f"{tuple(kernel_size)} and a one-element bias; it has "
            f"{[(name, shape) for name, shape, _, _ in registered]}",
            details=[f"not registered (plain tensors requiring grad): {loose}"] if loose else ())
    if frozen:
        raise fact.failure(f"{call}'s parameters {frozen} do not require grad")


def check_forward(target, case: ModuleForwardCase) -> None:
    """forward(x) = corr2d(x, W) + b with W, b the module's own parameters, read back."""
    out = target.run(forward_module, case.kernel_size, case.seed, case.weight, case.bias,
                     case.x, case.mode, blame=NAME)
    if "missing" in out:
        raise _observed(portable(None), _module_description(case.kernel_size, case.x,
                                                            case.mode),
                        _parameters_snippet(target, case.kernel_size), "parameters").failure(
            f"Conv2D({case.kernel_size!r}) {out['missing']}", prop=PARAMETERS_TITLE)
    weight, bias = out["weight"], out["bias"]
    expected = oracles_conv.module_forward(case.x, weight, bias)
    after = [] if case.weight is None else _parameter_setting(out["names"], weight, bias)
    snippet = _module_snippet(target, case.kernel_size, case.x, case.mode,
                              before=[f"torch.manual_seed({case.seed})"], after=after)
    snippet += f"\nprint('expected (float64):', {value_literal(expected.value)})"
    description = (f"{_module_description(case.kernel_size, case.x, case.mode)} with "
                   f"weight={weight.tolist()}, bias={bias.reshape(-1).tolist()}")
    result = _observed(out["result"], description, snippet, "forward")
    assert_matches(result, expected,
                   input_dtype=compared_dtype(case.x.dtype, weight.dtype),
                   oracle="corr2d(x, weight) + bias in float64 (torch)")


def check_gradients(target, case: ModuleGradCase) -> None:
    """dL/dW = corr2d(x, G) and dL/db = Σ G for L = Σ G ⊙ module(x), as torch's autograd.
    Unlike a function's, a module's parameters must learn by autograd: a gradient that does
    not reach them is a failure."""
    out = target.run(module_gradients, case.kernel_size, case.weight, case.bias, case.x,
                     case.upstream, blame=NAME)
    call = f"Conv2D({case.kernel_size!r})"
    description = (f"{_module_description(case.kernel_size, case.x, 'train')}, then backward "
                   "of Σ upstream ⊙ output")
    if "missing" in out:
        raise _observed(portable(None), description, _parameters_snippet(
            target, case.kernel_size), "parameters").failure(
            f"{call} {out['missing']}", prop=PARAMETERS_TITLE)
    snippet = _module_snippet(
        target, case.kernel_size, case.x, "train",
        after=_parameter_setting(out["names"], case.weight, case.bias),
        run=f"(module(x) * {value_literal(case.upstream)}).sum().backward()")
    grads = out.get("grads") or {}
    fact = _observed(portable(None), description, snippet, "gradients",
                     differentiable=out.get("differentiable", True),
                     unreached=[k for k, g in grads.items() if g is None])
    if "shape" in out:
        raise fact.failure(f"{call} returned shape {out['shape']} for x of shape "
                           f"{tuple(case.x.shape)}, expected {tuple(case.upstream.shape)}")
    if not out["differentiable"]:
        raise fact.failure(f"{call}'s output does not require grad in training mode: its "
                           "parameters are cut off from autograd")
    if fact.facts["unreached"]:
        raise fact.failure(f"no gradient reaches the {' and '.join(fact.facts['unreached'])}")
    expected = oracles_conv.module_gradients(case.x, case.weight, case.bias, case.upstream)
    for name in ("weight", "bias"):
        grad = grads[name]
        assert_matches(_observed(grad, description, snippet, "gradient"),
                       _shaped_like(expected[name], grad["value"].shape),
                       input_dtype=case.x.dtype, oracle="torch's float64 autograd",
                       what=f"gradient w.r.t. {name}")


def _shaped_like(expected: Expected, shape) -> Expected:
    """`expected` in the parameter's own shape (a bias may be (1,), () or (1, 1))."""
    if expected.value.numel() != math.prod(shape):
        return expected
    bound = expected.bound

    def reshaped(u):
        value = bound(u)
        return value.reshape(shape) if isinstance(value, torch.Tensor) and value.dim() else value
    return Expected(expected.value.reshape(shape), reshaped)


# --------------------------------------------------------------------------- recovery

RECOVERY_TOLERANCE = 1e-3   # |learned − true| ≤ this × max(1, max |true|)
CONVERGENCE = 1e-5          # steps chosen so heavy-ball shrinks the error by this factor


def design_matrix(inputs, kernel_size) -> torch.Tensor:
    """Rows [x[i:i+kh, j:j+kw].flatten(), 1]: Y = A θ with θ = (W.flatten(), b)."""
    rows = []
    for X in inputs:
        patches = F.unfold(X.to(torch.float64)[None, None], kernel_size)[0].T
        rows.append(torch.cat([patches, torch.ones(len(patches), 1, dtype=torch.float64)], 1))
    return torch.cat(rows)


def heavy_ball_schedule(A: torch.Tensor) -> tuple[float, float, int]:
    """(lr, momentum, steps) of Polyak's heavy ball, optimal for L = ½‖Aθ − y‖²:
    with eigenvalues μ ≤ λ ≤ L of AᵀA, lr = 4/(√L + √μ)², momentum = ((√κ − 1)/(√κ + 1))²,
    error shrinking by (√κ − 1)/(√κ + 1) per step (κ = L/μ)."""
    eigenvalues = torch.linalg.eigvalsh(A.T @ A)
    low, high = float(eigenvalues[0]), float(eigenvalues[-1])
    assume(low > 1e-6 * high)            # identifiable: every parameter is determined
    root_kappa = math.sqrt(high / low)
    rate = (root_kappa - 1) / (root_kappa + 1)
    steps = 10 + (math.ceil(1.5 * math.log(CONVERGENCE) / math.log(rate)) if rate > 0 else 0)
    return 4 / (math.sqrt(high) + math.sqrt(low)) ** 2, rate ** 2, min(steps, 400)


def check_recovers_kernel_and_bias(target, case: RecoveryCase) -> None:
    """SGD (heavy-ball momentum) on ½ Σ (module(X) − Y)², Y = corr2d(X, K) + b, recovers K and b."""
    kernel_size = tuple(case.kernel.shape)
    bias = torch.tensor([case.bias])
    targets = [oracles_conv.module_forward(X, case.kernel, bias).value.to(torch.float32)
               for X in case.inputs]
    lr, momentum, steps = heavy_ball_schedule(design_matrix(case.inputs, kernel_size))
    out = target.run(train_module, kernel_size, case.init_seed, case.inputs, targets, lr,
                     momentum, steps, blame=NAME)
    call = (f"Conv2D({kernel_size!r}) trained by SGD (lr={lr:.4g}, momentum={momentum:.4g}) "
            f"for {steps} steps on {len(case.inputs)} input/output pair"
            f"{'s' if len(case.inputs) > 1 else ''}")
    _raise_training_problem(out, call)
    learned_w, learned_b = out["weight"].to(torch.float64), out["bias"].to(torch.float64)
    allowed = RECOVERY_TOLERANCE * max(1.0, float(case.kernel.abs().max()), abs(case.bias))
    errors = {"weight": (learned_w.reshape(kernel_size) - case.kernel.double()).abs().max(),
              "bias": (learned_b.reshape(-1) - case.bias).abs().max()}
    for name, error in errors.items():
        if float(error) > allowed:
            raise _observed(portable(None), call, "", "training").failure(
                f"{call} did not recover the {name}: error {float(error):.3g} > "
                f"{allowed:.3g}",
                details=[f"true kernel {case.kernel.tolist()}, bias {case.bias}",
                         f"learned weight {learned_w.tolist()}, bias "
                         f"{learned_b.reshape(-1).tolist()}",
                         f"loss {out['first_loss']:.4g} → {out['last_loss']:.4g}"])


def _raise_training_problem(out: dict, call: str) -> None:
    """A failure when training could not run: no parameters, none shaped like a kernel, a
    wrong output shape, a loss autograd cannot follow back, parameters it does not reach."""
    status = out["status"]
    if status == "trained":
        return
    summary = {
        "no parameters": "module.parameters() is empty: nothing to train",
        "missing": out.get("missing", ""),
        "shape": f"output shape {out.get('shape')} differs from the targets'",
        "not differentiable": "the loss does not require grad: the output is cut off from "
                              "the parameters",
        "no gradient": f"no gradient reaches {out.get('unreached')} after loss.backward()",
    }[status]
    raise _observed(portable(None), call, "", "training",
                    parameters_found=status != "no parameters",
                    differentiable=status != "not differentiable",
                    unreached=out.get("unreached") or []).failure(f"{call}: {summary}")


# --------------------------------------------------------------------------- examples

EDGE_X = torch.ones(6, 8).index_fill_(1, torch.arange(2, 6), 0.0)
EDGE_K = torch.tensor([[1.0, -1.0]])

PROPERTIES = [
    Property(NAME, PARAMETERS_TITLE,
             st.sampled_from(KERNEL_SIZES), check_parameters,
             examples=((1, 2),), budget=0.1),
    Property(NAME, "computes corr2d(x, weight) + bias with its own parameters",
             module_forward_cases(), check_forward,
             examples=(ModuleForwardCase((1, 2), 0, EDGE_K, torch.zeros(1), EDGE_X, "train"),
                       ModuleForwardCase((1, 2), 0, None, None, EDGE_X, "eval")),
             budget=0.5),
    Property(NAME, "learns a random kernel and bias by gradient descent", recovery_cases(),
             check_recovers_kernel_and_bias,
             examples=(RecoveryCase(EDGE_K, 0.0, (EDGE_X,), 0),), budget=0.15),
    Property(NAME, "has gradients w.r.t. weight and bias that match torch's",
             module_gradient_cases(), check_gradients, budget=0.5),
]
