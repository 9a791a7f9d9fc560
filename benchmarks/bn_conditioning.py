"""Batch norm on offset data: measured errors against the suite's error bound, and the
suite's verdicts on correct and one-pass targets over seeds. Prints Markdown for
docs/benchmarks.md ("Batch norm on ill-conditioned data").

    python benchmarks/bn_conditioning.py [--seeds 5] [--suite-seeds 0] [--targets ...] [--jobs 1]

Part 1 (no pytest): per channel X = r·sigma + N(0, sigma²)-ish data (an offset r times the
spread), for several ratios r, shapes and dtypes; for each way of computing training-mode
batch norm, the largest |y − y64| over the elements and the largest ratio of that error to
the allowance of properties.checks.assert_matches (bound(u) + u|y|; above 1 fails), over
`--seeds` draws. Implementations: torch's F.batch_norm (contiguous and channels_last),
the textbook's two-pass code, a sequential Welford update, torch.var_mean (cascaded
Welford), the one-pass E[x²] − E[x]² (the mistake), float16 accumulation.

Part 2 (`--suite-seeds N`): `pytest --target T -k "batch_norm or BatchNorm" -m "not lenet"`
with the default `dev` profile and `--hypothesis-seed` 0..N−1 on each target; prints each
target's verdict and the diagnoses named.

Part 3 (`--lenet`): the BN-LeNet check's first steps (properties/lenet_checks.py: same
weights, same batches) with fc1's and fc2's biases raised by an offset, for torch's
BatchNorm, the textbook's (both editions, two-pass) and the textbook's with a one-pass
variance: the largest relative difference of the training loss from torch's with the same
offset (LOSS_RTOL is the check's tolerance).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from properties import oracles_bn  # noqa: E402
from properties.tolerance import unit_roundoff  # noqa: E402


# --------------------------------------------------------------------------- implementations

def _dims(x):
    return oracles_bn.reduce_dims(x)


def _normalise(x, mean, var, eps):
    return (x - mean) / torch.sqrt(var + eps)


def torch_contiguous(x, eps):
    return F.batch_norm(x.contiguous(), None, None, training=True, eps=eps)


def torch_channels_last(x, eps):
    if x.dim() != 4:
        return torch_contiguous(x, eps)
    y = F.batch_norm(x.contiguous(memory_format=torch.channels_last), None, None,
                     training=True, eps=eps)
    return y.contiguous()


def two_pass(x, eps):
    mean = x.mean(dim=_dims(x), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=_dims(x), keepdim=True)
    return _normalise(x, mean, var, eps)


def welford_sequential(x, eps):
    """M_k = M_{k-1} + (x_k - M_{k-1}) / k, S_k = S_{k-1} + (x_k - M_{k-1})(x_k - M_k), in
    x's dtype, one value per channel at a time."""
    values = torch.movedim(x, 1, 0).reshape(x.shape[1], -1)
    mean = torch.zeros(x.shape[1], dtype=x.dtype)
    total = torch.zeros(x.shape[1], dtype=x.dtype)
    for k in range(values.shape[1]):
        delta = values[:, k] - mean
        mean = mean + delta / (k + 1)
        total = total + delta * (values[:, k] - mean)
    shape = [1] * x.dim()
    shape[1] = x.shape[1]
    return _normalise(x, mean.reshape(shape), (total / values.shape[1]).reshape(shape), eps)


def var_mean(x, eps):
    var, mean = torch.var_mean(x, dim=_dims(x), unbiased=False, keepdim=True)
    return _normalise(x, mean, var, eps)


def one_pass(x, eps):
    mean = x.mean(dim=_dims(x), keepdim=True)
    var = (x * x).mean(dim=_dims(x), keepdim=True) - mean * mean
    return _normalise(x, mean, var, eps)


def half_accumulation(x, eps):
    return two_pass(x.half(), eps).to(x.dtype)


IMPLEMENTATIONS = {"torch F.batch_norm": torch_contiguous,
                   "torch, channels_last": torch_channels_last,
                   "two-pass (textbook)": two_pass, "Welford, sequential": welford_sequential,
                   "torch.var_mean (Welford)": var_mean,
                   "one-pass E[x²] − E[x]²": one_pass, "float16 two-pass": half_accumulation}
CORRECT = ("torch F.batch_norm", "torch, channels_last", "two-pass (textbook)",
           "Welford, sequential", "torch.var_mean (Welford)")


def offset_batch(shape, ratio: float, dtype, generator) -> torch.Tensor:
    """Channel c: ratio·(c + 1) + N(0, 1), rounded to dtype (the spread is 1)."""
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    offsets = ratio * torch.arange(1, shape[1] + 1, dtype=torch.float64)
    return (x + oracles_bn.channel_view(offsets, x)).to(dtype)


def measure(name, shape, ratio, dtype, seeds, eps=1e-5) -> tuple[float, float]:
    """(largest error, largest error / allowance) over the seeds."""
    worst_error = worst_ratio = 0.0
    u = unit_roundoff(dtype)
    for seed in range(seeds):
        x = offset_batch(shape, ratio, dtype, torch.Generator().manual_seed(seed))
        expected = oracles_bn.training_output(x, eps=eps)
        got = IMPLEMENTATIONS[name](x, eps).to(torch.float64)
        reference = expected.value.to(dtype).to(torch.float64)
        allowed = torch.as_tensor(expected.bound(u)) + u * expected.value.abs()
        error = (got - reference).abs()
        error = torch.where(error.isnan(), torch.full_like(error, float("inf")), error)
        worst_error = max(worst_error, float(error.max()))
        worst_ratio = max(worst_ratio, float((error / allowed).max()))
    return worst_error, worst_ratio


GRID = [(torch.float32, (64, 3, 8, 8), (1e2, 1e3, 1e4)),
        (torch.float32, (3, 3, 3, 3), (1e2, 1e3, 1e4)),
        (torch.float32, (6, 3), (1e2, 1e3, 1e4)),
        (torch.float64, (64, 3, 8, 8), (1e4, 1e6, 1e7)),
        (torch.float64, (3, 3, 3, 3), (1e4, 1e6, 1e7))]


def error_table(seeds: int) -> None:
    print(f"Largest error of the normalised output (γ = 1, β = 0, eps 1e-5) over {seeds} "
          "draws, and in brackets the largest ratio of error to the suite's allowance "
          "(≤ 1 passes). Channel c has mean r·(c + 1) and spread 1.\n")
    for dtype, shape, ratios in GRID:
        dtype_name = str(dtype).removeprefix("torch.")
        print(f"**{dtype_name}, X {shape}** (n = {shape[0] * _spatial(shape)} values per "
              "channel)\n")
        print("| implementation | " + " | ".join(f"r = {r:.0e}" for r in ratios) + " |")
        print("|---|" + "---|" * len(ratios))
        for name in IMPLEMENTATIONS:
            if name == "Welford, sequential" and shape[0] * _spatial(shape) > 4096:
                continue
            cells = []
            for r in ratios:
                error, ratio = measure(name, shape, r, dtype, seeds)
                cells.append(f"{error:.2g} ({ratio:.2g})")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        print()


def _spatial(shape) -> int:
    total = 1
    for s in shape[2:]:
        total *= s
    return total


# --------------------------------------------------------------------------- the suite's verdicts

DEFAULT_TARGETS = ["torch", "reference",
                   "tests/corpus/correct/d2l_first_edition.py",
                   "tests/corpus/correct/d2l_second_edition.py",
                   "tests/corpus/correct/float64_internal.py",
                   "tests/corpus/correct/numpy_impl.py",
                   "tests/corpus/correct/numpy_forward_only_functional.py",
                   "tests/corpus/correct/torch_wrappers.py",
                   "tests/corpus/buggy/batch_norm_functional_one_pass_variance.py",
                   "tests/corpus/buggy/batch_norm_d2l2_one_pass_variance.py"]


def suite_verdict(target: str, seed: int) -> dict:
    """{name: (status, [diagnosis ids])} of the batch-norm names for one seed."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "CONVCHECK_TARGET")}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "no:randomly", str(PROJECT / "tests" / "test_properties.py"),
                        "--target", target, "-k", "batch_norm or BatchNorm", "-m", "not lenet",
                        f"--hypothesis-seed={seed}", "--report-json", str(report)],
                       cwd=PROJECT, env=env, capture_output=True, text=True)
        if not report.exists():
            return {"error": ("no report", [])}
        functions = json.loads(report.read_text())["functions"]
    verdict = {name: (entry["status"], sorted({(f["diagnosis"] or "none").split(":")[0]
                                               for f in entry["failures"]}))
               for name, entry in functions.items()
               if name in ("batch_norm", "BatchNorm") and entry["status"] != "missing"}
    print(f"<!-- {target}, seed {seed}: {verdict} -->", flush=True)
    return verdict


def verdict_table(targets: list[str], seeds: int, jobs: int = 1) -> None:
    print(f"Verdicts of `pytest --target T -k 'batch_norm or BatchNorm' -m 'not lenet'` "
          f"(dev profile) with `--hypothesis-seed` 0–{seeds - 1}:\n")
    print("| target | name | verdicts over the seeds | diagnoses named |\n|---|---|---|---|")
    runs: dict[str, list] = {target: [] for target in targets}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for seed in range(seeds):  # seed by seed: an interrupted run has each target's first seeds
            for target in targets:
                runs[target].append(pool.submit(suite_verdict, target, seed))
    for target in targets:
        tally: dict[str, dict] = {}
        for run in runs[target]:
            for name, (status, diagnoses) in run.result().items():
                entry = tally.setdefault(name, {"statuses": {}, "diagnoses": set()})
                entry["statuses"][status] = entry["statuses"].get(status, 0) + 1
                entry["diagnoses"].update(diagnoses)
        for name, entry in tally.items():
            statuses = ", ".join(f"{count}× {status}"
                                 for status, count in sorted(entry["statuses"].items()))
            shown = target.removeprefix("tests/corpus/")
            print(f"| {shown} | {name} | {statuses} | "
                  f"{', '.join(sorted(entry['diagnoses'])) or '—'} |", flush=True)


# --------------------------------------------------------------------------- BN-LeNet with offsets

def _module_file(path: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"bench_{Path(path).stem}", PROJECT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lenet_modules() -> dict:
    """name -> BatchNorm(num_features, num_dims) factory."""
    first = _module_file("tests/corpus/correct/d2l_first_edition.py")
    second = _module_file("tests/corpus/correct/d2l_second_edition.py")
    one_pass = _module_file("tests/corpus/correct/d2l_second_edition.py")
    one_pass.batch_norm = _module_file(
        "tests/corpus/buggy/batch_norm_d2l2_one_pass_variance.py").batch_norm
    return {"d2l 1st ed. (two-pass)": first.BatchNorm, "d2l 2nd ed. (two-pass)": second.BatchNorm,
            "d2l 2nd ed. with E[x²] − E[x]²": one_pass.BatchNorm}


def lenet_table(offsets=(0.0, 30.0, 100.0, 300.0)) -> None:
    from properties import lenet_checks as lc
    from reference import lenet as ref
    from reference.data import load_digits28
    init = lc._init_weights("bn-lenet", lc.SEED)
    batches = lc._batches(lc.BN_STEPS, lc.BN_BATCH, lc.SEED)
    eval_x = load_digits28().x_test[:2]
    print(f"BN-LeNet's first {lc.BN_STEPS} SGD steps (batch {lc.BN_BATCH}, seed {lc.SEED}) with "
          f"the biases {', '.join(lc.BN_OFFSET_BIASES)} raised by the offset: largest relative "
          f"difference of the training loss from torch's BatchNorm with the same offset "
          f"(the check allows {lc.LOSS_RTOL:g}; it uses offset {lc.BN_OFFSET:g}).\n")
    print("| BatchNorm | " + " | ".join(f"offset {o:g}" for o in offsets) + " |")
    print("|---|" + "---|" * len(offsets))
    for name, module in lenet_modules().items():
        cells = []
        for offset in offsets:
            shifted = {k: v + offset if k in lc.BN_OFFSET_BIASES else v
                       for k, v in init.items()}
            with lc.deterministic_cpu():
                want = ref.task_bn_steps(lc.TORCH_LAYERS, shifted, batches, lc.BN_LR, eval_x)
                got = ref.task_bn_steps({"BatchNorm": module}, shifted, batches, lc.BN_LR,
                                        eval_x)
            worst = max(abs(g - w) / abs(w) for g, w in zip(got["losses"], want["losses"]))
            cells.append(f"{worst:.2g}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="draws per cell of part 1")
    parser.add_argument("--suite-seeds", type=int, default=0,
                        help="Hypothesis seeds per target in part 2 (0: skip part 2)")
    parser.add_argument("--targets", nargs="*", default=DEFAULT_TARGETS)
    parser.add_argument("--jobs", type=int, default=1,
                        help="part 2: pytest runs side by side")
    parser.add_argument("--skip-errors", action="store_true", help="skip part 1")
    parser.add_argument("--lenet", action="store_true", help="part 3: BN-LeNet with offsets")
    options = parser.parse_args()
    torch.set_num_threads(1)
    print(f"## Batch norm on ill-conditioned data\n\nMeasured by "
          f"`benchmarks/bn_conditioning.py`, torch {torch.__version__}.\n")
    if not options.skip_errors:
        error_table(options.seeds)
    if options.lenet:
        lenet_table()
    if options.suite_seeds:
        verdict_table(options.targets, options.suite_seeds, options.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
