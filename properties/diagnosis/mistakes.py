"""The known mistakes, read from their declarations in mistakes.toml (data: an id, the
sentence a student reads, and per subject the function of properties.diagnosis.core / conv /
pool / bn / modules that recognises it in a wrong result).

    MISTAKES   id -> Mistake
    CORRECT    subject -> the correct values of a result of it, by part
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from properties.diagnosis import bn, conv, core, modules, pool
from properties.diagnosis.core import Shows, View

DECLARATIONS = Path(__file__).with_name("mistakes.toml")
#: The modules a declaration's MODULE.FUNCTION names.
RECOMPUTATIONS = {"core": core, "conv": conv, "pool": pool, "bn": bn, "modules": modules}


@dataclass(frozen=True)
class Mistake:
    id: str
    says: str
    shows_in: Mapping[str, Shows]      # subject -> does a wrong result of it show the mistake

    def shows(self, view: View) -> bool:
        test = self.shows_in.get(view.subject)
        return test is not None and test(view)

    def explains(self, view: View) -> bool:
        """Whether the result is what the mistake computes — a wrong result it shows in, or
        a right one where the mistake makes no difference. A mistake recognised otherwise
        than by its value (structure, facts) explains any right result."""
        test = self.shows_in.get(view.subject)
        if test is None:
            return False
        if view.is_wrong():
            return test(view)
        explains = getattr(test, "explains", None)
        return explains(view) if explains is not None else True

    def line(self) -> str:
        return f"{self.id}: {self.says}"


def _recognising(reference: str) -> Shows:
    module, _, function = reference.partition(".")
    return getattr(RECOMPUTATIONS[module], function)


def load(path: Path = DECLARATIONS) -> dict[str, Mistake]:
    """Every declared mistake, in declaration order."""
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return {mistake_id: Mistake(mistake_id, entry["says"],
                                {subject: _recognising(reference)
                                 for subject, reference in entry["shows_in"].items()})
            for mistake_id, entry in table.items()}


MISTAKES: dict[str, Mistake] = load()

#: subject -> the correct values of a result, by part.
CORRECT = {**conv.CORRECT, **pool.CORRECT, **bn.CORRECT, **modules.CORRECT}
