"""conv2d's padding='same' pads (d·(k − 1)) // 2 on each side: for an even (dilated) kernel
the total is odd, and the row and column torch adds at the bottom/right are missing.

Everything else is torch's (F.conv2d with explicit padding), so odd kernels, 'valid' and
explicit padding are right; only 'same' with an even kernel gives an output one short.

convcheck-expect: fail conv2d
convcheck-diagnosis: conv2d same-padding-misplaced
"""
import torch.nn.functional as F


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if padding == 'same':
        if _pair(stride) != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        dh, dw = _pair(dilation)
        kh, kw = weight.shape[2:]
        padding = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
