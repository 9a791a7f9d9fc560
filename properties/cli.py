"""The `convcheck` command ([project.scripts]): the installed suite, from any folder.

    convcheck TARGET [PYTEST OPTIONS] [properties/suite.py::TEST ...]
    convcheck grade SUBMISSION... [GRADER OPTIONS]

`convcheck TARGET` is `pytest --target TARGET` on the suite the package ships
(properties/suite.py); this process becomes

    python -P -m pytest <package>/suite.py -c <package>/suite.ini
           --rootdir=<folder holding the package> -p convcheck
           -o cache_dir=<current folder>/.pytest_cache --target=TARGET [options]

so it prints the same header, report card and exit status (0 all hold, 1 a property fails, 4
a target that cannot be loaded, ...). `-c` makes the shipped suite.ini the run's only
configuration: no pytest.ini, pyproject.toml, tox.ini, setup.cfg or conftest.py of the folder
it is started from takes part, and `-P` keeps that folder off sys.path (a student's
`properties.py` or `torch.py` there cannot stand in for the real ones). A fresh interpreter,
rather than pytest.main in this one, lets pytest import the plugin first, as it expects.
`-p convcheck` loads the plugin even where plugin autoloading is off. pytest's cache (`--lf`,
`--ff`) goes to the current folder, as with `pytest`, never into the installed package. TARGET
is read relative to the current folder. Node ids the report prints
(`properties/suite.py::test_property[...]`, see suite.ini's `convcheck_replay`) select those
tests when given after TARGET.

`convcheck grade ...` is `python -m properties.grade ...` (properties.grading.cli).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

#: The installed suite and its configuration.
SUITE = Path(__file__).resolve().with_name("suite.py")
SUITE_INI = SUITE.with_name("suite.ini")
#: Node ids are relative to the folder holding the package: `properties/suite.py::...`.
ROOT = SUITE.parent.parent
NODE_PREFIX = f"{SUITE.parent.name}/{SUITE.name}::"

USAGE = """\
usage: convcheck TARGET [PYTEST OPTIONS] [properties/suite.py::TEST ...]
       convcheck grade SUBMISSION... [OPTIONS]      (convcheck grade --help)

Check TARGET against the convcheck suite: a .py file, an .ipynb notebook, a dotted module
name, `reference` or `torch`. Prints which contract names pass, fail or are missing, with
each failure's minimal example; exit status 0 when every property holds, 1 when one fails.
Any pytest option may follow TARGET (-x, -k EXPR, -n 2, --lf, --report-json PATH, ...;
`convcheck TARGET --help` lists them all, convcheck's under "convcheck").

`convcheck grade` grades a class: every submission in its own process, a grade sheet.
"""


def pytest_arguments(target: str, options: list[str], cwd: Path) -> list[str]:
    """The pytest command line of `convcheck TARGET OPTIONS` started in `cwd`."""
    selected = [str(ROOT / a) if a.startswith(NODE_PREFIX) else a for a in options]
    tests = [] if any(a.startswith(NODE_PREFIX) for a in options) else [str(SUITE)]
    return [*tests, "-c", str(SUITE_INI), f"--rootdir={ROOT}", "-p", "convcheck",
            "-o", f"cache_dir={cwd / '.pytest_cache'}", f"--target={target}", *selected]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from importlib.metadata import version
        print(f"convcheck {version('convcheck')}")
        return 0
    if argv[0] == "grade":
        from properties.grading.cli import main as grade
        return grade(argv[1:], prog="convcheck grade")
    if argv[0].startswith("-"):
        print(f"convcheck: the first argument is the target, not the option {argv[0]!r}\n",
              file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 2
    arguments = pytest_arguments(argv[0], argv[1:], Path(os.getcwd()))
    os.execv(sys.executable, [sys.executable, "-P", "-m", "pytest", *arguments])


if __name__ == "__main__":
    sys.exit(main())
