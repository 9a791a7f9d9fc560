"""Properties of the functional `conv2d` (torch.nn.functional dialect: batched NCHW, stride,
padding as an int, a pair, 'valid' or 'same', dilation, groups, optional bias).

    Y[n, o, i, j] = b[o] + Σ_{c, a, b} Xpad[n, g·C/G + c, i·sh + a·dh, j·sw + b·dw] W[o, c, a, b]

(g = o's group, C/G input channels per group). Results keep the input's dtype and are compared
with torch's float64 conv2d under the sum-of-products error model (properties.tolerance).
Relational properties rewrite one call into others computed by the target's own conv2d, each
of which is first checked against the oracle, so a wrong simple call is blamed where it shows.
"""
from __future__ import annotations

import torch

from properties import oracles_conv
from properties.checks import assert_matches, result_tensor
from properties.failures import PropertyFailure
from properties.gradients import check_gradients
from properties.registry import Property
from properties.results import CallResult, Observation
from properties.strategies_conv import (CORNER_EXAMPLES, NONCONTIGUOUS, ConvCase, conv_cases,
                                        conv_gradient_cases, conv_output_shape,
                                        per_side_padding)
from properties.tolerance import Expected
from reference import shapes

NAME = "conv2d"
TORCH = "torch's float64 conv2d"
AGREES = "agrees with torch's float64 conv2d"


# --------------------------------------------------------------------------- helpers

def call_conv2d(target, case: ConvCase) -> CallResult:
    """The target's conv2d(input, weight, bias, stride=, padding=, dilation=, groups=)."""
    return target.call(NAME, *case.args(), **case.kwargs())


def expected_of(case: ConvCase) -> Expected:
    """torch's float64 conv2d of the case, with its error bound."""
    return oracles_conv.conv2d(*case.args(), **case.kwargs())


def checked_value(target, case: ConvCase) -> torch.Tensor:
    """The target's conv2d of `case` in float64, after checking it against the oracle (so a
    relation is only tested on top of calls that are right on their own)."""
    result = call_conv2d(target, case)
    assert_matches(result, expected_of(case), input_dtype=case.input.dtype, oracle=TORCH,
                   same_dtype=True, prop=AGREES)
    return result_tensor(result, case.input.dtype, same_dtype=True).to(torch.float64)


def assert_relation(result: CallResult, case: ConvCase, other_value: torch.Tensor,
                    oracle: str) -> None:
    """result ≈ other_value (both computed results: twice the oracle's bound)."""
    assert_matches(result, expected_of(case).with_value(other_value, factor=2),
                   input_dtype=case.input.dtype, oracle=oracle, same_dtype=True)


# --------------------------------------------------------------------------- agreement

def check_agrees_with_torch(target, case: ConvCase) -> None:
    """Y = torch's F.conv2d in float64, within (n + 3) u Σ|x||w| + u|b| per element."""
    assert_matches(call_conv2d(target, case), expected_of(case), input_dtype=case.input.dtype,
                   oracle=TORCH, same_dtype=True)


def check_agrees_with_naive_reference(target, case: ConvCase) -> None:
    """Y = reference.functional.conv2d in float64 (a loop over kernel offsets)."""
    assert_matches(call_conv2d(target, case), oracles_conv.naive_conv2d(*case.args(),
                                                                         **case.kwargs()),
                   input_dtype=case.input.dtype, oracle="the naive reference conv2d (float64)",
                   same_dtype=True)


def check_output_shape(target, case: ConvCase) -> None:
    """(N, C_out, oh, ow) with o = ⌊(n + pb + pa − d·(k − 1) − 1) / s⌋ + 1 per axis."""
    result = call_conv2d(target, case)
    got = tuple(result_tensor(result, case.input.dtype, same_dtype=True).shape)
    want = conv_output_shape(case)
    if got == want:
        return
    raise result.failure(
        f"returned shape {got}, but the formula gives {want}",
        details=[f"per axis: out = ⌊(n + pb + pa − d·(k − 1) − 1) / s⌋ + 1 with "
                 f"{_formula_terms(case)}"])


def _formula_terms(case: ConvCase) -> str:
    kernel = tuple(case.weight.shape[2:])
    stride = shapes.pair(case.stride, "stride")
    dilation = shapes.pair(case.dilation, "dilation")
    sides = per_side_padding(case.padding, kernel, dilation)
    return "; ".join(f"{axis}: n={case.input.shape[2 + i]}, k={kernel[i]}, "
                     f"pb={sides[i][0]}, pa={sides[i][1]}, d={dilation[i]}, s={stride[i]}"
                     for i, axis in enumerate(("height", "width")))


def check_keeps_input_dtype(target, case: ConvCase) -> None:
    """float32 in → float32 out, float64 in → float64 out (as torch)."""
    for dtype in (torch.float32, torch.float64):
        converted = case.replace(input=case.input.to(dtype), weight=case.weight.to(dtype),
                                 bias=None if case.bias is None else case.bias.to(dtype))
        result_tensor(call_conv2d(target, converted), dtype, same_dtype=True)


# --------------------------------------------------------------------------- relations

def check_stride_is_subsampling(target, case: ConvCase) -> None:
    """conv2d(X, W, stride=(sh, sw)) = conv2d(X, W, stride=1)[..., ::sh, ::sw]."""
    sh, sw = shapes.pair(case.stride, "stride")
    unstrided_case = case.replace(stride=1)
    unstrided = checked_value(target, unstrided_case)
    result = call_conv2d(target, case)
    assert_relation(result, case, unstrided[..., ::sh, ::sw],
                    f"the stride-1 output subsampled by ({sh}, {sw})")


def check_padding_is_zero_padded_input(target, case: ConvCase) -> None:
    """conv2d(X, W, padding=(ph, pw)) = conv2d(Xpad, W, padding=0), Xpad with ph zero rows
    above and below and pw zero columns left and right (ph ≠ pw)."""
    ph, pw = shapes.pair(case.padding, "padding")
    padded_case = case.replace(input=oracles_conv.zero_padded(case.input, ph, ph, pw, pw),
                               padding=0)
    padded = checked_value(target, padded_case)
    result = call_conv2d(target, case)
    assert_relation(result, case, padded,
                    f"conv2d of the input zero-padded by {ph} rows and {pw} columns")


def check_dilation_is_zero_stuffed_kernel(target, case: ConvCase) -> None:
    """conv2d(X, W, dilation=(dh, dw)) = conv2d(X, W', dilation=1), W' the kernel with dh − 1
    zero rows and dw − 1 zero columns between its entries."""
    stuffed_case = case.replace(weight=oracles_conv.zero_stuffed(case.weight, case.dilation),
                                dilation=1)
    stuffed = checked_value(target, stuffed_case)
    result = call_conv2d(target, case)
    assert_relation(result, case, stuffed, "conv2d with the zero-stuffed kernel")


def check_groups_are_concatenated_convolutions(target, case: ConvCase) -> None:
    """conv2d(X, W, groups=G) = cat_g conv2d(X[:, g-th C/G channels], W[g-th C_out/G], b[...])."""
    groups = case.groups
    in_step, out_step = case.input.shape[1] // groups, case.weight.shape[0] // groups
    pieces = []
    for g in range(groups):
        outs = slice(g * out_step, (g + 1) * out_step)
        piece = case.replace(input=case.input[:, g * in_step:(g + 1) * in_step].contiguous(),
                             weight=case.weight[outs].contiguous(), groups=1,
                             bias=None if case.bias is None else case.bias[outs].contiguous())
        pieces.append(checked_value(target, piece))
    result = call_conv2d(target, case)
    assert_relation(result, case, torch.cat(pieces, dim=1),
                    f"the {groups} per-group convolutions concatenated over channels")


def check_noncontiguous_same_as_contiguous(target, case: ConvCase) -> None:
    """conv2d of non-contiguous input/weight = conv2d of their contiguous copies."""
    contiguous_case = case.replace(input=case.input.contiguous(),
                                   weight=case.weight.contiguous())
    contiguous = checked_value(target, contiguous_case)
    result = call_conv2d(target, case)
    # The same values in contiguous memory gave the right result, so this is a layout
    # mistake (reading the storage as if contiguous), not one of the value-level mistakes:
    # the failure is about the layout, an observation of the call, not its value.
    layout = Observation(NAME, result.returned, result.description, result.example,
                         stage="layout")
    try:
        assert_relation(layout, case, contiguous, "conv2d of the same values in contiguous "
                                                  "memory")
    except PropertyFailure as failure:
        failure.details.append(f"input strides {case.input.stride()}, weight strides "
                               f"{case.weight.stride()}: read them through their strides "
                               "(or call .contiguous() first)")
        raise


# --------------------------------------------------------------------------- gradients

def check_gradients_match_torch(target, grad_case) -> None:
    """dL/dinput, dL/dweight, dL/dbias of L = Σ G ⊙ conv2d(X, W, b) equal torch's float64
    autograd within the sum-of-products bound (properties.gradients: skipped, with a note,
    for a forward-only target)."""
    case, upstream = grad_case.call, grad_case.upstream
    expected = oracles_conv.conv2d_gradients(*case.args(), upstream, **case.kwargs())
    check_gradients(target, NAME, case.args(), case.kwargs(),
                    {name: expected[name] for name in ("input", "weight", "bias")
                     if name in expected}, upstream,
                    input_dtype=case.input.dtype, oracle="torch's float64 autograd",
                    same_dtype=True)


# --------------------------------------------------------------------------- examples

EDGE_X = torch.ones(1, 1, 6, 8).index_fill_(3, torch.arange(2, 6), 0.0)
EDGE_K = torch.tensor([[[[1.0, -1.0]]]])
EXAMPLES = (
    ConvCase(EDGE_X, EDGE_K, None, 1, 0, 1, 1),                          # d2l 7.2 edge detector
    ConvCase(torch.arange(16.0).reshape(1, 1, 4, 4), torch.ones(1, 1, 2, 2), torch.tensor([0.5]),
             1, "same", 1, 1),                                            # even kernel, 'same'
    ConvCase(torch.arange(50.0).reshape(1, 2, 5, 5), torch.ones(2, 1, 1, 1) * 2, None,
             (3, 2), (1, 0), 1, 2),                                       # stride > kernel
)

PROPERTIES = [
    Property(NAME, AGREES, conv_cases(), check_agrees_with_torch,
             examples=EXAMPLES + CORNER_EXAMPLES),
    Property(NAME, "has the output shape of the formula", conv_cases(), check_output_shape,
             budget=0.25),
    Property(NAME, "agrees with the naive reference conv2d", conv_cases(),
             check_agrees_with_naive_reference, budget=0.25),
    Property(NAME, "with a stride equals the stride-1 output subsampled",
             conv_cases(padding_forms=("int", "pair", "valid"), strided=True),
             check_stride_is_subsampling, budget=0.5),
    Property(NAME, "with padding equals correlating the zero-padded input",
             conv_cases(asymmetric_padding=True), check_padding_is_zero_padded_input,
             budget=0.5),
    Property(NAME, "with dilation equals correlating with the zero-stuffed kernel",
             conv_cases(dilated=True), check_dilation_is_zero_stuffed_kernel, budget=0.5),
    Property(NAME, "with groups equals the per-group convolutions concatenated",
             conv_cases(grouped=True), check_groups_are_concatenated_convolutions, budget=0.5),
    Property(NAME, "has gradients that match torch's", conv_gradient_cases(),
             check_gradients_match_torch, budget=0.5),
    Property(NAME, "gives the same result for non-contiguous and contiguous inputs",
             conv_cases(layout_choices=NONCONTIGUOUS), check_noncontiguous_same_as_contiguous,
             budget=0.4),
    Property(NAME, "keeps the input's dtype (float32 in, float32 out)", conv_cases(),
             check_keeps_input_dtype, budget=0.2),
]
