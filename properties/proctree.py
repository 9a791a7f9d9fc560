"""The processes of a worker's tree, read from /proc (Linux): which they are, what they use
together, and ending them all.

A tree is named by a `members()` function: the descendants of one process (a bubblewrap
sandbox: every process in its PID namespace descends from it, however it detached), or every
process of one uid (a worker that runs under a uid of its own). `TreeWatch` samples a tree a few
times a second and ends it when its processes together pass a limit that no single-process
limit can enforce: memory held by many processes at once, CPU time spent by many at once,
too many processes.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

PROC = "/proc"
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return os.path.isdir(os.path.join(PROC, "self"))


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].decode().split()


def parents(zombies: bool = False) -> dict[int, int]:
    """Every visible process's parent: {pid: ppid}. Zombies (processes that have ended and
    wait to be reaped: nothing runs, nothing can be killed) only when asked for."""
    found = {}
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields and (zombies or fields[0] not in ("Z", "X")):
            found[pid] = int(fields[1])
    return found


def descendants(root: int) -> set[int]:
    """`root` and every process below it, zombies left out (an empty set when `root` is
    gone)."""
    children: dict[int, list[int]] = {}
    table = parents()
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    if root not in table:
        return set()
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def owned_by(uid: int) -> set[int]:
    """Every process (not a zombie) whose real uid is `uid`."""
    found = set()
    for pid in _pids():
        try:
            with open(f"{PROC}/{pid}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"State:") and line.split()[1] in (b"Z", b"X"):
                        break
                    if line.startswith(b"Uid:"):
                        if int(line.split()[1]) == uid:
                            found.add(pid)
                        break
        except (OSError, ValueError, IndexError):
            continue
    return found


def memory_bytes(pid: int) -> int:
    """The process's proportional set size (shared pages split among their users), else its
    resident set size; 0 when it is gone."""
    try:
        with open(f"{PROC}/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{PROC}/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used itself (user and system; its children's are their own)."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 13:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def kill(members: Callable[[], set[int]], rounds: int = 50) -> int:
    """SIGKILL every member until none is left (a process forking while it is killed is caught
    by a later round); how many distinct processes were killed."""
    killed: set[int] = set()
    for _ in range(rounds):
        alive = members()
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return len(killed)


@dataclass(frozen=True)
class TreeLimits:
    memory_bytes: int | None = None
    cpu_seconds: float | None = None
    processes: int | None = None


class TreeWatch:
    """A daemon thread that ends a tree when its processes together pass a limit.

    `exceeded` then says which limit, in words for a student ("its processes together used
    more than 3072 MB of memory"), and `exceeded_limit` which one, as data ("memory",
    "processes" or "cpu")."""

    INTERVAL = 0.5

    def __init__(self, members: Callable[[], set[int]], limits: TreeLimits):
        self.members, self.limits = members, limits
        self.exceeded: str | None = None
        self.exceeded_limit: str | None = None
        self._stop = threading.Event()
        self._seen_cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, name="convcheck-tree-watch",
                                        daemon=True)

    def start(self) -> "TreeWatch":
        if any(v is not None for v in vars(self.limits).values()) and available():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def check(self) -> tuple[str, str] | None:
        """One sample: (the limit the tree is past, in words), or None."""
        pids = self.members()
        limits = self.limits
        if limits.processes is not None and len(pids) > limits.processes:
            return "processes", f"started more than {limits.processes} processes"
        if limits.memory_bytes is not None:
            used = sum(memory_bytes(pid) for pid in pids)
            if used > limits.memory_bytes:
                return "memory", (f"its processes together used more than "
                                  f"{limits.memory_bytes / 2**20:.0f} MB of memory")
        if limits.cpu_seconds is not None:
            for pid in pids:  # a process that ended keeps what it had used
                self._seen_cpu[pid] = max(self._seen_cpu.get(pid, 0.0), cpu_seconds(pid))
            if sum(self._seen_cpu.values()) > limits.cpu_seconds:
                return "cpu", (f"its processes together used more than "
                               f"{limits.cpu_seconds:g} s of CPU time")
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            found = self.check()
            if found is not None:
                self.exceeded_limit, self.exceeded = found
                kill(self.members)
                return
