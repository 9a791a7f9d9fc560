"""Recomputations for the modules (Conv2D, BatchNorm). A module's failures are observations,
not calls (properties.results.Observation): what a fresh module holds, its output after
some training, its gradients. Each observation has a stage, so its subject reads
"NAME:STAGE", and carries the inputs it was computed from (`inputs`) or the facts a task
found (`facts`). properties.diagnosis.mistakes names what is recognised here.

Stages:
    Conv2D:parameters, BatchNorm:parameters   facts: what module.parameters() holds
    Conv2D:gradients, BatchNorm:gradients      facts: whether autograd reached the parameters
    Conv2D:training                            the same facts, from training it
    BatchNorm:fresh-evaluation                 a fresh module in eval mode applied to `x`
    BatchNorm:trained-evaluation               trained on `batches`, then applied to `probe`
"""
from __future__ import annotations

import torch

from properties import oracles_bn as bn
from properties.diagnosis.core import View, variant

EPS = bn.MODULE_EPS


def _facts(view: View) -> dict:
    return getattr(view.result, "facts", None) or {}


# --------------------------------------------------------------------------- parameters

def conv_parameters_not_registered(view: View) -> bool:
    """Tensors that require grad are kept outside parameters() (plain attributes), and
    parameters() lacks what it must hold."""
    facts = _facts(view)
    return bool(facts.get("loose")) and not facts.get("complete", False)


def batchnorm_parameters_not_registered(view: View) -> bool:
    """Not an nn.Module, or gamma and beta are not among parameters()."""
    facts = _facts(view)
    return not facts.get("is_module", True) or not facts.get("complete", True)


def parameters_frozen(view: View) -> bool:
    """A parameter does not require grad."""
    return bool(_facts(view).get("frozen"))


def gradients_cut_off(view: View) -> bool:
    """The output does not require grad in training, or no gradient reached a parameter."""
    facts = _facts(view)
    return facts.get("differentiable") is False or bool(facts.get("unreached"))


def gradients_without_parameters(view: View) -> bool:
    """gamma and beta could not be found among parameters(), so no gradient can reach them."""
    return _facts(view).get("parameters_found") is False


# --------------------------------------------------------------------------- BatchNorm outputs

def _channels(view: View) -> int:
    return int(view.params["channels"])


def fresh_correct(view: View) -> dict:
    x, channels = view.params["x"], _channels(view)
    return {"result": [bn.evaluation_output(x, torch.zeros(channels), torch.ones(channels),
                                            eps=EPS)]}


def trained_correct(view: View) -> dict:
    kind = view.conventions.get("running_var") or "unbiased"
    return {"result": [_after_training(view, kind)]}


def _after_training(view: View, kind: str, initial_var: float = 1.0,
                    momentum: float = bn.MODULE_MOMENTUM):
    state = bn.module_after_training(view.params["batches"], kind, initial_var=initial_var,
                                     momentum=momentum)
    return bn.evaluation_output(view.params["probe"], state.mean, state.var, eps=EPS,
                                mean_error=state.mean_error, var_error=state.var_error)


fresh_from_zero_variance = variant(lambda v: [bn.evaluation_output(
    v.params["x"], torch.zeros(_channels(v)), torch.zeros(_channels(v)), eps=EPS)])
fresh_batch_statistics = variant(lambda v: [bn.training_output(v.params["x"], eps=EPS)])
trained_batch_statistics = variant(lambda v: [bn.training_output(v.params["probe"], eps=EPS)])
trained_not_updated = variant(lambda v: [bn.evaluation_output(
    v.params["probe"], torch.zeros(_channels(v)), torch.ones(_channels(v)), eps=EPS)])
trained_from_zero_variance = variant(
    lambda v: [_after_training(v, kind, initial_var=0.0) for kind in bn.VARIANCE_KINDS])
#: The running statistics keep 1 − m = 0.1 of the old value: momentum 0.9 given to torch's
#: form (1 − m)·old + m·batch, or 0.1 to the first edition's m·old + (1 − m)·batch.
trained_momentum_mixup = variant(
    lambda v: [_after_training(v, kind, momentum=1 - bn.MODULE_MOMENTUM)
               for kind in bn.VARIANCE_KINDS])

#: subject -> the correct values of an observation, by part.
CORRECT = {"BatchNorm:fresh-evaluation": fresh_correct,
           "BatchNorm:trained-evaluation": trained_correct}
