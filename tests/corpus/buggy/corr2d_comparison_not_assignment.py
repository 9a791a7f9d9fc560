"""corr2d writes `Y[i, j] == ...` (a comparison) where `Y[i, j] = ...` was meant.

The comparison is computed and thrown away, so the result stays all zeros. This is no known
mistake: on a degenerate minimal input (X = [[0, 1]], K = [[0, 1]]) zeros are what the flipped
kernel gives, and the diagnosis must not name it — it confirms a mistake on a second input.

convcheck-expect: fail corr2d
convcheck-diagnosis: corr2d none
"""
import torch


def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] == (X[i:i + h, j:j + w] * K).sum()
    return Y
