"""Grading a class on several machines: `--shard K/N` and `--merge OUT SHARD_DIR...`.

`--shard K/N` grades the submissions in shard K of N: those whose identifier's SHA-256, read as
an integer, is K − 1 modulo N. The split depends on the identifiers alone, so every machine
must be given the same SUBMISSION arguments over the same folder layout (identifiers are paths
relative to the folder holding every submission) and the same options, `--seed` among them
(required: a shard drawing its own secret seed would test its students on other inputs). Each
shard writes its own sheet; its grades.json settings carry `shard`: {"index": K, "count": N,
"submissions": {identifier: sha256, for every submission of the class}, "journal_key": ...}.

`--merge OUT SHARD_DIR...` reads the shards' grades.json, checks that they are the N shards of
one grading (the same scheme, settings and class; every submission graded in exactly one
shard) and writes, from their verdicts, what one machine grading the whole class writes:
OUT/grades.csv and OUT/grades.json (the same bytes for the same verdicts), the feedback with
`--feedback`, and the resume journal (`--journal`, else the default one for OUT) with the seed
(`--seed`, else the one the shard folders keep), so that `--resume` into OUT reuses every
shard's verdicts.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from properties.grading.config import GradingConfig
from properties.grading.feedback import write_feedback
from properties.grading.journal import Journal
from properties.grading.seed import store_seed, stored_seed
from properties.grading.sheet import JSON_NAME, write_sheet
from properties.grading.submissions import Submission
from properties.grading.verdict import Verdict

SHARD_KEY = "shard"


class ShardError(Exception):
    """The shards cannot be merged, or --shard is malformed (one line)."""


def parse_shard(text: str, seed: int | None) -> tuple[int, int]:
    """'K/N' -> (K, N), with 1 <= K <= N; the shards share a seed, so one must be given."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ShardError(f"--shard {text}: expected K/N, such as 2/8") from None
    if not 1 <= index <= count:
        raise ShardError(f"--shard {text}: K must be between 1 and N")
    if seed is None:
        raise ShardError("--shard needs --seed N, the same for every shard: otherwise each "
                         "shard draws its own secret inputs")
    return index, count


def in_shard(identifier: str, index: int, count: int) -> bool:
    digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()
    return int(digest, 16) % count == index - 1


def shard_settings(index: int, count: int, everyone: list[Submission],
                   journal_key: str) -> dict:
    """What a shard's grades.json records about the split (settings["shard"])."""
    return {"index": index, "count": count,
            "submissions": {s.identifier: s.sha256 for s in everyone},
            "journal_key": journal_key}


def _read(folder: Path) -> dict:
    path = Path(folder) / JSON_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: cannot read a grade sheet ({exc})") from None
    if not isinstance(document, dict) or SHARD_KEY not in document.get("settings", {}):
        raise ShardError(f"{path}: not the sheet of a --shard run")
    return document


def merged(folders: list[Path]) -> tuple[list[Verdict], GradingConfig, dict, str]:
    """The verdicts, scheme, settings (without the shard) and journal key of the whole class,
    from its shards' sheets."""
    documents = {str(folder): _read(folder) for folder in folders}
    first_folder, first = next(iter(documents.items()))
    shard = first["settings"][SHARD_KEY]
    settings = {k: v for k, v in first["settings"].items() if k != SHARD_KEY}
    seen_shards: dict[int, str] = {}
    rows: dict[str, dict] = {}
    for folder, document in documents.items():
        own = document["settings"][SHARD_KEY]
        if {k: v for k, v in document["settings"].items() if k != SHARD_KEY} != settings \
                or document["scheme"] != first["scheme"] \
                or {k: own[k] for k in ("count", "submissions", "journal_key")} != \
                {k: shard[k] for k in ("count", "submissions", "journal_key")}:
            raise ShardError(f"{folder} and {first_folder} are not shards of the same grading "
                             "(other submissions, scheme, settings or suite)")
        if own["index"] in seen_shards:
            raise ShardError(f"{folder} and {seen_shards[own['index']]} are both shard "
                             f"{own['index']}/{own['count']}")
        seen_shards[own["index"]] = folder
        for row in document["submissions"]:
            rows[row["identifier"]] = row
    count = shard["count"]
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in seen_shards]
    if missing:
        raise ShardError(f"shard(s) {', '.join(missing)} missing")
    expected = shard["submissions"]
    if {i: r.get("sha256") for i, r in rows.items()} != expected:
        raise ShardError("the shards' rows are not the class's submissions, each once")
    scheme = first["scheme"]
    config = GradingConfig(points=scheme["points"], source=scheme["config"])
    verdicts = [Verdict.from_dict(rows[identifier]) for identifier in sorted(rows)]
    return verdicts, config, settings, shard["journal_key"]


def shared_seed(folders: list[Path], given: int | None) -> int:
    """The shards' seed: `given`, else the one every shard folder keeps."""
    if given is not None:
        return given
    kept = {stored_seed(Path(folder)) for folder in folders}
    if len(kept) != 1 or None in kept:
        raise ShardError("give --seed N, the seed the shards were graded with (their folders "
                         "do not all keep the same one)")
    return kept.pop()


def merge(out: Path, folders: list[Path], feedback: Path | None, journal_path: Path,
          seed: int | None) -> tuple[list[Verdict], GradingConfig, Path, Path]:
    """Write the merged feedback, journal and sheet (see the module docstring)."""
    verdicts, config, settings, key = merged(folders)
    seed = shared_seed(folders, seed)
    store_seed(out, seed)
    journal = Journal(journal_path, key, resume=False, seed=seed)
    for verdict in verdicts:
        journal.record(verdict)
    if feedback:
        write_feedback(feedback, verdicts, config)
    csv_path, json_path = write_sheet(out, verdicts, config, settings)
    return verdicts, config, csv_path, json_path
