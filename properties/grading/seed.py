"""The grading's secret seed: the inputs Hypothesis draws, unknown to the submissions.

A suite whose inputs are derandomized can be beaten by a table of the inputs its public version
draws. Each grading therefore draws a secret 64-bit seed (or takes `--seed`), keeps it in its
output folder (SEED_FILE, readable by the grader's user only; the sandbox hides the folder
from submissions) and in the resume journal, and hands it to each judge on its standard input,
never on a command line. Grading again into the same output folder, or `--resume`, uses the
stored seed, so the sheet comes out the same; `--seed N` sets it.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from properties.grading.safefile import UnsafeFile, read_regular

SEED_FILE = ".convcheck-seed"


def stored_seed(folder: Path) -> int | None:
    """The seed kept in an output folder, or None."""
    try:
        data = read_regular(Path(folder) / SEED_FILE, 1024, own=True)
        seed = json.loads(data)["seed"] if data else None
    except (UnsafeFile, OSError, ValueError, KeyError, TypeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def store_seed(folder: Path, seed: int) -> None:
    """Keep `seed` in the output folder (replacing any other)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{SEED_FILE}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"seed": seed}, handle)
    os.replace(temporary, folder / SEED_FILE)


def new_seed() -> int:
    return secrets.randbits(64)
