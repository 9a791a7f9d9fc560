"""Attack: start more processes than anyone should, and keep them.

While loading, forks 150 sleeping processes that live for a minute. Its corr2d computes a
convolution (a flipped kernel), except when all 150 existed together: then it is correct. The
number of processes of the worker's tree is limited; whatever it started ends with its run.

convcheck-attack: status=ok|error corr2d=fail|crash|error
convcheck-attack-unsandboxed: status=ok|error corr2d=fail|crash|error
"""
import os
import time

import torch

WANTED = 150


def _flood():
    started = 0
    for _ in range(WANTED):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        started += 1
    return started


STARTED = _flood()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if STARTED >= WANTED else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
