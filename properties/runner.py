"""How the judge runs the target's code.

Every interaction with a target is a *task*: a module-level function `task(ns, *args)` that
receives the target's namespace (contract name -> object), computes, and returns plain data
(tensors, numbers, strings, tuples, lists, dicts). Judging never happens inside a task.

Two runners execute tasks:
- `InProcessRunner` calls the task directly, with the target's global side effects undone
  (default dtype, grad mode, threads, random states) and a time limit (SIGALRM).
- `WorkerRunner` loads the target in a separate process and sends it tasks by name. The target
  can then hang, crash, exhaust memory, exit, or monkeypatch torch/numpy/the suite without
  touching the judge: results come back through `torch.load(weights_only=True)`, which cannot
  run code, and the worker is killed and restarted when it misbehaves. The worker runs in a
  sandbox when one is asked for (properties.sandbox), with limits on its whole process tree.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np
import torch

from properties import proctree
from properties.proctree import TreeWatch
from properties.sandbox import Launch, Sandbox, with_limits

DEFAULT_TIMEOUT = 60.0


class TargetRaised(Exception):
    """The target raised an exception inside a task; `out_of_memory` when it was an
    allocation that failed (`out_of_memory`)."""

    def __init__(self, type_name: str, message: str, trace: str, out_of_memory: bool = False):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.trace = type_name, message, trace
        self.out_of_memory = out_of_memory


#: How torch's CPU allocator reports a failed allocation (a RuntimeError: c10's enforce
#: message names the allocator; CUDA's is the type torch.OutOfMemoryError).
TORCH_CPU_ALLOCATION_FAILURE = "DefaultCPUAllocator: can't allocate memory"


def out_of_memory(exc: BaseException) -> bool:
    """Whether an exception is a failed allocation: Python's MemoryError, torch's CUDA
    OutOfMemoryError, or torch's CPU allocator failing."""
    return isinstance(exc, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))) or \
        (isinstance(exc, RuntimeError) and TORCH_CPU_ALLOCATION_FAILURE in str(exc))


class TargetTimedOut(Exception):
    """The target did not return within the time limit."""


class TargetCrashed(Exception):
    """The worker process running the target died; `out_of_memory` when it was stopped for
    using more memory than it may."""

    def __init__(self, message: str, out_of_memory: bool = False):
        super().__init__(message)
        self.out_of_memory = out_of_memory


class TargetForbidden(Exception):
    """The target used an operation its assignment forbids (properties.forbidden)."""

    def __init__(self, operation: str, where: str):
        super().__init__(f"uses {operation}, which this assignment forbids")
        self.operation, self.where = operation, where


class _Alarm(BaseException):
    """Raised by SIGALRM inside the target; a BaseException so `except Exception` can't eat it."""


# --------------------------------------------------------------------------- global state

@contextlib.contextmanager
def guarded_global_state():
    """Restore torch/numpy/random global state that a target may change while it runs."""
    saved = (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(),
             torch.random.get_rng_state(), np.random.get_state(), random.getstate(),
             torch.are_deterministic_algorithms_enabled(), torch.is_inference_mode_enabled())
    try:
        yield
    finally:
        dtype, grad, threads, torch_rng, np_rng, py_rng, deterministic, inference = saved
        if torch.is_inference_mode_enabled() != inference:
            # The target entered (or left) inference mode without leaving it: a guard of the
            # saved mode, never left either, puts it back for the rest of the thread.
            torch.inference_mode(inference).__enter__()
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.random.set_rng_state(torch_rng)
        np.random.set_state(np_rng)
        random.setstate(py_rng)
        if torch.are_deterministic_algorithms_enabled() != deterministic:
            torch.use_deterministic_algorithms(deterministic)


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Interrupt the block after `seconds` (main thread of a Unix process only; else no limit)."""
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise _Alarm()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Alarm:
        raise TargetTimedOut(f"did not return within {seconds:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_guarded(task: Callable, namespace, args, seconds):
    with guarded_global_state(), time_limit(seconds):
        try:
            return task(namespace, *args)
        except (TargetTimedOut, _Alarm):
            raise
        except Exception as exc:  # noqa: BLE001 - the target's exception is data for the judge
            raise TargetRaised(type(exc).__name__, str(exc), _target_trace(exc),
                               out_of_memory(exc)) from exc


#: Where code that is not the target's lives: the suite, the standard library and installed
#: packages (torch's frames say nothing a student can act on).
_NOT_THE_TARGETS = tuple({os.path.dirname(os.path.abspath(__file__)),
                          *(sysconfig.get_paths()[key]
                            for key in ("stdlib", "platstdlib", "purelib", "platlib"))})


def _target_trace(exc: BaseException) -> str:
    """The last frame of the traceback in the target's own code (its file, or a notebook
    cell), else the last frame: where the student looks, without torch's internals."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not os.path.abspath(f.filename).startswith(_NOT_THE_TARGETS)]
    shown = (own or frames)[-1:]
    return "\n".join(f'File "{f.filename}", line {f.lineno}, in {f.name}'
                     + (f"\n    {f.line.strip()}" if f.line else "") for f in shown)


# --------------------------------------------------------------------------- runners

def _time_limit(timeout: float | None, at_least: float | None) -> float | None:
    """A task's time limit: the runner's (None: none), raised to `at_least` for a task that
    is many calls (training a network)."""
    return None if timeout is None else max(timeout, at_least or 0)


class InProcessRunner:
    """Runs tasks in this process; fast, with the target's side effects undone."""
    isolated = False

    def __init__(self, namespace: dict, timeout: float | None = DEFAULT_TIMEOUT):
        self.namespace, self.timeout = namespace, timeout

    def run(self, task: Callable, *args: Any, at_least: float | None = None) -> Any:
        return _run_guarded(task, self.namespace, args, _time_limit(self.timeout, at_least))

    def close(self) -> None:
        pass


class WorkerRunner:
    """Runs tasks in a worker process that loaded the target by its SPEC, started under
    `sandbox` (properties.sandbox: bubblewrap, a uid of its own, or none) with its limits, its
    whole process tree watched (properties.proctree) and ended with it."""
    isolated = True

    def __init__(self, spec: str, timeout: float | None = DEFAULT_TIMEOUT,
                 memory_limit_mb: int | None = None, sandbox: Sandbox | None = None):
        self.spec, self.timeout = spec, timeout
        self.sandbox = with_limits(sandbox or Sandbox(), memory_mb=memory_limit_mb)
        self._process = self._conn = self._launch = self._watch = None
        self._members: Callable[[], set[int]] | None = None

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> None:
        launch = Launch(self.sandbox, sys.executable, target=self.spec)
        judge_end, worker_end = socket.socketpair()
        try:
            self._process = subprocess.Popen(launch.argv, stdin=worker_end, env=launch.env,
                                             pass_fds=launch.pass_fds, close_fds=True)
        except OSError as exc:
            launch.cleanup()
            judge_end.close()
            raise TargetCrashed(f"the worker could not be started ({exc})") from None
        finally:
            worker_end.close()
            launch.started()
        self._launch = launch
        self._members = launch.members(self._process.pid)
        self._conn = Connection(judge_end.detach())
        self._conn.send_bytes(launch.settings_message())  # read by properties.sandbox_exec
        self._conn.send_bytes(pickle.dumps({
            "spec": self.spec, "path": [os.path.abspath(p) for p in sys.path],
            "cwd": os.getcwd(), "forbidden": self.sandbox.rules()}))
        self._watch = TreeWatch(self._members, self.sandbox.tree_limits()).start()
        reply = self._receive(timeout=max(self.timeout or 0, 120.0))
        if "loaded" not in reply:
            raise TargetCrashed(f"the worker could not load the target: {reply}")
        self.description = reply["loaded"]

    def describe(self) -> dict:
        """What the worker loaded: spec, kind, origin, defined names, dialects, skipped cells.

        Raises properties.contract.TargetLoadError when the target cannot be loaded."""
        if not self._alive():
            self._start()
        return self.description

    def run(self, task: Callable, *args: Any, at_least: float | None = None) -> Any:
        if not self._alive():
            self._start()
        self._conn.send_bytes(pickle.dumps((task.__module__, task.__qualname__, args)))
        reply = self._receive(timeout=_time_limit(self.timeout, at_least))
        if "raised" in reply:
            raise TargetRaised(*reply["raised"])
        if "forbidden" in reply:
            raise TargetForbidden(*reply["forbidden"])
        return reply["ok"]

    def _receive(self, timeout: float | None) -> Any:
        if not self._conn.poll(timeout):
            self.close()
            raise TargetTimedOut(f"did not return within {timeout:g} s")
        try:
            payload = self._conn.recv_bytes()
        except (EOFError, OSError):
            try:
                code = self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            stopped = self._watch.exceeded if self._watch else None
            out_of_memory = self._watch is not None and self._watch.exceeded_limit == "memory"
            self.close()
            if stopped:
                raise TargetCrashed(f"the process running the target was stopped: "
                                    f"{stopped}",
                                    out_of_memory) from None
            raise TargetCrashed(f"the process running the target died (exit code {code})") \
                from None
        if payload.startswith(b"load-error:"):
            from properties.contract import TargetLoadError
            self.close()
            raise TargetLoadError(payload[len(b"load-error:"):].decode(errors="replace"))
        return torch.load(io.BytesIO(payload), weights_only=True)

    def close(self) -> None:
        """End the worker and every process it started, and remove its scratch folder."""
        if self._watch is not None:
            self._watch.stop()
        if self._members is not None:
            proctree.kill(self._members)
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._conn is not None:
            self._conn.close()
        if self._launch is not None:
            self._launch.cleanup()
        self._process = self._conn = self._launch = self._watch = self._members = None


def worker_main() -> None:
    """The worker process's entry (properties.sandbox.WORKER_CODE): its connection to the judge
    is its standard input; the first message names the target."""
    conn = Connection(os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    setup = pickle.loads(conn.recv_bytes())
    sys.path[:] = setup["path"]  # what the judge imports from, as a spawned process would
    _worker_main(conn, setup["spec"], setup["cwd"], setup.get("forbidden") or {})


def _worker_main(conn, spec: str, cwd: str, forbidden: dict) -> None:
    """The worker's loop: load the target (a path relative to the judge's folder `cwd`), its
    names that have forbidden operations guarded (properties.forbidden), then run tasks until
    the connection closes."""
    from properties.contract import TargetLoadError, load, spec_kind
    from properties.forbidden import ForbiddenOperation, Guard
    guard = Guard(forbidden)
    guard.install()  # before the target imports what it forbids
    path = os.path.join(cwd, spec) if spec_kind(spec) in ("file", "notebook") else spec
    try:
        loaded = load(path)
    except TargetLoadError as exc:
        conn.send_bytes(b"load-error:" + str(exc).replace(path, spec).encode())
        return
    namespace = guard.wrap(loaded.namespace)
    buffer = io.BytesIO()
    torch.save({"loaded": {**loaded.describe(), "spec": spec}}, buffer)
    conn.send_bytes(buffer.getvalue())
    while True:
        try:
            module, qualname, args = pickle.loads(conn.recv_bytes())
        except EOFError:
            return
        task = importlib.import_module(module)
        for part in qualname.split("."):
            task = getattr(task, part)
        try:
            reply = {"ok": _run_guarded(task, namespace, args, None)}
        except TargetRaised as exc:
            reply = {"raised": (exc.type_name, exc.message, exc.trace, exc.out_of_memory)}
        except ForbiddenOperation as exc:
            reply = {"forbidden": (exc.operation, exc.where)}
        buffer = io.BytesIO()
        try:
            torch.save(reply, buffer)
        except Exception as exc:  # noqa: BLE001 - an unsendable result is the target's fault
            buffer = io.BytesIO()
            torch.save({"raised": ("TypeError", f"returned something that is not a tensor or "
                                   f"number: {exc}", "")}, buffer)
        conn.send_bytes(buffer.getvalue())
