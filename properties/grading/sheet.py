"""The grade sheet (grades.csv), the full record (grades.json) and the class summary.

grades.csv: identifier, one column per graded name (pass / fail / missing / timeout / crash /
error), points, total, status, reason, sandbox (bubblewrap, own uid, or not sandboxed); one row
per submission sorted by identifier. Nothing
in it depends on time or on the grader's private folders, so grading the same files twice
gives the same bytes. A name earns its points only when its status is `pass`.

grades.json: the grading scheme and settings, then per submission its verdict (status,
reason, per-name statuses, points, the report object without pictures — they belong in the
--report-html pages, properties.grading.pages), then the class summary. How long a
submission took is left out (the progress lines and the journal have it), so this file too is
the same bytes for the same verdicts, however and wherever they were graded (`--merge`).

Both are written once, at the end, from the verdicts the grader collected (write to a
temporary file in the same folder, then rename), never while submissions run.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from properties.grading.config import GradingConfig, format_points
from properties.grading.verdict import NAME_STATUSES, Verdict

CSV_NAME, JSON_NAME = "grades.csv", "grades.json"


def points_of(verdict: Verdict, config: GradingConfig) -> float:
    return sum(config.points[n] for n, s in verdict.names.items()
               if s == "pass" and n in config.points)


#: The `sandbox` column: how each submission's code was confined (properties.sandbox).
SANDBOX_WORDS = {"bwrap": "bubblewrap", "uid": "own uid", "none": "not sandboxed"}


def csv_text(verdicts: list[Verdict], config: GradingConfig, sandbox: str | None = None) -> str:
    """The sheet; with `sandbox` (a properties.sandbox mode) a last column says it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = ["sandbox"] if sandbox else []
    writer.writerow(["identifier", *config.names, "points", "total", "status", "reason",
                     *extra])
    for verdict in sorted(verdicts, key=lambda v: v.identifier):
        writer.writerow([verdict.identifier, *(verdict.names.get(n, "error")
                                               for n in config.names),
                         format_points(points_of(verdict, config)),
                         format_points(config.total), verdict.status,
                         verdict.reason.replace("\n", " "),
                         *([SANDBOX_WORDS.get(sandbox, sandbox)] if sandbox else [])])
    return buffer.getvalue()


def summary(verdicts: list[Verdict], config: GradingConfig, top: int = 10) -> dict:
    """How many got each status per name, the most common diagnoses, points overall."""
    per_name = {name: {status: 0 for status in NAME_STATUSES} for name in config.names}
    diagnoses: Counter = Counter()
    said: dict[tuple[str, str], str] = {}   # (name, mistake id) -> the line first seen
    for verdict in verdicts:
        for name in config.names:
            per_name[name][verdict.names.get(name, "error")] += 1
        for name, entry in ((verdict.report or {}).get("functions") or {}).items():
            if name not in config.points or not isinstance(entry, dict):
                continue
            seen = set()
            for failure in entry.get("failures") or []:
                if not isinstance(failure, dict) or not failure.get("diagnosis"):
                    continue
                # Counted by the mistake's id: its line may add "also consistent with ...".
                key = (name, failure.get("mistake") or failure["diagnosis"])
                if key not in seen:  # once per submission and name
                    seen.add(key)
                    diagnoses[key] += 1
                    said.setdefault(key, failure["diagnosis"])
    points = [points_of(v, config) for v in verdicts]
    return {
        "submissions": len(verdicts),
        "statuses": dict(sorted(Counter(v.status for v in verdicts).items())),
        "per_name": per_name,
        "diagnoses": [{"name": n, "mistake": m, "diagnosis": said[(n, m)], "submissions": c}
                      for (n, m), c in sorted(diagnoses.items(),
                                              key=lambda item: (-item[1], item[0]))[:top]],
        "points": {"total": config.total,
                   "mean": round(sum(points) / len(points), 2) if points else 0.0,
                   "full_marks": sum(1 for p in points if p == config.total)},
    }


def summary_lines(data: dict, config: GradingConfig) -> list[str]:
    """The class summary as text for the terminal."""
    count = data["submissions"]
    statuses = ", ".join(f"{n} {s}" for s, n in data["statuses"].items())
    lines = [f"class summary: {count} submission(s) ({statuses}); mean "
             f"{data['points']['mean']:g} of {format_points(config.total)} points, "
             f"{data['points']['full_marks']} with full marks"]
    width = max([len(n) for n in config.names] + [4])
    for name, counts in data["per_name"].items():
        others = ", ".join(f"{counts[s]} {s}" for s in NAME_STATUSES[1:] if counts[s])
        lines.append(f"  {name:<{width}}  {counts['pass']:>3}/{count} pass"
                     + (f"  ({others})" if others else ""))
    if data["diagnoses"]:
        lines.append("most common diagnoses:")
        for entry in data["diagnoses"]:
            lines.append(f"  {entry['submissions']:>3} x {entry['name']}: {entry['diagnosis']}")
    return lines


def json_document(verdicts: list[Verdict], config: GradingConfig, settings: dict) -> dict:
    rows = []
    for verdict in sorted(verdicts, key=lambda v: v.identifier):
        row = verdict.as_dict()
        del row["duration"]
        row["report"] = without_figures(row["report"])
        row["points"] = points_of(verdict, config)
        rows.append(row)
    return {"scheme": {"points": config.points, "total": config.total,
                       "config": config.source},
            "settings": settings, "submissions": rows,
            "summary": summary(verdicts, config)}


def without_figures(report):
    """A report with each failure's picture (`figure`) set to null."""
    if not isinstance(report, dict) or not isinstance(report.get("functions"), dict):
        return report
    functions = {}
    for name, entry in report["functions"].items():
        if isinstance(entry, dict) and isinstance(entry.get("failures"), list):
            entry = {**entry, "failures": [{**f, "figure": None} if isinstance(f, dict) and
                                           f.get("figure") is not None else f
                                           for f in entry["failures"]]}
        functions[name] = entry
    return {**report, "functions": functions}


def write_atomically(path: Path, text: str) -> str:
    """Write `text` to `path` through a temporary file and a rename; its sha256."""
    import hashlib
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_sheet(folder: Path, verdicts: list[Verdict], config: GradingConfig,
                settings: dict) -> tuple[Path, Path]:
    """grades.csv and grades.json in `folder`."""
    folder = Path(folder)
    csv_path, json_path = folder / CSV_NAME, folder / JSON_NAME
    sandbox = (settings.get("sandbox") or {}).get("mode")
    write_atomically(csv_path, csv_text(verdicts, config, sandbox))
    document = json_document(verdicts, config, settings)
    write_atomically(json_path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    return csv_path, json_path
