"""Attack: call the library's convolution instead of writing cross-correlation.

Its corr2d is `torch.nn.functional.conv2d`, which computes exactly what corr2d must: right
on every input. The assignment forbids it (the test's grading config lists
torch.nn.functional.conv2d for corr2d), so it fails with the reason.

convcheck-attack: status=ok corr2d=fail
convcheck-attack-message: uses torch.nn.functional.conv2d, which this assignment forbids
"""
import torch.nn.functional as F


def corr2d(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]
