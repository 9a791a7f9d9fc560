"""How a grading confines the submissions' code, decided once for all runs, and said loudly
when it cannot.

`decide(requested, require)` picks the sandbox mode of every worker (properties.sandbox): with
`auto` the strongest that works on this machine (bubblewrap, else a uid of its own when the
grader is root), each tried for real. When none works the grading still runs, but the
terminal, grades.json and the sheet's `sandbox` column say "not sandboxed", and the grades are
not claimed to resist tampering; `--require-sandbox` makes that an error instead.

`hidden(...)` lists what a bubblewrap worker must not see: the grader's private folder (every
run's files), the output, journal and feedback folders, the folder holding the submissions,
and the grader's home (its other files). What a worker needs from them (the interpreter, the
suite's copy, its own submission's copy) is mounted back by properties.sandbox.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from properties import sandbox


class NotSandboxed(Exception):
    """No sandbox works here and the grading requires one (the message says why)."""


@dataclass(frozen=True)
class Confinement:
    mode: str                          # a properties.sandbox mode
    passed_over: tuple[str, ...] = ()  # why each stronger mode is not used

    @property
    def sandboxed(self) -> bool:
        return self.mode != "none"

    def describe(self) -> dict:
        """As grades.json records it."""
        return {"mode": self.mode, "sandboxed": self.sandboxed,
                "tamper_resistant": self.sandboxed, "passed_over": list(self.passed_over)}

    def warning(self) -> list[str]:
        """What the terminal says before grading (nothing when sandboxed)."""
        if self.sandboxed:
            return []
        why = "; ".join(self.passed_over) or "--sandbox none was asked for"
        return ["convcheck grade: NOT SANDBOXED: the submissions' code runs as you, with your "
                "files and your network",
                f"  (why: {why}).",
                "  A submission can then read your files, change this grading's sheet, "
                "journal and other rows, and outlive the run: these grades are not tamper "
                "resistant.",
                "  Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), or grade as "
                "root in a container; --require-sandbox makes this an error."]


def decide(requested: str = "auto", require: bool = False) -> Confinement:
    """The confinement of this grading (see the module docstring). Raises NotSandboxed, or
    sandbox.SandboxError for a named mode that does not work here."""
    if requested != "auto":
        why = sandbox.problem(requested) if requested in sandbox.MODES else None
        if why:
            raise sandbox.SandboxError(why)
        mode, passed_over = sandbox.choose(requested)
    else:
        mode, passed_over = sandbox.choose("auto")
    confinement = Confinement(mode, tuple(passed_over))
    if require and not confinement.sandboxed:
        raise NotSandboxed("no sandbox works here: " + ("; ".join(passed_over) or
                                                        "--sandbox none was asked for"))
    return confinement


def hidden(*paths: Path | None) -> tuple[str, ...]:
    """The given folders (those that exist, None skipped) and the grader's home, as absolute
    paths, each once."""
    found = []
    for path in (*paths, Path.home()):
        if path is None:
            continue
        path = Path(os.path.realpath(path))
        if path.exists() and path != Path("/") and str(path) not in found:
            found.append(str(path))
    return tuple(found)
