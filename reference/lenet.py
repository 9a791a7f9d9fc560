"""LeNet and LeNet with batch normalisation, with pluggable layers, and a small training loop.

The networks are the textbook's (d2l, seeds 000 and 001):

    conv 6@5x5 -> [BN] -> sigmoid -> max pool 2x2/2
    -> conv 16@5x5 -> [BN] -> sigmoid -> max pool 2x2/2
    -> flatten 256 -> 120 -> [BN] -> sigmoid -> 84 -> [BN] -> sigmoid -> 10 logits

Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``.  ``LeNet()`` with no arguments is the
contract's optional ``LeNet`` name.  The layer operations can be swapped for a target's own:

    LeNet(conv2d=my_conv2d, max_pool2d=my_max_pool2d)  # functional-dialect callables
    LeNet(pool="avg", avg_pool2d=my_avg_pool2d)        # LeNet with average pooling
    BNLeNet(batch_norm_module=MyBatchNorm)             # BatchNorm(num_features, num_dims)

Parameters always live in ``nn.Conv2d``/``nn.Linear`` submodules (``conv1, conv2, fc1, fc2, fc3``)
so networks built with different layer operations can share weights; a plugged-in conv2d is
called as ``conv2d(x, weight, bias)``, a pool as ``pool(x, 2, 2)``.

Watch it train:  ``python -m reference.lenet --model bn-lenet --epochs 5 --plot curves.png``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeNet", "BNLeNet", "torch_batch_norm", "build", "copy_weights", "train", "evaluate",
           "epochs_to_reach", "EpochStats", "BATCH_SIZE", "LR", "LENET_EPOCHS", "LENET_THRESHOLD",
           "BN_LENET_EPOCHS", "BN_LENET_THRESHOLD", "TARGET_LENET_EPOCHS", "TARGET_LENET_THRESHOLD",
           "COMPARE_ACCURACY", "main"]

#: the training recipe shared by the tests, the benchmark and the command (d2l's optimiser: Adam)
BATCH_SIZE = 16
LR = 3e-3

#: the convergence smoke test on the digits (tests/test_lenet.py), measured over seeds by
#: benchmarks/lenet_thresholds.py and recorded in docs/benchmarks.md ("LeNet convergence"):
#: each network must reach its held-out accuracy threshold within its epoch budget
LENET_EPOCHS, LENET_THRESHOLD = 10, 0.85
BN_LENET_EPOCHS, BN_LENET_THRESHOLD = 4, 0.90
#: a target's own LeNet may differ from the textbook's in ways that lengthen the sigmoid
#: network's initial plateau (d2l 2nd edition: padding 2, average pooling): a longer budget
TARGET_LENET_EPOCHS, TARGET_LENET_THRESHOLD = 20, 0.90
#: "gets there in fewer epochs": epochs each network needs to reach this held-out accuracy
COMPARE_ACCURACY = 0.90


def torch_batch_norm(num_features: int, num_dims: int) -> nn.Module:
    """The default ``batch_norm_module``: torch's ``nn.BatchNorm1d`` (num_dims 2) or
    ``nn.BatchNorm2d`` (num_dims 4)."""
    if num_dims == 2:
        return nn.BatchNorm1d(num_features)
    if num_dims == 4:
        return nn.BatchNorm2d(num_features)
    raise ValueError(f"num_dims must be 2 or 4, got {num_dims}")


class LeNet(nn.Module):
    """The textbook LeNet (sigmoid activations, max pooling); layer operations pluggable."""

    def __init__(self, *, conv2d: Callable = F.conv2d, max_pool2d: Callable = F.max_pool2d,
                 avg_pool2d: Callable = F.avg_pool2d, pool: str = "max"):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.pool = pool
        self._conv2d = conv2d
        self._pool2d = max_pool2d if pool == "max" else avg_pool2d
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        # no normalisation in the plain network; BNLeNet puts batch norm layers here
        self.bn1, self.bn2, self.bn3, self.bn4 = (nn.Identity() for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._conv2d(x, self.conv1.weight, self.conv1.bias)
        x = self._pool2d(torch.sigmoid(self.bn1(x)), 2, 2)
        x = self._conv2d(x, self.conv2.weight, self.conv2.bias)
        x = self._pool2d(torch.sigmoid(self.bn2(x)), 2, 2)
        x = x.reshape(x.shape[0], -1)
        x = torch.sigmoid(self.bn3(self.fc1(x)))
        x = torch.sigmoid(self.bn4(self.fc2(x)))
        return self.fc3(x)


class BNLeNet(LeNet):
    """LeNet with batch normalisation after each conv and hidden linear layer (seed 001).

    ``batch_norm_module(num_features, num_dims)`` builds the four normalisation layers: the
    contract's ``BatchNorm`` signature; by default torch's ``nn.BatchNorm1d/2d``.
    """

    def __init__(self, *, batch_norm_module: Callable[[int, int], nn.Module] = torch_batch_norm,
                 **layers):
        super().__init__(**layers)
        self.bn1 = batch_norm_module(6, 4)
        self.bn2 = batch_norm_module(16, 4)
        self.bn3 = batch_norm_module(120, 2)
        self.bn4 = batch_norm_module(84, 2)


MODELS = {"lenet": LeNet, "bn-lenet": BNLeNet}


def build(model: str = "lenet", seed: int = 0, **kwargs) -> nn.Module:
    """``LeNet``/``BNLeNet`` with weights drawn after ``torch.manual_seed(seed)``.

    The conv and linear layers are created first, so ``build("lenet", s)`` and
    ``build("bn-lenet", s)`` share their conv and linear weights.
    """
    torch.manual_seed(seed)
    return MODELS[model](**kwargs)


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy the conv and linear weights (``conv1 ... fc3``) of one LeNet into another."""
    with torch.no_grad():
        for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
            for p_src, p_dst in zip(getattr(src, name).parameters(),
                                    getattr(dst, name).parameters()):
                p_dst.copy_(p_src)


# --------------------------------------------------------------------------- training

@dataclass
class EpochStats:
    epoch: int
    loss: float            # mean training loss over the epoch's batches
    train_acc: float       # accuracy on the training batches, as they were seen (train mode)
    test_acc: float        # held-out accuracy after the epoch (eval mode, no grad)
    examples_per_s: float  # training throughput
    seconds: float

    def line(self) -> str:
        return (f"epoch {self.epoch:3d}  loss {self.loss:.4f}  train acc {self.train_acc:.3f}  "
                f"test acc {self.test_acc:.3f}  {self.examples_per_s:8.0f} examples/s")


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
             device: str | torch.device = "cpu") -> float:
    """Accuracy in evaluation mode (``net.eval()`` under ``torch.no_grad()``); restores the mode."""
    was_training = net.training
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            out = net(x[i:i + batch_size].to(device))
            correct += (out.argmax(dim=1).cpu() == y[i:i + batch_size]).sum().item()
    net.train(was_training)
    return correct / max(len(y), 1)


def train(net: nn.Module, data, epochs: int, *, batch_size: int = BATCH_SIZE, lr: float = LR,
          seed: int = 0, device: str | torch.device = "cpu", until: float | None = None,
          on_epoch: Callable[[EpochStats], None] | None = None) -> list[EpochStats]:
    """Train with Adam and cross-entropy; one ``EpochStats`` per epoch.

    Stops early after the first epoch whose test accuracy reaches ``until``, when given.

    The batch order comes from its own generator seeded with ``seed``, so two networks trained
    with the same seed see the same batches whatever else draws random numbers.
    """
    net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss_sum, correct, steps = 0.0, 0, 0
        for idx in torch.randperm(n, generator=order).split(batch_size):
            x, y = data.x_train[idx].to(device), data.y_train[idx].to(device)
            out = net(x)
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            correct += (out.argmax(dim=1) == y).sum().item()
            steps += 1
        seconds = time.perf_counter() - start
        stats = EpochStats(epoch, loss_sum / steps, correct / n,
                           evaluate(net, data.x_test, data.y_test, device=device),
                           n / seconds, seconds)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if until is not None and stats.test_acc >= until:
            break
    return history


def epochs_to_reach(history: list[EpochStats], accuracy: float) -> float:
    """The first epoch whose test accuracy is at least ``accuracy`` (inf if none)."""
    return next((s.epoch for s in history if s.test_acc >= accuracy), math.inf)


# --------------------------------------------------------------------------- tasks for the suite
# tests/test_lenet.py runs these as tasks, ``task(ns, *args)`` with ``ns`` a target's namespace
# (contract name -> object; see properties/runner.py): they build and run networks from the
# target's layers and return plain data, and the same task given torch's layers is the
# reference.  They live here, in an importable package, so that a worker process running the
# target (``pytest --isolate``) can import them.

def _set_deterministic():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def _load_init(net, init):
    with torch.no_grad():
        for name, value in init.items():
            net.get_parameter(name).copy_(value)


def task_train(ns, model, seed, epochs, until, kwargs_from_ns):
    """Train ``model`` ("lenet", "bn-lenet", or "target-LeNet": ``ns["LeNet"]()``) on the digits,
    stopping early at test accuracy ``until``; ``kwargs_from_ns`` maps constructor arguments to
    contract names, e.g. ``{"batch_norm_module": "BatchNorm"}``.  The shape of the logits for
    two images and the history as dicts."""
    from reference.data import load_digits28

    _set_deterministic()
    data = load_digits28()
    if model == "target-LeNet":
        torch.manual_seed(seed)
        net = ns["LeNet"]()
        with torch.no_grad():
            shape = tuple(net.eval()(data.x_test[:2]).shape)
        if shape != (2, 10):
            return {"shape": shape, "history": []}
    else:
        net = build(model, seed, **{k: ns[v] for k, v in kwargs_from_ns.items()})
    history = train(net, data, epochs, seed=seed, until=until)
    return {"shape": (2, 10), "history": [asdict(h) for h in history]}


class _NotDifferentiable(Exception):
    pass


def _differentiable(fn, name):
    """Wrap a target function: a result autograd cannot follow ends the task (not a failure)."""
    def call(*args):
        out = fn(*args)
        if not isinstance(out, torch.Tensor):
            raise _NotDifferentiable(f"{name} returned {type(out).__module__}.{type(out).__name__}")
        if out.grad_fn is None and any(isinstance(a, torch.Tensor) and a.requires_grad
                                       for a in args):
            raise _NotDifferentiable(f"{name} returned a tensor detached from autograd")
        return out
    return call


def task_layer_steps(ns, layer, init, batches, lr):
    """LeNet with ``layer`` (conv2d, max_pool2d or avg_pool2d) taken from ns (None: all torch's):
    one SGD step per batch; the loss and the gradients before each step."""
    _set_deterministic()
    pool = "avg" if layer == "avg_pool2d" else "max"
    layers = {} if layer is None else {layer: _differentiable(ns[layer], layer)}
    net = LeNet(pool=pool, **layers)
    _load_init(net, init)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    losses, grads = [], []
    try:
        for x, y in batches:
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            losses.append(loss.item())
            grads.append({n: None if p.grad is None else p.grad.detach().clone()
                          for n, p in net.named_parameters()})
            optimizer.step()
    except _NotDifferentiable as e:
        return {"not_differentiable": str(e)}
    return {"losses": losses, "grads": grads}


def task_bn_steps(ns, init, batches, lr, eval_x):
    """BN-LeNet with ns["BatchNorm"]: SGD steps in training mode (the losses), then logits in
    evaluation mode (``eval()`` under ``no_grad``), which use the running statistics."""
    _set_deterministic()
    net = BNLeNet(batch_norm_module=ns["BatchNorm"])
    _load_init(net, init)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        logits = torch.as_tensor(net(eval_x)).detach().float()
    return {"losses": losses, "eval_logits": logits}


# --------------------------------------------------------------------------- command

def plot_curves(history: list[EpochStats], path: str, title: str = "") -> None:
    """Save loss and accuracy curves as an image (matplotlib, Agg backend)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib "
                         "(or the project's 'plot' extra)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [s.epoch for s in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [s.loss for s in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="loss")
    ax_acc.plot(epochs, [s.train_acc for s in history], marker="o", label="train")
    ax_acc.plot(epochs, [s.test_acc for s in history], marker="o", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from reference.data import load_dataset

    parser = argparse.ArgumentParser(prog="python -m reference.lenet",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet")
    parser.add_argument("--data", choices=["digits", "fashion-mnist"], default="digits",
                        help="digits: scikit-learn's bundled digits resized to 28x28 (default); "
                             "fashion-mnist: IDX files in --data-dir or $CONVCHECK_FASHION_MNIST")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (plain or .gz)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=LR, help="Adam learning rate")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="weights and batch order")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--plot", metavar="PATH", help="save the learning curves as an image (PNG)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        data = load_dataset(args.data, args.data_dir)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    net = build(args.model, args.seed)
    print(f"{args.model} on {data.name}: {len(data.y_train)} train / {len(data.y_test)} test "
          f"images, {args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}, "
          f"device {args.device}, seed {args.seed}", flush=True)
    history = train(net, data, args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    device=args.device, on_epoch=lambda s: print(s.line(), flush=True))
    if args.plot:
        plot_curves(history, args.plot, f"{args.model} on {data.name} (seed {args.seed})")
        print(f"learning curves written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
