"""The target contract (docs/contract.md): which names a target may define, in which
dialect, and how a SPEC (`reference`, `torch`, a dotted module, a `.py` file, an `.ipynb`
notebook) becomes a namespace of those names.

Loading never runs a property; anything that goes wrong here is a usage error
(`TargetLoadError`), reported as one line before any test runs.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

TEXTBOOK_FUNCTIONS = ("corr2d", "corr2d_multi_in", "corr2d_multi_in_out",
                      "corr2d_multi_in_out_1x1", "pool2d")
FUNCTIONAL_FUNCTIONS = ("conv2d", "max_pool2d", "avg_pool2d")

#: Every contract name, in report order.
CONTRACT_NAMES = (*TEXTBOOK_FUNCTIONS, "batch_norm", "Conv2D", "BatchNorm",
                  *FUNCTIONAL_FUNCTIONS, "LeNet")

#: The names an assignment asks for (the grader's `--assignment`, the grading config's
#: `assignment`): d2l's chapter on convolutions in the textbook dialect with its LeNet, the
#: torch.nn.functional dialect, or every name.
ASSIGNMENTS = {
    "textbook": (*TEXTBOOK_FUNCTIONS, "batch_norm", "Conv2D", "BatchNorm", "LeNet"),
    "functional": ("batch_norm", *FUNCTIONAL_FUNCTIONS),
    "all": CONTRACT_NAMES,
}

#: Names whose one check trains a network (a `lenet` test): the grader runs that check only
#: when it grades one of them, and never the LeNet checks of other names' layers.
TRAINED_NAMES = ("LeNet",)

#: `batch_norm`'s dialect is named by its first parameter.
BATCH_NORM_DIALECTS = {"is_training": "d2l-1st", "X": "d2l-2nd", "input": "functional"}

#: Conventions of a course's notes an instructor may accept although the contract does not
#: (`--accept NAME`, the grading config's `accept`): reported as a `note:`, not a failure.
ACCEPTABLE_CONVENTIONS = {
    "moving-var-zeros": "BatchNorm's moving variance starts at zeros, as in the course's notes "
                        "(the contract says ones)",
}

ENV_VAR = "CONVCHECK_TARGET"
#: The kind of a target made of a live namespace (a notebook kernel's globals: properties.live).
LIVE_KIND = "live"
DEFAULT_SPEC = "reference"


class TargetLoadError(Exception):
    """The target cannot be loaded or breaks the contract's naming rules: a usage error.
    `kind` says what happened: 'error' (it raised, or breaks a rule), 'timeout' (loading
    did not return within the time limit) or 'crash' (the process loading it died)."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


def dialect_of(name: str, obj: Any = None) -> str:
    """'textbook', 'functional' or 'module'; for batch_norm one of BATCH_NORM_DIALECTS' values."""
    if name == "batch_norm":
        return batch_norm_dialect(obj)
    if name in TEXTBOOK_FUNCTIONS:
        return "textbook"
    if name in FUNCTIONAL_FUNCTIONS:
        return "functional"
    return "module"


def batch_norm_dialect(fn: Any) -> str:
    """Decide batch_norm's dialect from its first parameter's name."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError) as exc:
        raise TargetLoadError(f"batch_norm has no readable signature ({exc})") from None
    first = params[0] if params else "<none>"
    if first not in BATCH_NORM_DIALECTS:
        raise TargetLoadError(
            f"batch_norm's first parameter is {first!r}; the contract knows three forms: "
            "batch_norm(is_training, X, ...) (d2l 1st ed.), batch_norm(X, gamma, ...) "
            "(d2l 2nd ed.) and batch_norm(input, running_mean, ...) (functional)")
    return BATCH_NORM_DIALECTS[first]


def chosen_spec(option: str | None, environ: Mapping[str, str] = os.environ,
                ini: str | None = None) -> str | None:
    """`--target SPEC`, else $CONVCHECK_TARGET, else the ini option `convcheck_target`; None
    when none names a target (an empty value names nothing)."""
    return option or environ.get(ENV_VAR) or ini or None


def resolve_spec(option: str | None, environ: Mapping[str, str] = os.environ,
                 ini: str | None = None) -> str:
    """The chosen SPEC (`chosen_spec`), else 'reference'."""
    return chosen_spec(option, environ, ini) or DEFAULT_SPEC


@dataclass(frozen=True)
class SkippedCell:
    """A notebook cell that was not executed (mirrors properties.notebook.SkippedCell)."""
    index: int
    first_line: str
    reason: str


@dataclass
class LoadedTarget:
    """What loading a SPEC produced: the contract names it defines and where they came from."""
    spec: str
    kind: str                      # 'reference' | 'torch' | 'module' | 'file' | 'notebook'
    origin: str                    # module name or absolute path
    namespace: dict[str, Any]      # contract name -> object, defined names only
    dialects: dict[str, str]
    skipped_cells: tuple = ()
    load_output: str = ""          # what the target printed while loading
    import_line: str = ""          # how a snippet gets at the target's names

    @property
    def defined(self) -> list[str]:
        return [n for n in CONTRACT_NAMES if n in self.namespace]

    def describe(self) -> dict:
        """Everything but the namespace, as plain data (sent from an isolated worker)."""
        return {"spec": self.spec, "kind": self.kind, "origin": self.origin,
                "defined": self.defined, "dialects": dict(self.dialects),
                "skipped_cells": [(c.index, c.first_line, c.reason) for c in self.skipped_cells],
                "load_output": self.load_output[-2000:], "import_line": self.import_line}


def load(spec: str) -> LoadedTarget:
    """Load SPEC into a LoadedTarget, or raise TargetLoadError with one clear line."""
    kind = spec_kind(spec)
    if kind == "notebook":
        raw, origin, skipped, printed = _load_notebook(spec)
    elif kind == "file":
        raw, origin, printed = _load_file(spec)
        skipped = ()
    else:
        module = {"reference": "reference", "torch": "properties.torch_target"}.get(spec, spec)
        raw, origin, printed = _load_module(module)
        skipped = ()
    return from_namespace(raw, spec, kind, origin, skipped=tuple(skipped), load_output=printed)


def from_namespace(raw: Mapping[str, Any], spec: str, kind: str, origin: str, *,
                   skipped: tuple = (), load_output: str = "") -> LoadedTarget:
    """The target made of the contract names defined in `raw` (a loaded module's or
    notebook's namespace, or a live one: properties.live), each name's dialect decided
    (TargetLoadError for a batch_norm of no known dialect)."""
    namespace = {n: raw[n] for n in CONTRACT_NAMES if n in raw and raw[n] is not None}
    dialects = {n: dialect_of(n, obj) for n, obj in namespace.items()}
    return LoadedTarget(spec=spec, kind=kind, origin=origin, namespace=namespace,
                        dialects=dialects, skipped_cells=skipped, load_output=load_output,
                        import_line=_import_line(kind, origin))


def spec_kind(spec: str) -> str:
    if spec in ("reference", "torch"):
        return spec
    if spec.endswith(".ipynb"):
        return "notebook"
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        return "file"
    return "module"


def _import_line(kind: str, origin: str) -> str:
    """The import of a module target's names (file and notebook targets are loaded by path:
    see properties.snippets.standalone_import, which builds every replay snippet's import; a
    live namespace's snippets run where its names already are)."""
    return "" if kind in ("file", "notebook", LIVE_KIND) else f"from {origin} import *"


@contextlib.contextmanager
def _importable_folder(folder: Path):
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


@contextlib.contextmanager
def _captured_output():
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def _describe(exc: BaseException, path: str | None = None) -> str:
    """One line: the exception type, its message and, when known, the line in the target."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f" (line {exc.lineno})"
    elif path is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if os.path.abspath(f.filename) == os.path.abspath(path)]
        if frames:
            where = f" (line {frames[-1].lineno})"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def _load_module(name: str) -> tuple[dict, str, str]:
    with _captured_output() as out:
        try:
            module = importlib.import_module(name)
        except SystemExit as exc:
            raise TargetLoadError(
                f"module {name}: exited with status {exc.code} on import") from None
        except Exception as exc:  # noqa: BLE001 - any import failure is a usage error
            raise TargetLoadError(f"module {name}: {_describe(exc)}") from None
        names = {n: getattr(module, n, None) for n in CONTRACT_NAMES}
    return names, name, out.getvalue()


def _load_file(spec: str) -> tuple[dict, str, str]:
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise TargetLoadError(f"{spec}: no such file")
    module_name = f"convcheck_target_{abs(hash(str(path))):x}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    with _importable_folder(path.parent), _captured_output() as out:
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except SystemExit as exc:
            raise TargetLoadError(f"{spec}: exited with status {exc.code} while loading") from None
        except BaseException as exc:  # noqa: BLE001
            sys.modules.pop(module_name, None)
            raise TargetLoadError(f"{spec}: {_describe(exc, str(path))}") from None
    return vars(module), str(path), out.getvalue()


def _load_notebook(spec: str) -> tuple[dict, str, tuple, str]:
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise TargetLoadError(f"{spec}: no such file")
    from properties import notebook
    try:
        loaded = notebook.load_notebook(path)   # captures what the cells print
    except notebook.NotebookError as exc:
        raise TargetLoadError(str(exc)) from None
    skipped = tuple(SkippedCell(c.index, c.first_line, c.reason) for c in loaded.skipped)
    skipped += tuple(SkippedCell(c.index, c.first_line, f"left out of the cell: {c.reason}")
                     for c in loaded.dropped)
    return loaded.namespace, str(path), skipped, loaded.output
