"""corr2d asks for far more memory than the limit allows (a shape mix-up making a huge
tensor); pool2d is correct and must still be graded.

convcheck-grade: status=ok corr2d=memory pool2d=pass
"""
import torch


def corr2d(X, K):
    return torch.zeros((X.numel() * 10 ** 6, K.numel() * 10 ** 6))


def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i: i + p_h, j: j + p_w]
            Y[i, j] = window.max() if mode == 'max' else window.mean()
    return Y
