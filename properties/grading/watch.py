"""Files the grader relies on, and noticing (and undoing) what a submission does to them.

`SuiteSnapshot` reads the suite — the packages `properties` and `reference`, from wherever
they are imported (a checkout, or site-packages for an installed wheel); the judge runs
`properties/suite.py` with the configuration `properties/suite.ini` — into memory once, at the
start. Every run gets its own copy on disk
(`write_to`): every judge of one grading runs the same code even while people edit the
project, and a submission that rewrites the suite on disk (its worker can find the copy
through `properties.__file__`) changes only its own run's copy, which the grader compares
with the snapshot afterwards (`differences`): the culprit is known exactly.

`Watch` guards the files all runs share: the sheet files the grading will write, the
feedback folder, the resume journal, the submissions themselves. It keeps their bytes; the
grader calls `changes()` whenever a run starts or ends, which puts back anything changed and
says what it was (a change means one of the runs active since the last call wrote there).
`accept(path, data)` records the grader's own writes.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from properties.grading.safefile import UnsafeFile, create_new, read_regular, remove

#: What a judge needs: these packages, copied whole from the folder that holds them.
SUITE_PACKAGES = ("properties", "reference")
#: The folder holding them: a checkout, or site-packages when the wheel is installed.
INSTALLED_ROOT = Path(__file__).resolve().parents[2]
#: Largest watched file read whole (a sheet, a journal, a submission, a suite file).
WATCH_LIMIT_BYTES = 256 * 1024 * 1024


def _read(path: Path) -> bytes | None:
    """A regular file's bytes (at most WATCH_LIMIT_BYTES + 1); None when there is no such file.
    Anything else in its place (a symlink, a folder, a FIFO) reads as a marker, so that it
    counts as a change, and is never opened (opening a FIFO would block)."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return b"\0symlink\0" + os.readlink(path).encode()
        if stat.S_ISDIR(mode):
            return b"\0folder\0"
        return read_regular(path, WATCH_LIMIT_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, UnsafeFile):
        return b"\0not a regular file\0"


def _tree(folder: Path) -> list[Path]:
    """Every file under `folder`, hidden ones and caches included (they could be imported)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(files))
    return found


def _put_back(path: Path, data: bytes | None) -> None:
    """Make `path` hold `data` again (or not exist), whatever it has become."""
    remove(path)
    if data is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with create_new(path, 0o644) as handle:
            handle.write(data)


class SuiteSnapshot:
    """The suite's files as they were when grading started."""

    def __init__(self, root: Path = INSTALLED_ROOT):
        self.project = Path(root)
        self.files: dict[str, bytes] = {}
        for package in SUITE_PACKAGES:
            for source in _tree(self.project / package):
                if "__pycache__" in source.parts or source.suffix in (".pyc", ".pyo"):
                    continue
                self.files[source.relative_to(self.project).as_posix()] = source.read_bytes()
        digest = hashlib.sha256()
        for relative in sorted(self.files):
            digest.update(relative.encode() + b"\0" + self.files[relative] + b"\0")
        self.digest = digest.hexdigest()

    def write_to(self, root: Path) -> Path:
        """A fresh copy of the suite under `root`, readable by everyone (a worker running under
        a uid of its own imports it) and writable by the grader's user only."""
        root = Path(root)
        for relative, data in self.files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, 0o644)
        for folder, _, _ in os.walk(root):
            os.chmod(folder, 0o755)
        return Path(root)

    def differences(self, root: Path) -> list[str]:
        """Files of a copy that were changed, removed or added since it was written."""
        root = Path(root)
        changed = [rel for rel, data in self.files.items() if _read(root / rel) != data]
        present = {p.relative_to(root).as_posix() for p in _tree(root)} if root.is_dir() \
            else set()
        return sorted(changed) + sorted(present - set(self.files))


class Watch:
    """Watched files and folders: what changed since last time, put back as they were."""

    def __init__(self, files=(), folders=(), labels: dict[Path, str] | None = None):
        self.files = [Path(p) for p in files]
        self.folders = [Path(p) for p in folders]
        self.labels = {Path(k): v for k, v in (labels or {}).items()}
        self.kept: dict[Path, bytes | None] = {path: _read(path) for path in self._paths()}

    def _paths(self) -> list[Path]:
        paths = list(self.files)
        for folder in self.folders:
            paths.extend(_tree(folder) if folder.is_dir() else ())
        return paths

    def label(self, path: Path) -> str:
        """How a path is named in a reason: relative to its labelled root when there is one."""
        if path in self.labels:
            return self.labels[path]
        for root, name in sorted(self.labels.items(), key=lambda item: -len(item[0].parts)):
            try:
                return f"{name}/{path.relative_to(root).as_posix()}"
            except ValueError:
                continue
        return str(path)

    def changes(self) -> list[Path]:
        """Paths whose content differs from what the grader knows; each is put back."""
        changed = []
        for path in sorted(set(self._paths()) | set(self.kept)):
            kept = self.kept.get(path)
            if _read(path) != kept:
                changed.append(path)
                _put_back(path, kept)
        return changed

    def accept(self, path: Path, data: bytes) -> None:
        """The grader itself wrote `data` to `path`."""
        self.kept[Path(path)] = data
