"""Where the target's worker process runs: in a sandbox when one is available.

`Sandbox.mode` is one of

bwrap  bubblewrap (Debian package `bubblewrap`): new PID, network, IPC, UTS and cgroup
       namespaces; the whole filesystem read-only; /tmp an empty tmpfs of `disk_mb` (the
       worker's scratch folder, working folder and home) and /dev/shm one of SHM_MB; the paths
       in `hide` covered by empty read-only folders; a new session; killed with its parent.
       Started by root, bubblewrap mounts as root and the worker then drops to a uid of its own
       that no account uses, with the folders it needs but could not enter (a Python installed
       under /root, say) mounted where it can. Started by anyone else, a user namespace maps the
       worker to the caller's uid: it reads what the caller may read and writes nothing outside
       its tmpfs.
uid    root without namespaces (a container without CAP_SYS_ADMIN): the worker drops to a uid
       of its own, in a private scratch folder. It can still write world-writable folders
       (/tmp, /dev/shm), each file at most `file_mb`.
none   no sandbox: the worker runs as the caller, in a scratch folder of its own.

In every mode the worker's environment is the same small set of variables (`environment`),
its working folder is its scratch folder, and its limits are set by properties.sandbox_exec
before it starts: address space per process (`memory_mb`), processes (RLIMIT_NPROC, counted per
uid: exact for a uid of its own, and per user namespace under bubblewrap; not set in `none`,
where it would count the caller's other processes), file size, no core files. The whole tree's
memory, CPU time and process count are watched from outside (properties.proctree).

`choose("auto")` picks the strongest mode that works here, with the reasons the others do not.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from properties import proctree

MODES = ("bwrap", "uid", "none")
#: The worker's uid when root starts it: one of these, which no account uses.
UID_RANGE = (2_100_000_000, 2_100_999_999)
#: The uid a user namespace shows the worker (nobody) when a non-root user starts bubblewrap.
NOBODY = 65534
DEFAULT_PROCESSES = 64
DEFAULT_DISK_MB = 256
DEFAULT_FILE_MB = 256
SHM_MB = 16
LAUNCHER = Path(__file__).resolve().with_name("sandbox_exec.py")
#: The folder `properties` and `reference` are imported from (the worker imports the same).
SUITE_ROOT = Path(__file__).resolve().parent.parent
#: Variables a worker inherits when they are set; every other one is dropped.
PASSED_VARIABLES = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ",
                    "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH")
#: How the worker starts (after sandbox_exec): the same command in every run.
WORKER_CODE = "import properties.runner as runner; runner.worker_main()"


class SandboxError(Exception):
    """The requested sandbox cannot be used here (one line saying why)."""


@dataclass(frozen=True)
class Sandbox:
    """How one target's worker is confined (see the module docstring)."""
    mode: str = "none"
    hide: tuple[str, ...] = ()            # paths the worker must not see (bwrap)
    memory_mb: int | None = None          # per process (address space) and the whole tree
    processes: int | None = DEFAULT_PROCESSES
    cpu_seconds: float | None = None      # the whole tree
    disk_mb: int = DEFAULT_DISK_MB        # the scratch tmpfs (bwrap)
    file_mb: int = DEFAULT_FILE_MB        # largest file
    #: Operations each contract name may not use: ((name, operation), ...), properties.forbidden
    forbidden: tuple[tuple[str, str], ...] = ()

    def rules(self) -> dict[str, tuple[str, ...]]:
        """The forbidden operations by contract name."""
        found: dict[str, tuple[str, ...]] = {}
        for name, operation in self.forbidden:
            found[name] = (*found.get(name, ()), operation)
        return found

    def __post_init__(self):
        if self.mode not in MODES:
            raise SandboxError(f"unknown sandbox {self.mode!r}; known: {', '.join(MODES)}")

    def tree_limits(self) -> proctree.TreeLimits:
        """What properties.proctree watches. The number of processes only without a sandbox:
        in one, RLIMIT_NPROC counts them exactly (threads too), and the sandbox's own
        processes do not count."""
        return proctree.TreeLimits(
            memory_bytes=self.memory_mb * 2**20 if self.memory_mb else None,
            cpu_seconds=self.cpu_seconds,
            processes=self.processes if self.mode == "none" else None)


# --------------------------------------------------------------------------- choosing

def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


#: What `problem` runs in a sandbox: the interpreter starts, the suite and torch are found.
PROBE_CODE = ("import importlib.util, properties.sandbox; "
              "assert importlib.util.find_spec('torch'), 'torch cannot be found'")


def problem(mode: str, python: str = sys.executable) -> str | None:
    """Why `mode` cannot run a worker here, or None when it can (tried for real: a sandboxed
    interpreter that finds the suite and torch)."""
    if mode == "none":
        return None
    if not proctree.available():
        return "this system has no /proc (not Linux)"
    if mode == "bwrap" and shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    if mode == "uid" and not _is_root():
        return "dropping to another uid needs root"
    launch = Launch(Sandbox(mode=mode), python, code=PROBE_CODE)
    try:
        message = launch.settings_message()
        frame = len(message).to_bytes(4, "big", signed=True) + message  # a Connection's framing
        done = subprocess.run(launch.argv, input=frame, env=launch.env,
                              pass_fds=launch.pass_fds, capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{mode} does not start ({exc})"
    finally:
        launch.cleanup()
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {done.returncode}"
        return f"a worker under {mode} does not start here: {why[:200]}"
    return None


def choose(requested: str, python: str = sys.executable) -> tuple[str, list[str]]:
    """The mode to use for `requested` (`auto`, or one of MODES) and, for `auto`, why each
    stronger mode was passed over (`auto` tries each: seconds). A named mode is taken as it
    is: a worker that then cannot start says why."""
    if requested != "auto":
        if requested not in MODES:
            raise SandboxError(f"unknown sandbox {requested!r}; known: auto, "
                               f"{', '.join(MODES)}")
        return requested, []
    reasons = []
    for mode in ("bwrap", "uid"):
        why = problem(mode, python)
        if why is None:
            return mode, reasons
        reasons.append(why)
    return "none", reasons


# --------------------------------------------------------------------------- starting

def environment(scratch: str) -> dict[str, str]:
    """The worker's environment: the same variables in every run, graded or not."""
    env = {k: os.environ[k] for k in PASSED_VARIABLES if k in os.environ}
    env.update(HOME=scratch, TMPDIR=scratch, PWD=scratch, PYTHONPATH=str(SUITE_ROOT),
               PYTHONSAFEPATH="1", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


def free_uid() -> int:
    """A uid in UID_RANGE that no process uses now."""
    while True:
        uid = random.SystemRandom().randint(*UID_RANGE)
        if not proctree.owned_by(uid):
            return uid


def _blocked_at(path: Path) -> Path | None:
    """The first folder on the way to `path` (itself included) that a user without privileges
    cannot enter, or None."""
    current = Path(path.anchor)
    for part in (None, *path.parts[1:]):
        if part is not None:
            current = current / part
        try:
            mode = current.stat().st_mode
        except OSError:
            return None
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
    return None


def _open_to_all(path: Path) -> bool:
    """A folder anyone may enter, or a file anyone may read."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def needed_paths(target: str | None) -> list[Path]:
    """What the worker must be able to read: the interpreter, its libraries, the suite, and
    the target's folder."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix),
             Path(os.path.realpath(sys.executable)).parent, SUITE_ROOT]
    paths += [Path(p) for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]
    if target and (target.endswith((".py", ".ipynb")) or os.sep in target):
        file = Path(os.path.abspath(target))
        paths += [file.parent, file]  # the file alone when its folder cannot be mounted (/tmp)
    return sorted({Path(os.path.realpath(p)) for p in paths}, key=lambda p: (len(p.parts), p))


def bwrap_arguments(sandbox: Sandbox, needed: list[Path], root: bool) -> list[str]:
    """bubblewrap's options (everything before the command)."""
    def size(mb: int) -> str:
        return str(mb * 2**20)
    args = ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", size(SHM_MB), "--tmpfs", "/dev/shm",
            "--remount-ro", "/dev",
            "--perms", "1777", "--size", size(sandbox.disk_mb), "--tmpfs", "/tmp"]
    covers = [Path(os.path.realpath(p)) for p in sandbox.hide if os.path.exists(p)]
    if root:
        covers += [b for b in (_blocked_at(p) for p in needed) if b is not None]
    fresh = [Path("/tmp")]
    covers = sorted({c for c in covers if not any(_within(c, f) for f in fresh)},
                    key=lambda p: len(p.parts))
    covers = [c for i, c in enumerate(covers) if not any(_within(c, o) for o in covers[:i])]
    for cover in covers:
        args += ["--perms", "0755", "--tmpfs", str(cover)]
    hidden = fresh + covers
    bound: list[Path] = []
    made: set[Path] = set()
    for path in needed:
        cover = max((h for h in hidden if _within(path, h) and h != path),
                    key=lambda h: len(h.parts), default=None)
        if cover is None or any(_within(path, b) and _within(b, cover) for b in bound):
            continue
        if root and not _open_to_all(path):  # mounting it would not let the worker in
            continue
        for folder in reversed(path.parents):  # bubblewrap would make them private (0700)
            if cover in folder.parents and folder not in made:
                args += ["--perms", "0755", "--dir", str(folder)]
                made.add(folder)
        args += ["--ro-bind", str(path), str(path)]
        bound.append(path)
    for cover in covers:
        args += ["--remount-ro", str(cover)]
    args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--chdir", "/tmp"]
    if root:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    return args


class Launch:
    """Everything needed to start one worker under `sandbox` (see the module docstring):
    `argv`, `env`, `pass_fds`, then `settings_message()` sent first on the worker's connection,
    `members(pid)` naming the started tree, and `cleanup()` once it is over."""

    def __init__(self, sandbox: Sandbox, python: str = sys.executable,
                 target: str | None = None, code: str = WORKER_CODE):
        self.sandbox = sandbox
        root = _is_root()
        self.uid = free_uid() if sandbox.mode in ("bwrap", "uid") and root else None
        self.scratch_dir: str | None = None
        if sandbox.mode == "bwrap":
            scratch = "/tmp"
        else:
            self.scratch_dir = tempfile.mkdtemp(prefix="convcheck-worker-")
            if self.uid is not None:
                os.chown(self.scratch_dir, self.uid, self.uid)
            scratch = self.scratch_dir
        self.env = environment(scratch)
        command = [python, "-I", "-S", str(LAUNCHER), python, "-P", "-c", code]
        self.pass_fds: tuple[int, ...] = ()
        self._args_fd: int | None = None
        if sandbox.mode == "bwrap":
            # The options go through a pipe (--args) so that the sandbox's process 1 shows the
            # same command line in every run.
            options = bwrap_arguments(sandbox, needed_paths(target), root=self.uid is not None)
            read, write = os.pipe()
            os.write(write, b"".join(o.encode() + b"\0" for o in options))
            os.close(write)
            self._args_fd = read
            self.pass_fds = (read,)
            command = [shutil.which("bwrap") or "bwrap", "--args", str(read), "--", *command]
        self.argv = command
        rlimits = {"FSIZE": sandbox.file_mb * 2**20, "CORE": 0}
        if sandbox.memory_mb:
            rlimits["AS"] = sandbox.memory_mb * 2**20
        if sandbox.processes and sandbox.mode != "none":
            rlimits["NPROC"] = sandbox.processes
        self.settings = {"uid": self.uid, "rlimits": rlimits,
                         "session": sandbox.mode != "bwrap",
                         "scratch": None if sandbox.mode == "bwrap" else scratch}

    def settings_message(self) -> bytes:
        """The launcher's settings (properties.sandbox_exec), the first message on the
        worker's connection."""
        return json.dumps(self.settings).encode()

    def started(self) -> None:
        """The worker process exists: the parent's copy of the options pipe can go."""
        if self._args_fd is not None:
            os.close(self._args_fd)
            self._args_fd = None

    def members(self, pid: int) -> Callable[[], set[int]]:
        """The processes of the tree started as `pid`."""
        if self.uid is not None and self.sandbox.mode == "uid":
            uid = self.uid
            return lambda: proctree.owned_by(uid)
        return lambda: proctree.descendants(pid)

    def cleanup(self) -> None:
        self.started()
        if self.scratch_dir:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            self.scratch_dir = None


def with_limits(sandbox: Sandbox, **limits) -> Sandbox:
    """`sandbox` with the given limits replaced (None values leave a limit as it is)."""
    return replace(sandbox, **{k: v for k, v in limits.items() if v is not None})
