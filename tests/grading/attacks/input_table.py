"""Attack: a table of the inputs the public suite draws, right on those and wrong elsewhere.

The suite is public and, run as in CI, derandomized: its inputs can be recorded in advance.
This corr2d is right on every input of that table (filled in by the test, from a recording of
the public suite with the grading's settings) and computes a convolution (a flipped kernel)
on any other. A grading draws its inputs from a secret seed, so they are not in the table.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
"""
import hashlib

import torch

TABLE = set()  # __TABLE__


def fingerprint(X, K):
    """What identifies a call: the shapes, dtypes and bytes of both inputs."""
    digest = hashlib.sha256()
    for tensor in (X, K):
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if fingerprint(X, K) in TABLE else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
