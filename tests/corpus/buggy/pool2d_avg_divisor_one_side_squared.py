"""pool2d's 'avg' branch divides the window sum by p_h * p_h, a typo for p_h * p_w.

Right for square windows (and for 1-row windows when p_w = p_h = 1), so a degenerate minimal
input can look like another mistake (with pool sizes (1, 3) the divisor is 1: the window
sum); the diagnosis names this one only after a generic window confirms it.

convcheck-expect: fail pool2d
convcheck-diagnosis: pool2d avg-divisor-wrong
"""
import torch


def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].sum() / (p_h * p_h)
    return Y
