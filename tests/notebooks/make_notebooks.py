"""Write the notebook fixtures of tests/test_notebook.py.

``python tests/notebooks/make_notebooks.py`` regenerates, next to this file:

* ``d2l_chapter6.ipynb`` -- the d2l (2nd ed., PyTorch) chapter-6 code as a student's
  notebook would hold it: imports with ``%matplotlib inline`` and ``from d2l import torch
  as d2l``, the textbook definitions (corr2d, Conv2D, corr2d_multi_in through d2l.corr2d,
  corr2d_multi_in_out, corr2d_multi_in_out_1x1, pool2d, batch_norm, BatchNorm, LeNet),
  demo cells, the edge-kernel learning loop, a Fashion-MNIST download, a training run,
  a plot, a cell that fails with NameError and markdown cells;
* ``d2l_chapter6_buggy_pool.ipynb`` -- the same, with seed 000's pool2d whose average
  branch computes the minimum;
* ``d2l_chapter6_five_mistakes.ipynb`` -- the same with five realistic mistakes of a
  student's own: an average pool dividing by p_h * p_h, the 1x1 product reshaped to
  (c_o, w, h), eps added outside the square root in batch_norm, BatchNorm passing the first
  edition's momentum 0.9 to the second edition's update, and a functional conv2d whose
  'same' padding is split evenly for even kernels.

Cell ids are fixed so regenerating gives identical files; tests check the committed files
are what this script writes (``build_notebook``).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

IMPORTS = """\
%matplotlib inline
import torch
from torch import nn
from d2l import torch as d2l"""

CORR2D = '''\
def corr2d(X, K):  #@save
    """Compute 2D cross-correlation."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y'''

CORR2D_DEMO = """\
X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
corr2d(X, K)"""

CONV2D = """\
class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias"""

EDGE_DEMO = """\
X = torch.ones((6, 8))
X[:, 2:6] = 0
K = torch.tensor([[1.0, -1.0]])
Y = corr2d(X, K)
Y"""

EDGE_LEARNING = """\
# Construct a two-dimensional convolutional layer with 1 output channel and a
# kernel of shape (1, 2). For the sake of simplicity, we ignore the bias here
conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)

# The two-dimensional convolutional layer uses four-dimensional input and
# output in the format of (example, channel, height, width)
X = X.reshape((1, 1, 6, 8))
Y = Y.reshape((1, 1, 6, 7))
lr = 3e-2  # Learning rate

for i in range(10):
    Y_hat = conv2d(X)
    l = (Y_hat - Y) ** 2
    conv2d.zero_grad()
    l.sum().backward()
    # Update the kernel
    conv2d.weight.data[:] -= lr * conv2d.weight.grad
    if (i + 1) % 2 == 0:
        print(f'epoch {i + 1}, loss {l.sum():.3f}')"""

MULTI_IN = """\
def corr2d_multi_in(X, K):
    # Iterate through the 0th dimension (channel) of K first, then add them up
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))"""

MULTI_IN_OUT = """\
def corr2d_multi_in_out(X, K):
    # Iterate through the 0th dimension of K, and each time, perform
    # cross-correlation operations with input X. All of the results are
    # stacked together
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)"""

ONE_BY_ONE = """\
def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    # Matrix multiplication in the fully connected layer
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))

X = torch.normal(0, 1, (3, 3, 3))
K = torch.normal(0, 1, (2, 3, 1, 1))
Y1 = corr2d_multi_in_out_1x1(X, K)
Y2 = corr2d_multi_in_out(X, K)
assert float(torch.abs(Y1 - Y2).sum()) < 1e-6"""

POOL2D = """\
def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y"""

# Seed 000's pool2d: the average branch takes the minimum.
BUGGY_POOL2D = """\
def pool2d(X, pool_size, mode='max'):
    X = X.float()
    h, w = X.shape
    p_h, p_w = pool_size
    y_h, y_w = h-p_h+1, w-p_w+1
    y = torch.zeros(y_h,y_w)
    for i in range(0,y_h):
        for j in range(0,y_w):
            if mode=='max':
                y[i][j] = X[i:i+p_h,j:j+p_w].max()
            elif mode=='avg':
                y[i][j] = X[i:i+p_h,j:j+p_w].min()
    return y"""

POOL_DEMO = """\
X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
pool2d = nn.MaxPool2d(3, padding=1, stride=2)
pool2d(X)"""

FAILING = """\
def corr2d_strided(X, K, stride=default_stride):
    h, w = K.shape
    return corr2d(X[::stride, ::stride], K)"""

BATCH_NORM = """\
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    # Use is_grad_enabled to determine whether we are in training mode
    if not torch.is_grad_enabled():
        # In prediction mode, use mean and variance obtained by moving average
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and
            # variance on the feature dimension
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:
            # When using a two-dimensional convolutional layer, calculate the
            # mean and variance on the channel dimension (axis=1). Here we
            # need to maintain the shape of X, so that the broadcasting
            # operation can be carried out later
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        # In training mode, the current mean and variance are used
        X_hat = (X - mean) / torch.sqrt(var + eps)
        # Update the mean and variance using moving average
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean
        moving_var = (1.0 - momentum) * moving_var + momentum * var
    Y = gamma * X_hat + beta  # Scale and shift
    return Y, moving_mean.data, moving_var.data"""

BATCH_NORM_LAYER = """\
class BatchNorm(nn.Module):
    # num_features: the number of outputs for a fully connected layer or the
    # number of output channels for a convolutional layer. num_dims: 2 for a
    # fully connected layer and 4 for a convolutional layer
    def __init__(self, num_features, num_dims):
        super().__init__()
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        # The scale parameter and the shift parameter (model parameters) are
        # initialized to 1 and 0, respectively
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # The variables that are not model parameters are initialized to 0 and
        # 1
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        # If X is not on the main memory, copy moving_mean and moving_var to
        # the device where X is located
        if self.moving_mean.device != X.device:
            self.moving_mean = self.moving_mean.to(X.device)
            self.moving_var = self.moving_var.to(X.device)
        # Save the updated moving_mean and moving_var
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean,
            self.moving_var, eps=1e-5, momentum=0.1)
        return Y"""

BN_NET = """\
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5), BatchNorm(6, num_dims=4), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16, num_dims=4), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
    nn.Linear(16*4*4, 120), BatchNorm(120, num_dims=2), nn.Sigmoid(),
    nn.Linear(120, 84), BatchNorm(84, num_dims=2), nn.Sigmoid(),
    nn.Linear(84, 10))"""

HYPERPARAMETERS = "lr, num_epochs, batch_size = 1.0, 10, 256"

DOWNLOAD = "train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)"

TRAIN = "d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, d2l.try_gpu())"

PLOT = """\
d2l.plot(torch.arange(6), [net[1].gamma.reshape((-1,)).detach()],
         xlabel='channel', ylabel='gamma')"""

LENET_AND_TRAIN = """\
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.Sigmoid(),
            nn.Linear(84, 10))

    def forward(self, X):
        return self.net(X)

train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=256)
d2l.train_ch6(LeNet(), train_iter, test_iter, 10, 0.9, d2l.try_gpu())"""


# The five mistakes of d2l_chapter6_five_mistakes.ipynb.
FIVE_MISTAKES = {
    POOL2D: POOL2D.replace(".mean()", ".sum() / (p_h * p_h)"),
    ONE_BY_ONE: ONE_BY_ONE.replace("return Y.reshape((c_o, h, w))",
                                   "return Y.reshape((c_o, w, h))"),
    BATCH_NORM: BATCH_NORM.replace("X_hat = (X - mean) / torch.sqrt(var + eps)",
                                   "X_hat = (X - mean) / (torch.sqrt(var) + eps)"),
    BATCH_NORM_LAYER: BATCH_NORM_LAYER.replace("eps=1e-5, momentum=0.1)",
                                               "eps=1e-5, momentum=0.9)"),
}
SAME_CONV2D = """\
import torch.nn.functional as F

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    # 'same': pad half the (dilated) kernel on every side, as for the lecture's odd kernels
    if padding == 'same':
        d = (dilation, dilation) if isinstance(dilation, int) else dilation
        padding = tuple((dd * (k - 1) + 1) // 2 for dd, k in zip(d, weight.shape[2:]))
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)"""


def chapter6_cells(pool2d_source: str = POOL2D, changes: dict | None = None,
                   extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """The chapter's cells as (kind, source) pairs, kind 'markdown' or 'code'; `changes`
    replaces cell sources, `extra` cells go at the end."""
    changes = changes or {}
    return [(kind, changes.get(source, source)) for kind, source in _chapter6(pool2d_source)] \
        + list(extra)


def _chapter6(pool2d_source: str) -> list[tuple[str, str]]:
    return [
        ("markdown", "# Convolutional Neural Networks\nNotes on d2l chapter 6 (PyTorch)."),
        ("code", IMPORTS),
        ("markdown", "## The Cross-Correlation Operation"),
        ("code", CORR2D),
        ("code", CORR2D_DEMO),
        ("code", CONV2D),
        ("markdown", "## Object Edge Detection in Images"),
        ("code", EDGE_DEMO),
        ("code", EDGE_LEARNING),
        ("markdown", "## Multiple Input and Multiple Output Channels"),
        ("code", MULTI_IN),
        ("code", MULTI_IN_OUT),
        ("code", ONE_BY_ONE),
        ("markdown", "## Pooling"),
        ("code", pool2d_source),
        ("code", POOL_DEMO),
        ("code", FAILING),
        ("markdown", "## Batch Normalization"),
        ("code", BATCH_NORM),
        ("code", BATCH_NORM_LAYER),
        ("code", BN_NET),
        ("code", HYPERPARAMETERS),
        ("code", DOWNLOAD),
        ("code", TRAIN),
        ("code", PLOT),
        ("markdown", "## LeNet"),
        ("code", LENET_AND_TRAIN),
    ]


def build_notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """An nbformat 4 notebook of CELLS with deterministic cell ids and no outputs."""
    notebook = new_notebook()
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}}
    for position, (kind, source) in enumerate(cells, 1):
        cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
        cell["id"] = f"cell-{position:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


FIXTURES = {
    "d2l_chapter6.ipynb": lambda: build_notebook(chapter6_cells()),
    "d2l_chapter6_buggy_pool.ipynb": lambda: build_notebook(chapter6_cells(BUGGY_POOL2D)),
    "d2l_chapter6_five_mistakes.ipynb": lambda: build_notebook(chapter6_cells(
        changes=FIVE_MISTAKES, extra=(("markdown", "## My own functional conv2d"),
                                      ("code", SAME_CONV2D)))),
}


def main() -> None:
    """Write every fixture next to this script."""
    for name, build in FIXTURES.items():
        nbformat.write(build(), HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
