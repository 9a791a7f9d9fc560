"""The functional names computed in numpy: forward only, as many kernels are.

conv2d, max_pool2d, avg_pool2d and batch_norm read their tensors as numpy arrays, compute
with numpy loops over output positions (pooling) or kernel offsets (convolution) and return
torch tensors of the input's dtype that carry no gradient. Which arguments are valid, and the
output sizes, are asked of torch itself on "meta" tensors (shapes only, no values) — except
conv2d's dilation and padding signs and its groups dividing the output channels, which
torch's meta conv2d does not check (its CPU kernel does: docs/findings.md) —, so the
functions raise exactly where torch raises. batch_norm
updates the running statistics in place, as torch does.

The contract's differentiability rule: a result that carries no gradient is valid; the
gradient checks and the LeNet training checks of these names are skipped, with a note.

convcheck-expect: pass
"""
import numpy as np
import torch
import torch.nn.functional as F


def _np(t):
    return t.detach().cpu().numpy().astype(np.float64)


def _pair(value):
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _meta(t):
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if min(_pair(dilation)) <= 0 or (not isinstance(padding, str) and min(_pair(padding)) < 0):
        raise ValueError("dilation must be positive and padding non-negative")
    if groups <= 0 or weight.shape[0] % groups:
        raise ValueError("groups must divide the output channels")
    out = F.conv2d(_meta(input), _meta(weight), None if bias is None else _meta(bias),
                   stride, padding, dilation, groups)   # raises where torch raises
    n, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    if padding == "valid":
        top = bottom = left = right = 0
    elif padding == "same":
        top, left = dh * (kh - 1) // 2, dw * (kw - 1) // 2
        bottom, right = dh * (kh - 1) - top, dw * (kw - 1) - left
    else:
        (top, left) = _pair(padding)
        bottom, right = top, left
    x = np.pad(_np(input), ((0, 0), (0, 0), (top, bottom), (left, right)))
    k = _np(weight)
    oh, ow = out.shape[2:]
    y = np.zeros((n, c_out, oh, ow))
    per_group_out = c_out // groups
    for g in range(groups):
        xs = x[:, g * c_per_group:(g + 1) * c_per_group]
        ks = k[g * per_group_out:(g + 1) * per_group_out]
        for a in range(kh):
            for b in range(kw):
                window = xs[:, :, a * dh: a * dh + (oh - 1) * sh + 1: sh,
                            b * dw: b * dw + (ow - 1) * sw + 1: sw]
                y[:, g * per_group_out:(g + 1) * per_group_out] += np.einsum(
                    "nchw,oc->nohw", window, ks[:, :, a, b])
    if bias is not None:
        y += _np(bias).reshape(1, c_out, 1, 1)
    return torch.from_numpy(y).to(input.dtype)


def _windows(n, k, s, p, d, out):
    """Per output position: (start, end) in the unpadded input's coordinates, the end of
    the padded input clamped as torch clamps it (n + p)."""
    return [(i * s - p, min(i * s - p + d * (k - 1) + 1, n + p)) for i in range(out)]


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    stride = kernel_size if stride is None or stride == () else stride
    out = F.max_pool2d(_meta(input), kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding,
                                                         dilation))
    x = _np(input)
    h, w = x.shape[2:]
    oh, ow = out.shape[2:]
    y = np.full((*x.shape[:2], oh, ow), -np.inf)
    for i, (r0, _) in enumerate(_windows(h, kh, sh, ph, dh, oh)):
        rows = [r for r in range(r0, r0 + dh * (kh - 1) + 1, dh) if 0 <= r < h]
        for j, (c0, _) in enumerate(_windows(w, kw, sw, pw, dw, ow)):
            cols = [c for c in range(c0, c0 + dw * (kw - 1) + 1, dw) if 0 <= c < w]
            if rows and cols:
                y[:, :, i, j] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
    return torch.from_numpy(y).to(input.dtype)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    stride = kernel_size if stride is None or stride == () else stride
    out = F.avg_pool2d(_meta(input), kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)
    (kh, kw), (sh, sw), (ph, pw) = map(_pair, (kernel_size, stride, padding))
    x = _np(input)
    h, w = x.shape[2:]
    oh, ow = out.shape[2:]
    y = np.zeros((*x.shape[:2], oh, ow))
    for i, (r0, r1) in enumerate(_windows(h, kh, sh, ph, 1, oh)):
        for j, (c0, c1) in enumerate(_windows(w, kw, sw, pw, 1, ow)):
            inside = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
            if divisor_override:
                divisor = divisor_override
            elif count_include_pad:
                divisor = (r1 - r0) * (c1 - c0)
            else:
                divisor = (min(r1, h) - max(r0, 0)) * (min(c1, w) - max(c0, 0))
            y[:, :, i, j] = inside.sum(axis=(2, 3)) / divisor
    return torch.from_numpy(y).to(input.dtype)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    F.batch_norm(_meta(input), None if running_mean is None else _meta(running_mean),
                 None if running_var is None else _meta(running_var),
                 None if weight is None else _meta(weight),
                 None if bias is None else _meta(bias), training, momentum, eps)
    x = _np(input)
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(axis=axes)
        var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)   # two passes: stable
        n = x.size // x.shape[1]
        if running_mean is not None:
            new = (1 - momentum) * _np(running_mean) + momentum * mean
            running_mean.copy_(torch.from_numpy(new))
        if running_var is not None:
            new = (1 - momentum) * _np(running_var) + momentum * var * n / (n - 1)
            running_var.copy_(torch.from_numpy(new))
    else:
        mean, var = _np(running_mean), _np(running_var)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * _np(weight).reshape(shape)
    if bias is not None:
        y = y + _np(bias).reshape(shape)
    return torch.from_numpy(y).to(input.dtype)
