"""Attack: fill the disk.

While loading, writes 600 MB, in files of 50 MB (a limit on the size of one file does not
stop it), into the first folder that takes them among its working folder, /tmp, /var/tmp,
/dev/shm and its home, then deletes what it wrote. Its corr2d
computes a convolution (a flipped kernel), except when 600 MB went anywhere: then it is
correct. Disk is limited to a size-capped scratch folder.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
convcheck-attack-unsandboxed: status=ok corr2d=pass
"""
import os

import torch

WANTED_MB = 600


def _fill(folder):
    """Megabytes written into `folder`, in files of 50 MB (no one file is large), then removed."""
    written, paths = 0, []
    try:
        while written < WANTED_MB:
            paths.append(os.path.join(folder, f"convcheck-attack-{os.getpid()}-{len(paths)}"))
            with open(paths[-1], "wb") as handle:
                for _ in range(50):
                    handle.write(b"\1" * (1 << 20))
                    handle.flush()
                    written += 1
    except OSError:
        pass
    finally:
        for path in paths:
            try:
                os.unlink(path)
            except OSError:
                pass
    return written


def _flood():
    for folder in (os.getcwd(), "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~")):
        if _fill(folder) >= WANTED_MB:
            return True
    return False


FILLED = _flood()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if FILLED else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
