"""batch_norm (d2l 2nd ed.) computes the batch variance in one pass, as (X ** 2).mean() − mean ** 2.

Algebraically the textbook's variance, numerically unstable: in float32, when a channel's
mean is large relative to its spread, E[X²] and mean² agree in most of their digits and
their difference keeps none (or goes negative: NaN). The textbook's
((X - mean) ** 2).mean() does not cancel.

convcheck-expect: fail batch_norm
convcheck-diagnosis: batch_norm bn-one-pass-variance
"""
import torch


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    # Use is_grad_enabled to determine whether we are in training mode
    if not torch.is_grad_enabled():
        # In prediction mode, use mean and variance obtained by moving average
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and
            # variance on the feature dimension
            mean = X.mean(dim=0)
            var = (X ** 2).mean(dim=0) - mean ** 2
        else:
            # When using a two-dimensional convolutional layer, calculate the
            # mean and variance on the channel dimension (axis=1)
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = (X ** 2).mean(dim=(0, 2, 3), keepdim=True) - mean ** 2
        # In training mode, the current mean and variance are used
        X_hat = (X - mean) / torch.sqrt(var + eps)
        # Update the mean and variance using moving average
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean
        moving_var = (1.0 - momentum) * moving_var + momentum * var
    Y = gamma * X_hat + beta  # Scale and shift
    return Y, moving_mean.data, moving_var.data
