"""Reading and writing files a submission might have replaced, without being steered by it.

A path the grader reads after a run (the report, the run's record, a watched file) could have
been replaced by a symlink (to read something else), a FIFO (opening it for reading blocks
until someone writes: the whole grading would hang), a device or a huge file. `read_regular`
opens with O_NOFOLLOW and O_NONBLOCK, checks that what it opened is a regular file (and, when
asked, that the grader's own uid owns it), and reads at most `limit` bytes. `create_new`
creates a file that did not exist (O_EXCL), so a planted symlink or FIFO is refused.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeFile(Exception):
    """The path is not a regular file the grader may trust (one line saying what it is)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | os.PathLike, limit: int, *, own: bool = False) -> bytes | None:
    """The file's first `limit` + 1 bytes (a caller seeing more than `limit` knows it is too
    big); None when there is no such file. Raises UnsafeFile for anything but a regular file
    (or, with `own`, one the grader's uid does not own)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise UnsafeFile(f"cannot be opened ({exc.strerror})") from None
        raise UnsafeFile(f"is {_kind(mode)}" if not stat.S_ISREG(mode) else
                         f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"is {_kind(info.st_mode)}")
        if own and hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise UnsafeFile("belongs to another user")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def create_new(path: str | os.PathLike, mode: int = 0o600):
    """A binary file object for writing a file that did not exist (no symlink or FIFO planted
    in its place can be followed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode)
    return os.fdopen(fd, "wb")


def append_regular(path: str | os.PathLike, data: bytes) -> None:
    """Append `data` to a regular file (created 0600 if missing) and flush it to disk; raises
    UnsafeFile when something else sits at `path`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UnsafeFile(f"cannot be written ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"is {_kind(info.st_mode)}")
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Remove whatever is at `path` (a file, a symlink, a FIFO, a folder) without opening it."""
    import shutil
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
