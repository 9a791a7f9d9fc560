"""The resume journal: finished verdicts, so an interrupted grading need not redo them.

One JSON object per line: {"key": ..., "path": ..., "sha256": ..., "verdict": {...}}. `key`
fingerprints everything that changes a verdict besides the file itself (the suite snapshot's
digest and the run settings), so a journal written with other settings or another version of
the suite is ignored. An entry is reused only for the same path with the same content hash.

The journal lives outside the output folder (by default under ~/.cache/convcheck/, named after
the output folder), where submissions have no reason to look; the grader also watches it
while submissions run (grade_watch) and puts back what it wrote if anything else writes.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from properties.grading.verdict import Verdict


def default_path(output: Path) -> Path:
    """~/.cache/convcheck/grade-journals/<hash of the output folder>.jsonl"""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(str(Path(output).resolve()).encode()).hexdigest()[:16]
    return cache / "convcheck" / "grade-journals" / f"{name}.jsonl"


def run_key(suite_digest: str, settings: dict) -> str:
    """What a journal entry must match, besides its file, to be reused."""
    blob = json.dumps({"suite": suite_digest, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class Journal:
    """Append-only record of finished verdicts for one grading configuration."""

    def __init__(self, path: Path, key: str, resume: bool):
        self.path, self.key = Path(path), key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[tuple[str, str], dict] = {}
        self.ignored = 0  # entries written with another suite or other settings
        if resume and self.path.is_file():
            data = self.path.read_bytes()
            self._load(data)
        else:
            data = b""
            self.path.write_bytes(data)
        self.data = bytes(data)

    def _load(self, data: bytes) -> None:
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("key") == self.key \
                    and isinstance(entry.get("verdict"), dict):
                self.entries[(entry.get("path"), entry.get("sha256"))] = entry["verdict"]
            elif isinstance(entry, dict):
                self.ignored += 1

    def finished(self, path: str, sha256: str) -> Verdict | None:
        """The journalled verdict of this file with this content, if there is one."""
        data = self.entries.get((path, sha256))
        return Verdict.from_dict(data) if data is not None else None

    def record(self, verdict: Verdict) -> bytes:
        """Append a verdict; the whole journal's bytes as the grader wrote them."""
        line = json.dumps({"key": self.key, "path": verdict.path, "sha256": verdict.sha256,
                           "verdict": verdict.as_dict()}, sort_keys=True) + "\n"
        data = line.encode("utf-8")
        with open(self.path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.data += data
        self.entries[(verdict.path, verdict.sha256)] = verdict.as_dict()
        return self.data
