"""Grading on several machines (properties/grading/shards.py): `--shard K/N` and `--merge`
give the same files as one run over the whole class."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from properties.grading.cli import main
from properties.grading.shards import ShardError, in_shard, parse_shard
from properties.grading.watch import SuiteSnapshot
from test_grade import FIXTURES, PROJECT

CLASS = ["correct_textbook.py", "buggy_flipped_kernel.py", "unimportable_syntax.py",
         "notebooks/buggy_kernel_height.ipynb"]


def test_every_identifier_is_in_exactly_one_shard():
    identifiers = [f"student{i}/hw{i % 7}.py" for i in range(200)]
    for count in (1, 2, 3, 8):
        shards = [[i for i in identifiers if in_shard(i, k, count)]
                  for k in range(1, count + 1)]
        assert sorted(sum(shards, [])) == sorted(identifiers)
        assert all(shards) or count > len(identifiers)


@pytest.mark.parametrize("text, seed", [("0/3", 1), ("4/3", 1), ("1", 1), ("a/b", 1),
                                        ("1/0", 1), ("1/3", None)])
def test_a_malformed_shard_or_one_without_a_seed_is_refused(text, seed):
    with pytest.raises(ShardError):
        parse_shard(text, seed)


def _grade(project: Path, *args: str) -> str:
    """`python -m properties.grade` on a frozen copy of the suite, as test_grade does."""
    done = subprocess.run([sys.executable, "-m", "properties.grade", *args, "--no-progress"],
                          cwd=project, env={**os.environ, "PYTHONPATH": str(project)},
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_three_shards_merged_are_the_bytes_of_one_run(tmp_path):
    project = SuiteSnapshot(PROJECT).write_to(tmp_path / "project")
    class_dir = tmp_path / "class"
    for identifier in CLASS:
        (class_dir / identifier).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / identifier, class_dir / identifier)
    options = ["--only", "corr2d", "--max-examples", "3", "--seed", "20261201",
               "--timeout", "240", "--call-timeout", "30", "--jobs", "2"]

    whole = tmp_path / "whole"
    _grade(project, str(class_dir), *options, "--out", str(whole), "--feedback",
           str(whole / "feedback"), "--journal", str(tmp_path / "whole.jsonl"))
    shards = []
    for k in (1, 2, 3):
        shard = tmp_path / f"shard-{k}"
        _grade(project, str(class_dir), *options, "--shard", f"{k}/3", "--out", str(shard),
               "--journal", str(tmp_path / f"shard-{k}.jsonl"))
        shards.append(shard)
    graded = [len(json.loads((s / "grades.json").read_text())["submissions"])
              for s in shards]
    assert sum(graded) == len(CLASS) and max(graded) < len(CLASS)

    merged = tmp_path / "merged"
    journal = tmp_path / "merged.jsonl"
    _grade(project, "--merge", str(merged), *map(str, reversed(shards)), "--feedback",
           str(merged / "feedback"), "--journal", str(journal))
    assert _files(merged) == _files(whole)
    assert len(_files(merged / "feedback")) == len(CLASS)

    # the merged journal: resuming into the merged folder grades nothing and changes nothing
    stdout = _grade(project, str(class_dir), *options, "--out", str(merged), "--journal",
                    str(journal), "--resume")
    assert "graded 0 submission(s)" in stdout
    assert _files(merged / "feedback") == _files(whole / "feedback")
    assert (merged / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()


def test_shards_of_different_gradings_are_not_merged(tmp_path, capsys):
    for k, scheme in ((1, {"corr2d": 2}), (2, {"corr2d": 3})):
        folder = tmp_path / f"shard-{k}"
        folder.mkdir()
        (folder / "grades.json").write_text(json.dumps({
            "scheme": {"points": scheme, "total": 2, "config": "x"},
            "settings": {"shard": {"index": k, "count": 2, "submissions": {},
                                   "journal_key": "k"}},
            "submissions": []}))
    assert main(["--merge", str(tmp_path / "out"), str(tmp_path / "shard-1"),
                 str(tmp_path / "shard-2"), "--journal", str(tmp_path / "j")]) == 2
    assert "not shards of the same grading" in capsys.readouterr().err
    assert main(["--merge", str(tmp_path / "out"), str(tmp_path / "shard-1"),
                 "--journal", str(tmp_path / "j")]) == 2
    assert "shard(s) 2/2 missing" in capsys.readouterr().err
