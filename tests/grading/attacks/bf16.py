"""Attack: compute in bfloat16 to be fast, and return bfloat16.

Its corr2d accumulates in bfloat16 and returns a bfloat16 tensor, hoping to be compared at
bfloat16's precision (u = 2^-8), where its errors look small. The compared precision is never
below float32, so it fails, named for what it is.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: half-precision-accumulation
"""
import torch


def corr2d(X, K):
    X, K = X.to(torch.bfloat16), K.to(torch.bfloat16)
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=torch.bfloat16)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
