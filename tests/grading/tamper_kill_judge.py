"""Wrong corr2d that kills its parent (the judge) when called, so no failure gets reported.

Sandboxed, its parent is the sandbox's own first process, which it may not kill: its wrong
corr2d fails. Not sandboxed, the judge dies.

convcheck-grade: status=crash|ok corr2d=crash|fail pool2d=missing
"""
import os
import signal


def corr2d(X, K):
    os.kill(os.getppid(), signal.SIGKILL)
    return X
