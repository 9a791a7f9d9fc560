"""CUDA agrees with the CPU, for every torch-style operator of the contract.

These properties run when a CUDA device is among the selected ones (`--device auto` on a GPU
machine, `--device cuda`); on the CPU pass they skip with that reason. The same target function
is called on the CPU and on the CUDA device with the same inputs:
- with TF32 off and deterministic cuDNN, the two results must agree within twice the
  sum-of-products bound of float32/float64 (each side may err by one bound);
- with TF32 on (cuDNN and matmul round their inputs to 10 mantissa bits, u = 2^-11, before
  multiplying), the CUDA result must be within the *TF32 bound*: the same sum-of-products model
  evaluated at u = 2^-11 — i.e. (n + 3)·2^-11·Σ|x||k| per element — plus the CPU result's bound.
  This documented bound is loose by design: TF32 is a precision choice, not a bug, but an error
  beyond it is.
"""
from __future__ import annotations

import dataclasses

import torch

from properties import oracles
from properties.checks import assert_matches, result_tensor
from properties.devices import tf32
from properties.registry import Property
from properties.strategies_conv import conv_cases
from properties.strategies_pool import avg_pool_cases, max_pool_cases
from properties.results import portable
from properties.tolerance import Expected
from reference.shapes import pair

TF32_UNIT_ROUNDOFF = 2.0 ** -11


def needs_cuda(target) -> str | None:
    return None if target.device.type == "cuda" else \
        "compares CUDA with the CPU: runs on the CUDA pass (no CUDA device selected here)"


def call_on_device(ns, name, args, kwargs, use_tf32):
    """Task: one call with TF32 switched on or off (deterministic cuDNN when off)."""
    with tf32(use_tf32):
        return portable(ns[name](*args, **kwargs))


def _on(value, device):
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _both(target, name, args, kwargs, use_tf32):
    cpu = target.on("cpu").call(name, *args, **kwargs)
    moved_args = tuple(_on(a, target.device) for a in args)
    moved_kwargs = {k: _on(v, target.device) for k, v in kwargs.items()}
    returned = target.run(call_on_device, name, moved_args, moved_kwargs, use_tf32, blame=name)
    return cpu, dataclasses.replace(cpu, returned=returned)


def _conv_check(use_tf32):
    def check(target, case):
        args, kwargs = case.args(), case.kwargs()
        cpu, cuda = _both(target, "conv2d", args, kwargs, use_tf32)
        oracle = oracles.conv2d(*args, **kwargs)
        cpu_value = result_tensor(cpu, case.input.dtype)
        extra = TF32_UNIT_ROUNDOFF if use_tf32 else 0.0

        def bound(u):
            return 2 * torch.as_tensor(oracle.bound(u)) + \
                (torch.as_tensor(oracle.bound(extra)) if extra else 0.0)
        assert_matches(cuda, Expected(cpu_value.to(torch.float64), bound),
                       input_dtype=case.input.dtype, same_dtype=True,
                       oracle="the same conv2d on the CPU")
    return check


def _pool_check(name):
    def check(target, case):
        kwargs = case.kwargs()
        cpu, cuda = _both(target, name, (case.input, case.kernel_size), kwargs, False)
        cpu_value = result_tensor(cpu, case.input.dtype).to(torch.float64)
        if name == "max_pool2d":
            expected = Expected.exact(cpu_value)
        else:
            window = torch.nn.functional.avg_pool2d(case.input.double().abs(), case.kernel_size,
                                                    **kwargs)
            kh, kw = pair(case.kernel_size, "kernel_size")
            terms = kh * kw
            expected = Expected(cpu_value, lambda u: 2 * (terms + 3) * u * window)
        assert_matches(cuda, expected, input_dtype=case.input.dtype, same_dtype=True,
                       oracle=f"the same {name} on the CPU")
    return check


PROPERTIES = [
    Property("conv2d", "agrees between CUDA and CPU (TF32 off, deterministic cuDNN)",
             conv_cases(), _conv_check(False), skip_unless=needs_cuda),
    Property("conv2d", "agrees between CUDA and CPU within the TF32 bound (TF32 on)",
             conv_cases(), _conv_check(True), skip_unless=needs_cuda),
    Property("max_pool2d", "agrees between CUDA and CPU", max_pool_cases(),
             _pool_check("max_pool2d"), skip_unless=needs_cuda),
    Property("avg_pool2d", "agrees between CUDA and CPU", avg_pool_cases(),
             _pool_check("avg_pool2d"), skip_unless=needs_cuda),
]
