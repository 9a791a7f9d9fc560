"""Batch-norm conventions, detected rather than imposed (contract: "Conventions the suite
detects instead of imposing").

momentum     'old-weighted': new = m*old + (1-m)*batch   (d2l 1st ed., m = 0.9)
             'new-weighted': new = (1-m)*old + m*batch   (d2l 2nd ed. and torch, m = 0.1)
running_var  'biased' (the batch variance divided by n, d2l) or 'unbiased' (by n - 1, torch)

The textbook-dialect `batch_norm` is called once in training on a fixed batch with momentum 0.3
(so the two forms differ); its new running mean names the momentum form, and the running
variance must follow the same form with one of the two variances. The `BatchNorm` module is
trained one step from fresh and its running statistics are read back from its eval-mode output
(y = (x - mean)/sqrt(var + eps) with gamma 1 and beta 0), so no attribute names are assumed.
"""
from __future__ import annotations

import torch

from properties.failures import PropertyFailure

PROBE_MOMENTUM = 0.3
PROBE_EPS = 1e-5


def probe_batch(channels: int = 3) -> torch.Tensor:
    """A fixed (6, C) float64 batch with distinct per-channel means and variances."""
    base = torch.tensor([[-1.5], [0.25], [2.0], [0.5], [-0.75], [3.0]], dtype=torch.float64)
    return base * torch.arange(1, channels + 1, dtype=torch.float64) + \
        torch.arange(channels, dtype=torch.float64)


def textbook_batch_norm_call(ns, dialect: str, training: bool, X, gamma, beta, moving_mean,
                             moving_var, eps, momentum):
    """Task: one call of a textbook-dialect batch_norm, in training or evaluation mode."""
    from properties.results import portable
    fn = ns["batch_norm"]
    with torch.set_grad_enabled(training):
        if dialect == "d2l-1st":
            result = fn(training, X, gamma, beta, moving_mean, moving_var, eps, momentum)
        else:
            result = fn(X, gamma, beta, moving_mean, moving_var, eps, momentum)
    return portable(result)


def updates(old, batch, momentum):
    """The two conventions' new running value: {'old-weighted': ..., 'new-weighted': ...}."""
    return {"old-weighted": momentum * old + (1 - momentum) * batch,
            "new-weighted": (1 - momentum) * old + momentum * batch}


def classify_update(old_mean, old_var, batch, new_mean, new_var, momentum):
    """(momentum form or None, running-variance kind or None) that explain new_mean/new_var."""
    mean = batch.mean(dim=0, keepdim=True)
    variances = {"biased": batch.var(dim=0, unbiased=False, keepdim=True),
                 "unbiased": batch.var(dim=0, unbiased=True, keepdim=True)}

    def close(a, b):
        a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
        b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-6))

    form = next((f for f, v in updates(old_mean, mean, momentum).items() if close(new_mean, v)),
                None)
    forms = [form] if form else list(updates(0, 0, 0))
    kind = next((k for f in forms for k, var in variances.items()
                 if close(new_var, updates(old_var, var, momentum)[f])), None)
    return form, kind


def detect_textbook(target) -> dict[str, str]:
    """Conventions of the target's textbook-dialect batch_norm ({} if none can be named)."""
    dialect = target.dialect("batch_norm")
    X = probe_batch()
    channels = X.shape[1]
    gamma, beta = torch.ones(1, channels, dtype=X.dtype), torch.zeros(1, channels, dtype=X.dtype)
    old_mean = torch.full((1, channels), 0.5, dtype=X.dtype)
    old_var = torch.full((1, channels), 2.0, dtype=X.dtype)
    try:
        returned = target.run(textbook_batch_norm_call, dialect, True, X, gamma, beta, old_mean,
                              old_var, PROBE_EPS, PROBE_MOMENTUM, blame="batch_norm")
        items = returned.get("items", [])
        new_mean, new_var = items[1]["value"], items[2]["value"]
    except (PropertyFailure, KeyError, IndexError, TypeError):
        return {}
    form, kind = classify_update(old_mean, old_var, X, new_mean, new_var, PROBE_MOMENTUM)
    found = {}
    if form:
        found["momentum"] = form
    if kind:
        found["running_var"] = kind
    return found


def module_running_stats(ns, X, probe):
    """Task: train a fresh BatchNorm(C, 2) one step on X, then evaluate it on `probe`."""
    module = ns["BatchNorm"](X.shape[1], 2)
    module = module.to(X.dtype) if hasattr(module, "to") else module
    module.train()
    with torch.enable_grad():
        module(X)
    module.eval()
    with torch.no_grad():
        return module(probe).detach()


def detect_module(target) -> dict[str, str]:
    """The running-variance convention of the target's BatchNorm module ({} if unnamed)."""
    X = probe_batch()
    channels = X.shape[1]
    probe = torch.stack([torch.zeros(channels), torch.ones(channels)]).to(X.dtype)
    try:
        y = target.run(module_running_stats, X, probe, blame="BatchNorm")
        y = torch.as_tensor(y, dtype=torch.float64)
    except (PropertyFailure, TypeError, RuntimeError):
        return {}
    scale = 1.0 / (y[1] - y[0])
    mean = -y[0] * scale
    var = scale * scale - PROBE_EPS
    fresh_mean, fresh_var = torch.zeros(1, channels), torch.ones(1, channels)
    form, kind = classify_update(fresh_mean.double(), fresh_var.double(), X, mean[None],
                                 var[None], 0.1)
    return {"running_var": kind} if form == "new-weighted" and kind else {}


def detect(target) -> dict[str, dict[str, str]]:
    """All conventions the target shows, keyed by contract name."""
    found = {}
    if target.defines("batch_norm") and target.dialect("batch_norm") != "functional":
        found["batch_norm"] = detect_textbook(target)
    if target.defines("BatchNorm"):
        found["BatchNorm"] = detect_module(target)
    return {name: conv for name, conv in found.items() if conv}
