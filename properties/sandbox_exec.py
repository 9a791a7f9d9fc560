"""The first program of a target's worker, inside its sandbox: set the process up, then become
the worker.

Run as `python -I -S sandbox_exec.py PROGRAM [ARG ...]` by properties.sandbox, with the worker's
connection to the judge on standard input. It reads one message from that connection (the
framing of multiprocessing.connection: a 4-byte big-endian length, then the bytes), a JSON
object:

    {"uid": 2100000017 | null,      drop to this uid and gid (root only), no supplementary groups
     "rlimits": {"AS": bytes, "NPROC": n, "FSIZE": bytes, "CORE": 0, "CPU": seconds},
     "session": true,               start a new session (no controlling terminal)
     "scratch": "/path" | null}     the working folder (created by the judge)

then sets PR_SET_NO_NEW_PRIVS (no setuid program can give privileges back) and a parent-death
signal, and executes PROGRAM, which inherits the connection. The settings travel through the
connection rather than the command line so that the command line is the same in every run.

Standard library only, and no import of the suite: it runs before anything else can.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import struct
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
RLIMITS = {"AS": resource.RLIMIT_AS, "NPROC": resource.RLIMIT_NPROC,
           "FSIZE": resource.RLIMIT_FSIZE, "CORE": resource.RLIMIT_CORE,
           "CPU": resource.RLIMIT_CPU}


def read_message(fd: int) -> bytes:
    """One message in multiprocessing.connection's framing, read from `fd`."""
    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = os.read(fd, count - len(data))
            if not chunk:
                raise SystemExit("sandbox_exec: the judge closed the connection")
            data += chunk
        return data
    (size,) = struct.unpack("!i", exactly(4))
    return exactly(size)


def prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def apply(settings: dict) -> None:
    """Become what `settings` says (see the module docstring)."""
    for name, value in settings.get("rlimits", {}).items():
        resource.setrlimit(RLIMITS[name], (int(value), int(value)))
    if settings.get("session"):
        os.setsid()
    uid = settings.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise SystemExit("sandbox_exec: could not drop privileges")
    os.umask(0o077)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    parent = os.getppid()
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if settings.get("scratch"):
        os.chdir(settings["scratch"])


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: sandbox_exec.py PROGRAM [ARG ...]")
    settings = json.loads(read_message(0))
    apply(settings)
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        who = "an unprivileged uid" if settings.get("uid") is not None else "this user"
        raise SystemExit(f"sandbox_exec: {argv[0]} cannot be run by {who} "
                         f"({exc.strerror}): the Python installation must be readable by "
                         "every user") from None


if __name__ == "__main__":
    main(sys.argv[1:])
