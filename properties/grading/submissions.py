"""Which files are graded: SUBMISSION arguments (files, notebooks, folders) -> one row each.

A `.py` file or an `.ipynb` notebook is one submission. A folder stands for every `.py` and
`.ipynb` file under it (recursively), one row per file; hidden files and folders, `__init__.py`,
`__pycache__` and `.ipynb_checkpoints` are left out. A row's identifier is the file's path
relative to the deepest folder holding every submission (a single file: its name), so grading
`submissions/` names rows `alice.py`, `bob/hw6.ipynb`. Rows are sorted by identifier.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".py", ".ipynb")
SKIPPED_DIRS = ("__pycache__", ".ipynb_checkpoints")
SKIPPED_FILES = ("__init__.py",)


class SubmissionError(Exception):
    """A SUBMISSION argument names nothing gradable (one line)."""


@dataclass(frozen=True)
class Submission:
    identifier: str     # the row's name on the sheet
    path: Path          # absolute; what --target receives
    sha256: str         # of the file's bytes when it was found

    @property
    def spec(self) -> str:
        return str(self.path)


def file_digest(path: Path) -> str:
    """sha256 of a regular file's bytes ('' when it cannot be read, or something else stands
    at `path`: a FIFO in its place must not block the grader)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_under(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(SUFFIXES) and not name.startswith(".") \
                    and name not in SKIPPED_FILES:
                found.append(Path(root) / name)
    return found


def discover(arguments: list[str]) -> list[Submission]:
    """The submissions named by the command line's arguments, sorted by identifier."""
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            inside = _files_under(path)
            if not inside:
                raise SubmissionError(f"{argument}: no .py or .ipynb file in this folder")
            paths.extend(inside)
        elif path.is_file():
            if not path.name.endswith(SUFFIXES):
                raise SubmissionError(f"{argument}: not a .py file or an .ipynb notebook")
            paths.append(path)
        else:
            raise SubmissionError(f"{argument}: no such file or folder")
    unique = sorted({p.resolve() for p in paths})
    if not unique:
        raise SubmissionError("no submission given")
    base = Path(os.path.commonpath([str(p.parent) for p in unique]))
    submissions = [Submission(p.relative_to(base).as_posix(), p, file_digest(p))
                   for p in unique]
    return sorted(submissions, key=lambda s: s.identifier)
