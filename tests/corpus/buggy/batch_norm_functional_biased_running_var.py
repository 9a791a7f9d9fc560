"""batch_norm (functional) stores the biased batch variance in running_var (the textbook's choice, not torch's).

The functional dialect follows torch exactly: running_var takes var * m / (m - 1).
Outputs and running_mean are right.

convcheck-expect: fail batch_norm
convcheck-diagnosis: batch_norm bn-running-var-biased
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
        var = ((input - mean.reshape(shape)) ** 2).mean(dim=dims)   # biased
        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(momentum * mean)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(momentum * var)
    else:
        mean, var = running_mean, running_var
    Y = (input - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        Y = Y * weight.reshape(shape)
    if bias is not None:
        Y = Y + bias.reshape(shape)
    return Y
