"""Attack: stop or freeze the whole grading by signalling the grader and the judges.

While loading, finds the grader (its command line names the output folder, filled in by the
test) and its judges through /proc, and sends them SIGSTOP (the grading freezes, no sheet),
then SIGTERM. Its corr2d computes a convolution (a flipped kernel), except when a signal
reached any of them: then it is correct. The grading must finish with every row.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
"""
import os
import signal

import torch

OUT = "__OUT__"


def _grading_processes():
    """The grader of this grading (its command line names OUT) and its judges (its children):
    found through /proc, as a submission on the same machine would find them."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry)] = (parent, command)
    graders = {pid for pid, (_, command) in table.items()
               if OUT in command and any("properties.grad" in a for a in command)}
    judges = {pid: command for pid, (parent, command) in table.items() if parent in graders}
    return graders, judges


def _signal_the_grading():
    reached = 0
    graders, judges = _grading_processes()
    for pid in [*judges, *graders]:
        for sig in (signal.SIGSTOP, signal.SIGTERM):
            try:
                os.kill(pid, sig)
                reached += 1
            except OSError:
                pass
    return reached


REACHED = _signal_the_grading()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if REACHED else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
