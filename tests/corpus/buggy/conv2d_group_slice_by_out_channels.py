"""conv2d slices each group's input channels by the output-channel count: group g reads input channels g * C_out/groups, ... instead of g * C_in/groups, ...

Right whenever a group has as many input as output channels (groups 1, or depthwise with a
channel multiplier of 1); with unequal counts per group the later groups read the wrong input
channels (or run past the last one and raise IndexError).

convcheck-expect: fail conv2d
convcheck-diagnosis: conv2d none
"""
import torch
import torch.nn.functional as _F


def _pair(value):
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if input.dim() != 4 or weight.dim() != 4:
        raise ValueError("expected 4-D input (N, C, H, W) and weight (C_out, C_in/groups, kh, kw)")
    n, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    if min(sh, sw, dh, dw) <= 0:
        raise ValueError("stride and dilation must be positive")
    if groups <= 0 or c_out % groups != 0 or c != c_per_group * groups:
        raise ValueError("input channels must equal weight.shape[1] * groups")
    if padding == 'valid':
        top = bottom = left = right = 0
    elif padding == 'same':
        if (sh, sw) != (1, 1):
            raise ValueError("padding='same' is only supported with stride 1")
        top, left = dh * (kh - 1) // 2, dw * (kw - 1) // 2
        bottom, right = dh * (kh - 1) - top, dw * (kw - 1) - left  # extra at the end
    else:
        ph, pw = _pair(padding)
        if ph < 0 or pw < 0:
            raise ValueError("padding must be non-negative")
        top, bottom, left, right = ph, ph, pw, pw
    X = _F.pad(input, (left, right, top, bottom))
    if X.shape[2] < dh * (kh - 1) + 1 or X.shape[3] < dw * (kw - 1) + 1:
        raise ValueError("kernel size can't be greater than the padded input size")
    out_h = (X.shape[2] - dh * (kh - 1) - 1) // sh + 1
    out_w = (X.shape[3] - dw * (kw - 1) - 1) // sw + 1
    Y = torch.zeros((n, c_out, out_h, out_w), dtype=input.dtype)
    out_per_group = c_out // groups
    for o in range(c_out):
        first = (o // out_per_group) * out_per_group  # the group's first OUTPUT channel
        for ci in range(c_per_group):
            for a in range(kh):
                for b in range(kw):
                    window = X[:, first + ci, a * dh: a * dh + (out_h - 1) * sh + 1: sh,
                                      b * dw: b * dw + (out_w - 1) * sw + 1: sw]
                    Y[:, o] = Y[:, o] + window * weight[o, ci, a, b]
    if bias is not None:
        Y = Y + bias.reshape(1, c_out, 1, 1)
    return Y
