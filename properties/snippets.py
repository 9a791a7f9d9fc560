"""Tensors and calls written as runnable Python, so a failing input can be replayed by hand."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

#: The project's root: a replay snippet of a notebook (or of `reference`/`torch`) imports from it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_DTYPE_NAMES = {torch.float16: "torch.float16", torch.bfloat16: "torch.bfloat16",
                torch.float32: "torch.float32", torch.float64: "torch.float64",
                torch.int64: "torch.int64", torch.int32: "torch.int32", torch.bool: "torch.bool"}


def number_literal(value: float, dtype: torch.dtype = torch.float64) -> str:
    """The shortest literal that rounds back to `value` in `dtype`."""
    if isinstance(value, bool) or dtype == torch.bool:
        return repr(bool(value))
    if not dtype.is_floating_point:
        return repr(int(value))
    if math.isnan(value):
        return "float('nan')"
    if math.isinf(value):
        return "float('inf')" if value > 0 else "float('-inf')"
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        text = str(np.float32(value)) if dtype == torch.float32 else repr(float(value))
    else:
        text = repr(float(value))
    return text


def _nested(values: Any, dtype: torch.dtype) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v, dtype) for v in values) + "]"
    return number_literal(values, dtype)


def tensor_literal(t: torch.Tensor) -> str:
    """`torch.tensor([...], dtype=...)`, reproducing non-contiguous strides when present."""
    t = t.detach()
    dtype = _DTYPE_NAMES.get(t.dtype, str(t.dtype))
    body = f"torch.tensor({_nested(t.cpu().tolist(), t.dtype)}, dtype={dtype})"
    if t.dim() > 1 and not t.is_contiguous():
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
            return f"{body}.contiguous(memory_format=torch.channels_last)"
        return (f"torch.empty_strided({tuple(t.shape)}, {tuple(t.stride())}, dtype={dtype})"
                f".copy_({body})")
    return body


def value_literal(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return tensor_literal(value)
    if isinstance(value, np.ndarray):
        return f"numpy.array({tensor_literal(torch.from_numpy(value))[len('torch.tensor('):-1]})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(value_literal(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    return repr(value)


def describe_value(value: Any) -> str:
    """A short description: dtype and shape for tensors, the value otherwise."""
    if isinstance(value, torch.Tensor):
        layout = ""
        if value.dim() > 1 and not value.is_contiguous():
            layout = (" channels_last" if value.dim() == 4
                      and value.is_contiguous(memory_format=torch.channels_last)
                      else " non-contiguous")
        dtype = str(value.dtype).replace("torch.", "")
        return f"{dtype} {tuple(value.shape)}{layout}"
    if isinstance(value, np.ndarray):
        return f"numpy {value.dtype} {value.shape}"
    return repr(value)


def describe_call(name: str, arg_names: Sequence[str], args: Sequence[Any],
                  kwargs: dict[str, Any]) -> str:
    """`corr2d(X: float64 (3, 3), K: float64 (2, 2))`."""
    parts = [f"{n}: {describe_value(v)}" if isinstance(v, (torch.Tensor, np.ndarray))
             else f"{n}={describe_value(v)}" for n, v in zip(arg_names, args)]
    parts += [f"{k}: {describe_value(v)}" if isinstance(v, torch.Tensor)
              else f"{k}={describe_value(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class Script:
    """A replay script built line by line: the import of the target's names, tensors bound to
    names as literals, calls, prints. `text()` is a program that runs on its own."""

    def __init__(self, import_line: str = ""):
        self.lines = ["import torch", *([import_line] if import_line else [])]

    def add(self, *lines: str) -> "Script":
        self.lines.extend(lines)
        return self

    def let(self, name: str, value: Any) -> str:
        """`name = <literal of value>`; returns `name`."""
        self.lines.append(f"{name} = {value_literal(value)}")
        return name

    def call(self, fn: str, arg_names: Sequence[str], args: Sequence[Any],
             kwargs: dict[str, Any]) -> str:
        """The expression calling `fn`, each tensor argument first bound to its name."""
        call_args = []
        for arg_name, value in zip(arg_names, args):
            if isinstance(value, (torch.Tensor, np.ndarray)):
                call_args.append(self.let(arg_name, value))
            else:
                call_args.append(repr(value))
        for key, value in kwargs.items():
            if isinstance(value, torch.Tensor):
                call_args.append(f"{key}={self.let(key, value)}")
            else:
                call_args.append(f"{key}={value!r}")
        return f"{fn}({', '.join(call_args)})"

    def show(self, expression: str, label: str | None = None) -> "Script":
        """Print `expression` (after `label`, when given)."""
        return self.add(f"print({label!r}, {expression})" if label else f"print({expression})")

    def text(self) -> str:
        return "\n".join(self.lines)


def call_snippet(name: str, arg_names: Sequence[str], args: Sequence[Any],
                 kwargs: dict[str, Any], import_line: str, *, no_grad: bool = False) -> str:
    """A runnable script: the import, each tensor argument bound to its name, the call
    (under torch.no_grad() when asked) as `got`, printed."""
    script = Script(import_line)
    call = script.call(name, arg_names, args, kwargs)
    if no_grad:
        script.add("with torch.no_grad():", f"    got = {call}")
    else:
        script.add(f"got = {call}")
    return script.show("got", "got:").text()


def standalone_import(kind: str, origin: str, import_line: str) -> str:
    """Lines giving a replay snippet the target's names, wherever the snippet is run.

    A file or a notebook is found beside the script first (a student saves the script next
    to their submission: `Path(__file__).parent / NAME`), else in the current folder, else
    at the path the suite loaded it from; so a feedback file's script runs in the student's
    folder and the terminal's from anywhere. Both loaders need nothing but the standard
    library: a file is executed as a module with its folder importable; of a notebook, the
    imports, functions, classes and plain assignments of each code cell are executed (a cell
    that fails is passed over). `reference` and `torch` import convcheck's own modules (by
    the project's path); a dotted module keeps `import_line`."""
    if kind in ("file", "notebook"):
        path = Path(origin)
        find = [
            "import json, pathlib, sys",
            f"_name, _known = {path.name!r}, pathlib.Path({str(path)!r})",
            "_here = pathlib.Path(__file__).resolve().parent if '__file__' in globals() "
            "else pathlib.Path.cwd()",
            "_path = next((p for p in (_here / _name, pathlib.Path.cwd() / _name, _known) "
            "if p.is_file()), _known)",
            "sys.path.insert(0, str(_path.parent))"]
        if kind == "file":
            return "\n".join([*find, "import importlib.util",
                              "_spec = importlib.util.spec_from_file_location('submission', _path)",
                              "_module = importlib.util.module_from_spec(_spec)",
                              "_spec.loader.exec_module(_module)",
                              "globals().update({k: v for k, v in vars(_module).items() "
                              "if not k.startswith('__')})"])
        return "\n".join([*find, "import ast, types",
                          "try:",
                          "    import d2l",
                          "except ImportError:  # d2l.NAME is the notebook's own NAME",
                          "    class _D2l(types.ModuleType):",
                          "        def __getattr__(self, name):",
                          "            if name == 'torch':",
                          "                return self",
                          "            return globals()[name] if name in globals() else "
                          "getattr(__import__('torch'), name)",
                          "    sys.modules['d2l'] = sys.modules['d2l.torch'] = _D2l('d2l')",
                          "_kept = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, "
                          "ast.Assign, ast.AnnAssign)",
                          "_defined = set()  # a def or class is not rebound by a later "
                          "assignment (pool2d = nn.MaxPool2d(3) in the chapter)",
                          "for _cell in json.loads(_path.read_text())['cells']:",
                          "    _lines = ''.join(_cell['source']).splitlines()",
                          "    _code = '\\n'.join(l for l in _lines if not l.lstrip()"
                          ".startswith(('%', '!')))",
                          "    try:",
                          "        _nodes = ast.parse(_code).body if _cell['cell_type'] == 'code' "
                          "else []",
                          "    except SyntaxError:",
                          "        _nodes = []",
                          "    for _node in (n for n in _nodes if isinstance(n, _kept)):",
                          "        _targets = _node.targets if isinstance(_node, ast.Assign) else "
                          "[getattr(_node, 'target', None)]",
                          "        if any(isinstance(t, ast.Name) and t.id in _defined "
                          "for t in _targets):",
                          "            continue",
                          "        if isinstance(_node, (ast.FunctionDef, ast.ClassDef)):",
                          "            _defined.add(_node.name)",
                          "        try:  # definitions only: what trains, plots or downloads is "
                          "left out",
                          "            exec(compile(ast.Module([_node], []), str(_path), 'exec'), "
                          "globals())",
                          "        except Exception:",
                          "            pass"])
    project = [f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})  # convcheck"]
    if kind in ("reference", "torch"):
        return "\n".join([*project, import_line])
    return import_line
