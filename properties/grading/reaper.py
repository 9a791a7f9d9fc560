"""Processes a run leaves behind: adopted, found and ended, so that nothing outlives a grading.

The grader, and every judge it starts, make themselves child subreapers (Linux,
PR_SET_CHILD_SUBREAPER): a process that leaves its run — a new session, a double fork, a parent
that exits — is adopted by its judge while the judge lives and by the grader once the judge
has exited, never by init, where nobody would look for it. The grader's children that are not
processes it started itself (`own`) are therefore what finished runs left behind: `end_orphans`
kills them, with everything they started, and reaps them. (Under bubblewrap a run's processes
all live in its PID namespace and end with it; this is the backstop for the other modes.)
"""
from __future__ import annotations

import ctypes
import os

from properties import proctree

PR_SET_CHILD_SUBREAPER = 36
_own: set[int] = set()


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants; False where the system cannot."""
    if not proctree.available():
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def own(pid: int) -> None:
    """`pid` is a process this grader started on purpose (a judge, the catalog probe)."""
    _own.add(pid)


def disown(pid: int) -> None:
    _own.discard(pid)


def orphans() -> set[int]:
    """This process's children that it did not start: adopted leftovers of finished runs."""
    me = os.getpid()
    return {pid for pid, parent in proctree.parents().items()
            if parent == me and pid not in _own}


def _left_behind() -> set[int]:
    found: set[int] = set()
    for pid in orphans():
        found |= proctree.descendants(pid)
    return found


def reap() -> None:
    """Collect the exit status of adopted children that have ended (zombies), which nobody
    else will."""
    me = os.getpid()
    for pid, parent in proctree.parents(zombies=True).items():
        if parent == me and pid not in _own:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def end_orphans() -> int:
    """Kill every adopted leftover that still runs and what it started, reap them all; how
    many were running."""
    count = proctree.kill(_left_behind)
    reap()
    return count
