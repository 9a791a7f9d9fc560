"""`convcheck.check()`: the properties run inside this Python process on the functions and
classes a live namespace defines — in a Jupyter notebook, the kernel's globals, unsaved edits
included — and the report card shown under the cell.

    import convcheck
    convcheck.check()                    # every contract name the notebook defines
    convcheck.check("corr2d", "pool2d")  # these names only
    convcheck.check(thorough=True)       # the full budget of examples (as `convcheck FILE`)
    %convcheck corr2d pool2d             # the same, as a line magic (registered on import)

What is checked. The caller's globals (a notebook cell's are the kernel's), as a file target's
namespace is (properties.contract.from_namespace: the same names, dialects — batch_norm's
from its first parameter — and conventions, properties.conventions). A kernel keeps what every
cell it ran left behind, so a contract name counts only when it is bound to what the contract
calls: a function (or another callable that is neither a class nor an nn.Module object) for
a function name, a class for Conv2D, BatchNorm and LeNet. The d2l chapter rebinds `pool2d`
to an `nn.MaxPool2d` object and `conv2d` to an `nn.Conv2d`: such a name is not checked, and
the card says what it is bound to.

How. Each property of catalog.ALL_PROPERTIES about a chosen name runs as under pytest
(Property.verify, Hypothesis, the diagnosis), in process (runner.InProcessRunner: a call that
hangs fails after `call_timeout` seconds). Its outcome becomes a pytest.TestReport carrying the
failure record (properties.outcomes.record_of/annotate, with the picture of a wrong result when
HTML is shown), which report.ReportCollector tallies — the same path a pytest run takes to its
report card and --report-json object. The LeNet training checks are not run here.

Budget. Quick by default: QUICK_EXAMPLES Hypothesis examples per property (each property's
own examples, such as the textbook's, always run), so that every textbook name is checked in a
few seconds (benchmarks/notebook_check.py, docs/benchmarks.md); `thorough=True` gives each
property the examples of the profile pytest uses (dev: 40; ci when $CI is set).

The kernel is left as it was found: default dtype, grad mode, inference mode, number of
threads, deterministic-algorithms flag, the torch, numpy and random generators' states
(runner.guarded_global_state), warning filters and the Hypothesis profile; what the target
prints while checked is not shown. The interrupt button (KeyboardInterrupt) stops the check
at once, with all of that restored.
"""
from __future__ import annotations

import contextlib
import io
import sys
import time
import warnings
from dataclasses import dataclass, field

import pytest
import scipy.ndimage  # noqa: F401  (the oracles import these late; imported with the suite,
import scipy.signal  # noqa: F401   the first check is as quick as the next)
import torch
from hypothesis import settings

import properties.profiles  # noqa: F401  (registers the Hypothesis profiles)
from properties import contract, conventions, html
from properties.catalog import ALL_PROPERTIES
from properties.outcomes import annotate, record_of
from properties.report import ReportCollector
from properties.runner import InProcessRunner, guarded_global_state
from properties.target import Target

#: Hypothesis examples per property of the quick check (before each property's budget).
QUICK_EXAMPLES = 6
#: Seconds a single call of the target may take.
CALL_TIMEOUT = 10.0
#: Names whose classes the contract calls (the others are functions).
CLASS_NAMES = ("Conv2D", "BatchNorm", "LeNet")
#: What the quick check does not run, said under the card when it concerns a defined name.
NOT_RUN_HERE = ("LeNet and the training checks of BatchNorm in BN-LeNet are not run by "
                "check(): run `convcheck NOTEBOOK.ipynb` for them")


@dataclass
class CheckReport:
    """What check() found: shown as an HTML card in a notebook (`_repr_html_`), as text
    elsewhere (`str`). `report` is the --report-json object (docs/contract.md)."""
    report: dict
    names: tuple[str, ...]
    header: list[str] = field(default_factory=list)
    text_card: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    error: str | None = None      # why the namespace cannot be checked (a usage error)

    @property
    def passed(self) -> bool:
        """No chosen name failed, and at least one property held."""
        if self.error is not None:
            return False
        chosen = [self.report["functions"][n] for n in self.names]
        return not any(e["status"] == "fail" for e in chosen) and any(e["passed"] for e in chosen)

    def _repr_html_(self) -> str:
        if self.error:
            return html.card({}, header=[self.error], names=(), heading="convcheck: not checked")
        return html.card(self.report, header=self.header, names=self.names,
                         heading="convcheck", footer=self.footer)

    def __str__(self) -> str:
        if self.error:
            return f"convcheck: not checked: {self.error}"
        lines = [*self.header, "", *self.text_card]
        lines += failure_lines(self.report, self.names)
        lines += self.footer
        return "\n".join(lines)

    __repr__ = __str__


def failure_lines(report: dict, names) -> list[str]:
    """The failures of `names` as text, as a student reads them: the property, what was
    wrong, the likely mistake, the minimal failing call (the first failure of each
    property, at most html.FAILURES_SHOWN per name)."""
    lines = []
    for name in names:
        seen = []
        for failure in report["functions"][name]["failures"]:
            if failure.get("property") in seen or len(seen) == html.FAILURES_SHOWN:
                continue
            seen.append(failure.get("property"))
            lines += ["", f"{name} — {failure.get('property')}", f"  {failure.get('message')}"]
            if failure.get("diagnosis"):
                lines.append(f"  likely mistake: {failure['diagnosis']}")
            if failure.get("example"):
                lines.append("  minimal failing call (runs on its own):")
                lines += [f"    {line}" for line in failure["example"].splitlines()]
    return lines


# --------------------------------------------------------------------------- the namespace

def is_definition(name: str, value) -> bool:
    """Whether `value` is what the contract calls under `name` (module docstring)."""
    import inspect
    if name in CLASS_NAMES:
        return inspect.isclass(value)
    return callable(value) and not inspect.isclass(value) and \
        not isinstance(value, torch.nn.Module)


def definitions(namespace) -> tuple[dict, list[str]]:
    """The contract names of `namespace` that are definitions, and a sentence for each
    contract name bound to something else."""
    kept, other = {}, []
    for name in contract.CONTRACT_NAMES:
        value = namespace.get(name)
        if value is None:
            continue
        if is_definition(name, value):
            kept[name] = value
        else:
            wanted = "a class" if name in CLASS_NAMES else "a function"
            other.append(f"{name} is {_a(type(value).__name__)} object here, not {wanted}: "
                         "not checked (did a later cell reuse the name?)")
    return kept, other


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _ipython():
    """The running IPython shell, or None."""
    module = sys.modules.get("IPython")
    return module.get_ipython() if module is not None else None


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where the card is shown as HTML)."""
    return getattr(_ipython(), "kernel", None) is not None


def _describe(namespace) -> str:
    shell = _ipython()
    if shell is not None and namespace is shell.user_ns:
        return "this kernel's definitions (unsaved edits included)" if in_notebook() else \
            "this IPython session's definitions"
    return f"the definitions of module {namespace.get('__name__', '?')}"


# --------------------------------------------------------------------------- running

@contextlib.contextmanager
def kernel_state_kept(profile: str):
    """Run the block under Hypothesis profile `profile`, one torch thread, warnings and
    output captured, and put back everything the module docstring lists."""
    previous = settings.get_current_profile_name()
    with guarded_global_state(), warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # The suite's tensors are tiny: more threads only add synchronisation (session.py).
        torch.set_num_threads(1)
        settings.load_profile(profile)
        try:
            yield
        finally:
            settings.load_profile(previous)


def budget_profile(thorough: bool) -> tuple[str, int]:
    """The Hypothesis profile of a check (registered here) and its examples per property."""
    base = settings.get_current_profile_name()
    if base.startswith("convcheck-live"):
        base = properties.profiles.default_profile()
    full = settings.get_profile(base).max_examples
    examples = full if thorough else min(QUICK_EXAMPLES, full)
    name = f"convcheck-live-{examples}"
    settings.register_profile(name, settings.get_profile(base), max_examples=examples)
    return name, examples


def run_property(prop, target, figures: bool) -> pytest.TestReport:
    """One property on the target, its outcome as a test report carrying its record."""
    outcome, longrepr, record = "passed", None, None
    try:
        prop.verify(target)
    except pytest.skip.Exception as exc:
        outcome, longrepr = "skipped", ("convcheck", 0, f"Skipped: {exc.msg}")
    except Exception as exc:  # noqa: BLE001 - a property that does not hold is data here
        outcome, longrepr = "failed", str(exc)
        record = record_of(exc, prop.subject, prop.title, figure=figures)
    report = pytest.TestReport(f"convcheck.check::{prop.test_id}",
                               ("convcheck", None, prop.test_id), {}, outcome, longrepr, "call")
    annotate(report, prop.subject, record, target.take_notes())
    return report


def check(*names: str, thorough: bool = False, namespace: dict | None = None,
          call_timeout: float = CALL_TIMEOUT, figures: bool | None = None) -> CheckReport:
    """Check the contract names defined in `namespace` (default: the caller's globals — a
    notebook cell's are the kernel's), or only `names`; see the module docstring.

    figures   draw the picture of each wrong result (default: in a notebook, where the card
              is HTML; needs matplotlib)"""
    unknown = [n for n in names if n not in contract.CONTRACT_NAMES]
    if unknown:
        raise ValueError(f"convcheck.check: {', '.join(map(repr, unknown))} is not a contract "
                         f"name; the names are {', '.join(contract.CONTRACT_NAMES)}")
    chosen = tuple(n for n in contract.CONTRACT_NAMES if not names or n in names)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    figures = in_notebook() if figures is None else figures
    started = time.perf_counter()
    defined, others = definitions(namespace)
    spec = _describe(namespace)
    profile, examples = budget_profile(thorough)
    with kernel_state_kept(profile):
        try:
            loaded = contract.from_namespace(defined, spec, contract.LIVE_KIND,
                                             str(namespace.get("__name__", "")))
        except contract.TargetLoadError as exc:
            return CheckReport({}, chosen, error=str(exc))
        target = Target(loaded.describe(), InProcessRunner(loaded.namespace, call_timeout))
        target.conventions = conventions.detect(target)
        collector = ReportCollector(target)
        for prop in ALL_PROPERTIES:
            if prop.subject in chosen:
                collector.pytest_runtest_logreport(run_property(prop, target, figures))
    seconds = time.perf_counter() - started
    checked = [n for n in chosen if target.defines(n)]
    header = [f"checked: {spec}",
              "defines: " + (", ".join(checked) or "none of the contract's names"
                             + (" chosen" if names else "")),
              *[f"dialect of {n}: {target.dialect(n)}" for n in checked
                if n == "batch_norm"],
              *[line for line in others if line.split()[0] in chosen]]
    budget = (f"{examples} examples per property" + ("" if thorough else
              " (quick; check(thorough=True) for the full budget)"))
    footer = [f"{len(checked)} name(s) checked in {seconds:.1f} s, {budget}"]
    if {"LeNet", "BatchNorm"} & set(checked):
        footer.append(NOT_RUN_HERE)
    return CheckReport(collector.as_json(), chosen, header, collector.card_lines(chosen), footer)


# --------------------------------------------------------------------------- the magic

def convcheck_magic(line: str):
    """%convcheck [NAME ...] [--thorough]: check() on the notebook's globals."""
    words = line.split()
    names = [w for w in words if w != "--thorough"]
    return check(*names, thorough="--thorough" in words, namespace=_ipython().user_ns)


def load_ipython_extension(shell) -> None:
    """`%load_ext convcheck` (also done by `import convcheck` in IPython): the magic."""
    shell.register_magic_function(convcheck_magic, "line", "convcheck")


if _ipython() is not None:  # `import convcheck` in IPython brings the magic along
    load_ipython_extension(_ipython())
