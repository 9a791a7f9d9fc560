"""The grading scheme: points per contract name, and default limits, read from TOML.

    assignment = "textbook"   # optional: only these names of [points] are graded
                              # (contract.ASSIGNMENTS: textbook, functional, all; default all)
    accept = ["moving-var-zeros"]   # optional: conventions of the course's notes accepted
                                    # (contract.ACCEPTABLE_CONVENTIONS), reported as notes

    [points]
    corr2d = 2          # earned when every property of corr2d holds
    pool2d = 2          # names left out are not graded (no column, properties not run)

    [limits]            # optional; the command line wins
    timeout = 900       # wall-clock seconds per submission
    call_timeout = 30   # seconds one call of the submission may take
    memory_limit_mb = 3072
    max_examples = 40   # Hypothesis examples per property
    jobs = 4

    [forbidden]         # optional: operations a name may not use (properties.forbidden)
    corr2d = ["torch.nn.functional.conv2d", "scipy.signal.*"]

`properties/grading/grading.toml` is the default. Unknown names, sections or keys are errors: a typo
must not silently drop a name from the grade.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from properties.contract import ACCEPTABLE_CONVENTIONS, ASSIGNMENTS, CONTRACT_NAMES
from properties.forbidden import RuleError, check_rule

DEFAULT_CONFIG = Path(__file__).resolve().parent / "grading.toml"

#: [limits] keys and their types.
LIMIT_KEYS = {"timeout": float, "call_timeout": float, "memory_limit_mb": int,
              "max_examples": int, "jobs": int}


class ConfigError(Exception):
    """The grading config cannot be used (one line, naming the file)."""


@dataclass(frozen=True)
class GradingConfig:
    """Points per graded name (in contract order: [points] of the names the assignment asks
    for), the config's default limits, forbidden operations and accepted conventions."""
    points: dict[str, float]
    limits: dict[str, float | int] = field(default_factory=dict)
    source: str = ""
    forbidden: dict[str, tuple[str, ...]] = field(default_factory=dict)
    accepted: tuple[str, ...] = ()
    assignment: str = "all"
    declared: dict[str, float] = field(default_factory=dict)  # [points] as written

    def for_assignment(self, assignment: str) -> "GradingConfig":
        """The config grading the names `assignment` asks for, of those [points] declares."""
        if assignment not in ASSIGNMENTS:
            raise ConfigError(f"{self.source}: unknown assignment {assignment!r}; known: "
                              f"{', '.join(ASSIGNMENTS)}")
        declared = self.declared or self.points
        points = {n: p for n, p in declared.items() if n in ASSIGNMENTS[assignment]}
        if not points:
            raise ConfigError(f"{self.source}: [points] names none of the {assignment} "
                              f"assignment's names ({', '.join(ASSIGNMENTS[assignment])})")
        return dataclasses.replace(self, points=points, assignment=assignment,
                                   declared=declared)

    @property
    def names(self) -> list[str]:
        return list(self.points)

    @property
    def total(self) -> float:
        return sum(self.points.values())


def load_config(path: str | Path | None = None) -> GradingConfig:
    """Read and check a grading config (the default one when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(data, str(path))


def parse_config(data: dict, source: str = "<config>") -> GradingConfig:
    """Check the parsed TOML of a grading config and build a GradingConfig."""
    unknown = sorted(set(data) - {"points", "limits", "forbidden", "assignment", "accept"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) or section(s) {', '.join(unknown)} "
                          "(expected [points] and optionally assignment, accept, [limits] "
                          "and [forbidden])")
    raw_points = data.get("points")
    if not isinstance(raw_points, dict) or not raw_points:
        raise ConfigError(f"{source}: a [points] table naming at least one contract name "
                          "is required")
    bad = sorted(set(raw_points) - set(CONTRACT_NAMES))
    if bad:
        raise ConfigError(f"{source}: {', '.join(bad)} not contract name(s); known: "
                          f"{', '.join(CONTRACT_NAMES)}")
    points = {}
    for name in CONTRACT_NAMES:  # contract order, whatever the file's order
        if name in raw_points:
            value = raw_points[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{source}: points for {name} must be a number >= 0, "
                                  f"not {value!r}")
            points[name] = value
    limits = {}
    raw_limits = data.get("limits", {})
    if not isinstance(raw_limits, dict):
        raise ConfigError(f"{source}: [limits] must be a table")
    for key, value in raw_limits.items():
        kind = LIMIT_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{source}: unknown limit {key!r}; known: "
                              f"{', '.join(LIMIT_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
                or (kind is int and not float(value).is_integer()):
            raise ConfigError(f"{source}: limit {key} must be a positive "
                              f"{'integer' if kind is int else 'number'}, not {value!r}")
        limits[key] = kind(value)
    config = GradingConfig(points=points, limits=limits, source=source,
                           forbidden=_forbidden(data.get("forbidden", {}), source),
                           accepted=_accepted(data.get("accept", []), source))
    assignment = data.get("assignment", "all")
    if not isinstance(assignment, str):
        raise ConfigError(f"{source}: assignment must be one of {', '.join(ASSIGNMENTS)}")
    return config.for_assignment(assignment)


def _accepted(raw, source: str) -> tuple[str, ...]:
    """`accept`: conventions of the course's notes taken as right (ACCEPTABLE_CONVENTIONS)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise ConfigError(f"{source}: accept must be a list of convention names")
    unknown = [c for c in raw if c not in ACCEPTABLE_CONVENTIONS]
    if unknown:
        raise ConfigError(f"{source}: accept: unknown convention(s) {', '.join(unknown)}; "
                          f"known: {', '.join(ACCEPTABLE_CONVENTIONS)}")
    return tuple(raw)


def _forbidden(raw, source: str) -> dict[str, tuple[str, ...]]:
    """The [forbidden] table: contract name -> operations (properties.forbidden rules)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [forbidden] must be a table")
    forbidden = {}
    for name, operations in raw.items():
        if isinstance(operations, str):
            operations = [operations]
        if not isinstance(operations, list) or not all(isinstance(o, str)
                                                       for o in operations):
            raise ConfigError(f"{source}: forbidden operations of {name} must be a list of "
                              "dotted names")
        try:
            for operation in operations:
                check_rule(name, operation)
        except RuleError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        forbidden[name] = tuple(operations)
    return forbidden


def format_points(value: float) -> str:
    """Points as the sheet shows them: 2 rather than 2.0, 1.5 as 1.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
