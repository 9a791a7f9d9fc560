"""Gradescope's autograder results: `convcheck grade SUBMISSION --gradescope RESULTS_JSON`.

Gradescope grades one submission per container and reads `/autograder/results/results.json`
(see docs/gradescope.md). For the one submission graded, this writes:

    {"score": points earned,
     "execution_time": seconds the grading took (an integer),
     "output": the submission's Markdown feedback header: its points and, when it could not
               be graded fully, why; "output_format": "md",
     "visibility": VISIBILITY, "stdout_visibility": "hidden",
     "tests": one entry per graded contract name, in contract order:
        {"name": NAME, "number": "1", "score": its points when it passes else 0,
         "max_score": its points in the scheme, "status": "passed" | "failed",
         "output": the name's Markdown feedback (its result; for a failure each property, what
                   was wrong, the likely mistake, the minimal example to run),
         "output_format": "md", "visibility": VISIBILITY}}

A name passes exactly when its sheet cell is `pass`. When the command line does not name
exactly one gradable file, the results say so to the student with a score of 0
(`unusable_results`), since Gradescope shows nothing useful when results.json is missing.
"""
from __future__ import annotations

import json
from pathlib import Path

from properties.grading.config import GradingConfig
from properties.grading.feedback import (CARD_WORDS, FAILING, card_text, header,
                                         what_went_wrong)
from properties.grading.sheet import points_of, write_atomically
from properties.grading.verdict import Verdict

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def _test(verdict: Verdict, name: str, number: int, config: GradingConfig,
          visibility: str) -> dict:
    status = verdict.names.get(name, "error")
    passed = status == "pass"
    card = card_text(verdict, name)
    output = [f"**{card}**" if passed else f"**{name}: {card}**", ""]
    if status in FAILING:
        output += what_went_wrong(verdict, name, level="####")
    return {"name": name, "number": str(number),
            "score": config.points[name] if passed else 0, "max_score": config.points[name],
            "status": "passed" if passed else "failed",
            "output": "\n".join(output).rstrip() + "\n", "output_format": "md",
            "visibility": visibility}


def results(verdict: Verdict, config: GradingConfig, execution_time: float,
            visibility: str = "visible") -> dict:
    """The results.json object of one graded submission (see the module docstring)."""
    return {"score": points_of(verdict, config),
            "execution_time": round(execution_time),
            "output": "\n".join(header(verdict, config)).rstrip() + "\n",
            "output_format": "md",
            "visibility": visibility, "stdout_visibility": "hidden",
            "tests": [_test(verdict, name, number, config, visibility)
                      for number, name in enumerate(config.names, start=1)]}


def unusable_results(problem: str, config: GradingConfig, visibility: str = "visible") -> dict:
    """results.json for a submission that could not be graded at all: `problem` shown to the
    student, every name failed with 0 points."""
    words = CARD_WORDS["error"]
    return {"score": 0, "execution_time": 0,
            "output": f"Your submission could not be graded: {problem}\n",
            "output_format": "md", "visibility": visibility, "stdout_visibility": "hidden",
            "tests": [{"name": name, "number": str(number), "score": 0,
                       "max_score": config.points[name], "status": "failed",
                       "output": f"**{name}: {words}**\n", "output_format": "md",
                       "visibility": visibility}
                      for number, name in enumerate(config.names, start=1)]}


def write_results(path: Path, data: dict) -> None:
    write_atomically(Path(path), json.dumps(data, indent=2) + "\n")
