"""The resume journal: finished verdicts, so an interrupted grading need not redo them.

One JSON object per line. The first holds the grading's secret seed: {"seed": N, "hmac": ...};
each further one a verdict: {"key": ..., "path": ..., "sha256": ..., "verdict": {...},
"hmac": ...}. `key` fingerprints everything that changes a verdict besides the file itself (the
suite snapshot's digest and the run settings, the seed among them), so a journal written with
other settings or another version of the suite is ignored. An entry is reused only for the same
path with the same content hash.

Every line is signed (HMAC-SHA256 of its canonical JSON without "hmac") with a key kept beside
the journal (`<journal>.key`, readable by the grader's user only, hidden from sandboxed
submissions, made anew when a grading starts without --resume): a line written or edited by
anyone else is ignored on --resume and counted (`forged`).

The journal lives outside the output folder (by default under ~/.cache/convcheck/, named after
the output folder); the grader also watches it while submissions run (grade_watch) and puts
back what it wrote if anything else writes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from properties.grading.safefile import (UnsafeFile, append_regular, create_new, read_regular,
                                         remove)
from properties.grading.verdict import Verdict

#: Largest journal read back (a class of thousands of submissions fits many times).
JOURNAL_LIMIT_BYTES = 512 * 1024 * 1024


def default_path(output: Path) -> Path:
    """~/.cache/convcheck/grade-journals/<hash of the output folder>.jsonl"""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(str(Path(output).resolve()).encode()).hexdigest()[:16]
    return cache / "convcheck" / "grade-journals" / f"{name}.jsonl"


def key_path(journal: Path) -> Path:
    return Path(journal).with_name(Path(journal).name + ".key")


def run_key(suite_digest: str, settings: dict) -> str:
    """What a journal entry must match, besides its file, to be reused."""
    blob = json.dumps({"suite": suite_digest, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _signed(entry: dict, key: bytes) -> str:
    blob = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, blob, hashlib.sha256).hexdigest()


def _read_key(journal: Path) -> bytes | None:
    try:
        data = read_regular(key_path(journal), 1024, own=True)
    except (UnsafeFile, OSError):
        return None
    return data.strip() if data else None


def _lines(journal: Path, key: bytes | None):
    """The journal's entries whose signature checks out, and how many did not."""
    try:
        data = read_regular(journal, JOURNAL_LIMIT_BYTES, own=True) or b""
    except (UnsafeFile, OSError):
        return [], 0
    good, forged = [], 0
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            forged += 1
            continue
        if not isinstance(entry, dict):
            forged += 1
            continue
        signature = str(entry.pop("hmac", ""))
        if key is None or not hmac.compare_digest(signature, _signed(entry, key)):
            forged += 1
            continue
        good.append(entry)
    return good, forged


def recorded_seed(journal: Path) -> int | None:
    """The seed an existing journal was written with (None when it has none, or its
    signature does not check out)."""
    entries, _ = _lines(Path(journal), _read_key(Path(journal)))
    seed = entries[0].get("seed") if entries else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


class Journal:
    """Append-only, signed record of finished verdicts for one grading configuration."""

    def __init__(self, path: Path, key: str, resume: bool, seed: int | None = None):
        self.path, self.key = Path(path), key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[tuple[str, str], dict] = {}
        self.ignored = 0  # entries written with another suite or other settings
        self.forged = 0   # lines whose signature does not check out
        secret = _read_key(self.path) if resume else None
        if secret is not None and self.path.is_file():
            entries, self.forged = _lines(self.path, secret)
            self._secret = secret
            self.data = read_regular(self.path, JOURNAL_LIMIT_BYTES, own=True) or b""
            for entry in entries:
                self._load(entry)
        else:
            self._secret = secrets.token_hex(32).encode()
            self._write_key()
            self.data = b""
            remove(self.path)
            self._append({"seed": seed})

    def _write_key(self) -> None:
        temporary = key_path(self.path).with_name(key_path(self.path).name + ".new")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self._secret)
        os.replace(temporary, key_path(self.path))

    def _load(self, entry: dict) -> None:
        if "seed" in entry and "verdict" not in entry:
            return
        if entry.get("key") == self.key and isinstance(entry.get("verdict"), dict):
            self.entries[(entry.get("path"), entry.get("sha256"))] = entry["verdict"]
        else:
            self.ignored += 1

    def _append(self, entry: dict) -> bytes:
        line = json.dumps({**entry, "hmac": _signed(entry, self._secret)}, sort_keys=True)
        data = (line + "\n").encode("utf-8")
        try:
            append_regular(self.path, data)
        except UnsafeFile:  # something else was put in its place: the journal as written
            remove(self.path)
            with create_new(self.path) as handle:
                handle.write(self.data + data)
        self.data += data
        return self.data

    def finished(self, path: str, sha256: str) -> Verdict | None:
        """The journalled verdict of this file with this content, if there is one."""
        data = self.entries.get((path, sha256))
        return Verdict.from_dict(data) if data is not None else None

    def record(self, verdict: Verdict) -> bytes:
        """Append a verdict; the whole journal's bytes as the grader wrote them."""
        self.entries[(verdict.path, verdict.sha256)] = verdict.as_dict()
        return self._append({"key": self.key, "path": verdict.path, "sha256": verdict.sha256,
                             "verdict": verdict.as_dict()})
