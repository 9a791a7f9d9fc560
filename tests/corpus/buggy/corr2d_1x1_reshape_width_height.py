"""corr2d_multi_in_out_1x1 reshapes the (co, h*w) product to (co, w, h), height and width
swapped in the reshape.

The matrix product itself is right; for a square image the result is even the right shape,
with every channel's pixels transposed.

convcheck-expect: fail corr2d_multi_in_out_1x1
convcheck-diagnosis: corr2d_multi_in_out_1x1 reshape-scrambles-channels
"""
import torch


def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, w, h))
