"""avg_pool2d tests `if divisor_override:`, so divisor_override=0 is taken as 'not given' instead of refused.

torch raises for a zero divisor_override; this target silently uses the ordinary divisor.
Non-zero overrides are handled correctly.

convcheck-expect: fail avg_pool2d
convcheck-diagnosis: avg_pool2d none
"""
import torch
import torch.nn.functional as _F


def _pair(value):
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1  # the last window would start in the right padding
    return out


def _pool_args(input, kernel_size, stride, padding, dilation, ceil_mode):
    if input.dim() != 4:
        raise ValueError("expected a 4-D input (N, C, H, W)")
    kh, kw = _pair(kernel_size)
    if stride is None:
        stride = (kh, kw)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    if min(kh, kw, sh, sw, dh, dw) <= 0:
        raise ValueError("kernel_size, stride and dilation must be positive")
    if ph < 0 or pw < 0 or ph > kh // 2 or pw > kw // 2:
        raise ValueError("pad should be at most half of the kernel size")
    out_h = _out_size(input.shape[2], kh, sh, ph, dh, ceil_mode)
    out_w = _out_size(input.shape[3], kw, sw, pw, dw, ceil_mode)
    if out_h < 1 or out_w < 1:
        raise ValueError("output size is too small")
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), (out_h, out_w)


def _padded(input, k, s, p, d, out, value):
    """input padded by p on each side, plus what the last ceil_mode window needs."""
    extra_h = max(0, (out[0] - 1) * s[0] + d[0] * (k[0] - 1) + 1 - (input.shape[2] + 2 * p[0]))
    extra_w = max(0, (out[1] - 1) * s[1] + d[1] * (k[1] - 1) + 1 - (input.shape[3] + 2 * p[1]))
    return _F.pad(input, (p[1], p[1] + extra_w, p[0], p[0] + extra_h), value=value)


def _divisors(n, k, s, p, out, count_include_pad):
    result = []
    for i in range(out):
        start = i * s - p
        end = min(start + k, n + p)  # never beyond the padded input
        if not count_include_pad:
            start, end = max(start, 0), min(end, n)
        result.append(end - start)
    return result


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    k, s, p, d, out = _pool_args(input, kernel_size, stride, padding, 1, ceil_mode)
    X = _padded(input, k, s, p, d, out, 0.0)
    total = torch.zeros(input.shape[:2] + out, dtype=input.dtype)
    for a in range(k[0]):
        for b in range(k[1]):
            total = total + X[:, :, a: a + (out[0] - 1) * s[0] + 1: s[0],
                              b: b + (out[1] - 1) * s[1] + 1: s[1]]
    if divisor_override:
        return total / divisor_override
    rows = _divisors(input.shape[2], k[0], s[0], p[0], out[0], count_include_pad)
    cols = _divisors(input.shape[3], k[1], s[1], p[1], out[1], count_include_pad)
    divisor = torch.outer(torch.tensor(rows, dtype=input.dtype), torch.tensor(cols, dtype=input.dtype))
    return total / divisor
