"""batch_norm (functional) computes the batch variance in one pass, as E[x²] − E[x]².

Algebraically right, numerically unstable: in float32, when a channel's mean is large
relative to its spread (pixel values around 1000 with a spread of 1), the two terms cancel
and the variance loses most or all of its digits (it can go negative: NaN). torch and the
textbook use the mean of squared deviations (two-pass) or Welford's update.

convcheck-expect: fail batch_norm
convcheck-diagnosis: batch_norm bn-one-pass-variance
"""
import torch


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    dims = [d for d in range(input.dim()) if d != 1]      # every axis but the channels
    shape = [1] * input.dim()
    shape[1] = input.shape[1]
    if training:
        m = input.numel() // input.shape[1]                 # values per channel
        if m <= 1:
            raise ValueError("Expected more than 1 value per channel when training")
        mean = input.mean(dim=dims)
        var = (input * input).mean(dim=dims) - mean * mean  # one pass: E[x²] − E[x]²
        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(momentum * mean)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))
    else:
        mean, var = running_mean, running_var
    Y = (input - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        Y = Y * weight.reshape(shape)
    if bias is not None:
        Y = Y + bias.reshape(shape)
    return Y
