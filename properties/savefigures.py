"""`--save-figures DIR`: each failure's minimal failing call as a script, and beside it the
picture of its wrong result.

For the first failure of each property of each name in the report (the --report-json object),
DIR gets `NAME--PROPERTY.py` (the failure's `example`: it runs on its own, from DIR or any
folder) and, when the failure has a figure, `NAME--PROPERTY.png` (properties.figures).
PROPERTY is the property's sentence made a file name (lower case, words joined by '-').
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

from properties.contract import CONTRACT_NAMES

#: Longest part of a file name taken from a property's sentence.
SLUG_LENGTH = 60


def slug(text: str) -> str:
    """`text` as a file-name part: 'agrees with torch's float64 conv2d' ->
    'agrees-with-torch-s-float64-conv2d'."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:SLUG_LENGTH].rstrip("-") or "property"


def save_failures(folder, report: dict) -> list[Path]:
    """Write the scripts and pictures (module docstring) into `folder`; the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in CONTRACT_NAMES:
        seen = set()
        for failure in (report["functions"].get(name) or {}).get("failures") or []:
            prop = failure.get("property") or "property"
            if prop in seen:
                continue
            seen.add(prop)
            stem = f"{name}--{slug(prop)}"
            if failure.get("example"):
                path = folder / f"{stem}.py"
                path.write_text(failure["example"].rstrip() + "\n", encoding="utf-8")
                written.append(path)
            figure = failure.get("figure")
            if isinstance(figure, dict) and figure.get("png"):
                path = folder / f"{stem}.png"
                path.write_bytes(base64.b64decode(figure["png"]))
                written.append(path)
    return written
