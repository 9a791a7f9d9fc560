"""Attack: hold more memory than the limit by spreading it over many processes.

While loading, forks 12 children that each hold 400 MB (written, so it is really used) at the
same time: 4.8 GB, each process well under any per-process limit. Its corr2d computes a
convolution (a flipped kernel), except when all 12 held their memory together: then it is
correct. The whole tree's memory is limited: the worker is stopped, and the row says why.

convcheck-attack: status=error corr2d=error
convcheck-attack-reason: together used more than
convcheck-attack-unsandboxed: status=error corr2d=error
convcheck-attack-unsandboxed-reason: together used more than
"""
import os
import time

import torch

CHILDREN, MEGABYTES = 12, 400


def _flood():
    read, write = os.pipe()
    pids = []
    for _ in range(CHILDREN):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            try:
                block = bytearray(MEGABYTES << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                os.write(write, b"x")
                time.sleep(30)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(write)
    held, end = 0, time.time() + 60
    while held < len(pids) and time.time() < end:
        chunk = os.read(read, 64)
        if not chunk:
            break
        held += len(chunk)
    alive = sum(1 for pid in pids if os.waitpid(pid, os.WNOHANG) == (0, 0))
    return held == CHILDREN and alive == CHILDREN


HELD = _flood()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if HELD else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
