"""Running the suite on one submission: the judge in its own process group, the submission's
code in the judge's sandboxed worker, with limits.

A `Run` gets a private folder (inside the grader's, itself hidden from sandboxed workers)
holding its own copy of the suite (grade_watch.SuiteSnapshot), a copy of the submission, the
judge's working folder and the paths of its report and record, and starts

    python -P -m pytest <suite>/properties/suite.py -c <suite>/properties/suite.ini -q -s
        -p properties.grading.plugin
        --target=<submission copy> --isolate --sandbox=MODE --sandbox-hide=PATH ...
        [--forbid=NAME=OPERATION ...]
        --device=cpu --call-timeout=S --memory-limit-mb=M --worker-cpu-seconds=T
        --report-json=<run>/report-<random>.json --grade-events=<run>/events-<random>
        --grade-secrets-stdin [--grade-only=NAME ...] [--grade-max-examples=N]
        [--report-figures (with --report-html: the pictures of wrong results)]

in a new session (so the whole process group can be killed), with a safe sys.path (-P: not
the working folder), CI settings (CI=true, PYTHONHASHSEED=0, one thread) and resource limits
set in the child before it executes: RLIMIT_AS (the judge gets the worker's limit plus
headroom), RLIMIT_FSIZE, and no core files. The worker's own sandbox and limits (its whole
process tree's memory, CPU time and processes, its scratch folder's size) are the judge's
`--sandbox*` and `--worker-*` options (properties.sandbox); the worker's environment is the
same in every run and carries nothing of the grading. The judge's stdout and stderr go to one
pipe that the grader drains as it goes, keeping only the last TAIL_BYTES.
Its standard input carries one JSON line, the run's secrets — a fresh random key, and the
grading's seed — and is closed: the judge reads it before it starts the target's worker, signs
the report with the key and draws Hypothesis's inputs from the seed (grade_plugin).

The grader drives many runs from one thread (`fileno()` for select, `drain()`, `poll()`), so
`preexec_fn` is safe here. When a run passes its wall-clock limit its process group is killed.
After every run, processes it left behind (adopted by the grader: grade_reaper) are killed;
their number is reported (`escaped`). Everything the grader reads back is opened without
following symlinks, without blocking on a FIFO, and size-capped (grade_safefile).
"""
from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from properties.contract import TRAINED_NAMES
from properties.grading import reaper
from properties.grading.safefile import UnsafeFile, read_regular
from properties.grading.submissions import Submission
from properties.grading.watch import SuiteSnapshot

TAIL_BYTES = 64 * 1024
#: Address space the judge (pytest) gets on top of the worker's limit: its own torch and
#: Hypothesis, and room to receive a result as large as the worker could make.
JUDGE_HEADROOM_MB = 2048
#: Largest file a run may write (its report is a few kilobytes).
FILE_LIMIT_BYTES = 256 * 1024 * 1024
#: Largest report the grader reads.
REPORT_LIMIT_BYTES = 16 * 1024 * 1024
#: Environment variables that would change how the judge runs: never passed on.
SCRUBBED_VARIABLES = ("CONVCHECK_TARGET", "PYTEST_ADDOPTS", "PYTEST_PLUGINS",
                      "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONBREAKPOINT")


@dataclass(frozen=True)
class RunSettings:
    """What every run of one grading shares."""
    names: tuple[str, ...]                # graded contract names (--grade-only)
    timeout: float                        # wall-clock seconds per submission
    call_timeout: float                   # seconds per call of the submission
    memory_limit_mb: int | None           # the worker's memory (each process, and together)
    max_examples: int | None = None       # Hypothesis examples per property (None: ci profile)
    python: str = sys.executable
    sandbox: str = "none"                 # properties.sandbox mode of every worker
    hide: tuple[str, ...] = ()            # paths sandboxed workers must not see
    seed: int | None = None               # the grading's secret seed (grade_seed)
    forbidden: tuple[tuple[str, str], ...] = ()  # (name, operation) (properties.forbidden)
    accepted: tuple[str, ...] = ()        # conventions accepted (contract.ACCEPTABLE_...)
    figures: bool = False                 # pictures of wrong results (--report-html)

    def fingerprint(self) -> dict:
        """The settings that change a verdict (for the resume journal; it holds the seed)."""
        return {"names": list(self.names), "timeout": self.timeout,
                "call_timeout": self.call_timeout, "memory_limit_mb": self.memory_limit_mb,
                "max_examples": self.max_examples, "sandbox": self.sandbox,
                "forbidden": [list(rule) for rule in self.forbidden],
                "accepted": list(self.accepted), "seed": self.seed,
                # Verdicts journalled without pictures are not reused for pages with them.
                **({"figures": True} if self.figures else {})}

    def public(self) -> dict:
        """The settings as grades.json shows them: everything but the secret seed (and whether
        pictures were drawn: grades.json holds none, properties.grading.sheet)."""
        return {k: v for k, v in self.fingerprint().items() if k not in ("seed", "figures")}


@dataclass
class RunOutcome:
    """What one run left behind, before anyone interpreted it."""
    returncode: int | None        # None when killed at the time limit
    timed_out: bool
    duration: float
    output: str                   # the last TAIL_BYTES of stdout+stderr
    output_bytes: int             # how much it printed in all
    report: dict | None
    report_problem: str | None    # why `report` is None (missing, unreadable, not JSON)
    events: list[dict] = field(default_factory=list)
    escaped: int = 0              # processes it left behind, killed
    workdir: str = ""             # the judge's cwd (to blank it out of messages)
    key: bytes = b""              # the key the judge signed the report and record with
    suite: str = ""               # the run's copy of the suite (to blank it out of messages)
    suite_changes: list[str] = field(default_factory=list)  # files of that copy changed
    events_data: bytes = b""      # the record's bytes, as read (to check its signature)
    target: str = ""              # the copy of the submission the run graded


def command(settings: RunSettings, suite: Path, spec: str, report: Path,
            events: Path) -> list[str]:
    """The judge's command line for one submission, with the suite's copy at `suite`."""
    # Every value goes in its option's own argument (--x=value): before the grader's plugin
    # is loaded pytest does not know its options and would take a separate value for a path.
    args = [settings.python, "-P", "-m", "pytest", str(suite / "properties" / "suite.py"),
            "-q", "-s", "-p", "no:cacheprovider", "-p", "no:randomly",
            # The LeNet checks train networks: only LeNet's own is graded, when LeNet is
            # (properties.grading.plugin keeps no other).
            *([] if set(settings.names) & set(TRAINED_NAMES) else ["-m", "not lenet"]),
            "-p", "properties.grading.plugin", f"--rootdir={suite}",
            f"--confcutdir={suite}", f"--config-file={suite / 'properties' / 'suite.ini'}",
            f"--target={spec}", "--isolate", f"--sandbox={settings.sandbox}",
            *(f"--sandbox-hide={path}" for path in settings.hide), "--device=cpu",
            f"--call-timeout={settings.call_timeout:g}",
            f"--worker-cpu-seconds={settings.timeout:g}",
            f"--report-json={report}", f"--grade-events={events}", "--grade-secrets-stdin"]
    if settings.memory_limit_mb:
        args.append(f"--memory-limit-mb={settings.memory_limit_mb}")
    args += [f"--forbid={name}={operation}" for name, operation in settings.forbidden]
    args += [f"--accept={convention}" for convention in settings.accepted]
    args += [f"--grade-only={name}" for name in settings.names]
    if settings.max_examples is not None:
        args.append(f"--grade-max-examples={settings.max_examples}")
    if settings.figures:
        args.append("--report-figures")
    return args


def environment(suite: Path) -> dict[str, str]:
    """The judge's environment: the caller's, minus what would steer it, plus CI settings."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_VARIABLES}
    pythonpath = [str(suite)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update({"CI": "true", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": os.pathsep.join(pythonpath), "PYTHONSAFEPATH": "1",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                "COLUMNS": "120"})
    return env


def _limit_resources(memory_limit_mb: int | None):
    """preexec_fn: the child's resource limits (runs in the child between fork and exec)."""
    def apply():
        if memory_limit_mb:
            size = (memory_limit_mb + JUDGE_HEADROOM_MB) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES, FILE_LIMIT_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _private_folder(parent: Path, name: str, mode: int) -> Path:
    folder = Path(parent) / name
    folder.mkdir(mode=mode)
    os.chmod(folder, mode)
    return folder


class Run:
    """The suite running on one submission (see the module docstring)."""

    def __init__(self, submission: Submission, settings: RunSettings, private: Path,
                 snapshot: SuiteSnapshot):
        self.submission, self.settings, self.snapshot = submission, settings, snapshot
        # Entered, not listed, by a worker under a uid of its own (it imports the suite's
        # copy and reads the submission's); the judge's folder and files are its alone.
        self.secret_dir = Path(tempfile.mkdtemp(dir=private))
        os.chmod(self.secret_dir, 0o711)
        self.suite = snapshot.write_to(self.secret_dir / "suite")
        self.target = _private_folder(self.secret_dir, "submission", 0o755) / \
            submission.path.name
        shutil.copyfile(submission.path, self.target)
        os.chmod(self.target, 0o644)
        self.workdir = _private_folder(self.secret_dir, "judge", 0o700)
        self.report_path = self.workdir / f"report-{secrets.token_hex(8)}.json"
        self.events_path = self.workdir / f"events-{secrets.token_hex(8)}.jsonl"
        self.key = secrets.token_hex(32).encode()
        self.process: subprocess.Popen | None = None
        self.tail = bytearray()
        self.printed = 0
        self.started = self.ended = 0.0
        self.timed_out = False

    # -- lifecycle
    def start(self) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command(self.settings, self.suite, str(self.target), self.report_path,
                    self.events_path),
            cwd=self.workdir, env=environment(self.suite),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_limit_resources(self.settings.memory_limit_mb))
        reaper.own(self.process.pid)
        secrets_line = json.dumps({"key": self.key.decode(), "seed": self.settings.seed})
        try:
            self.process.stdin.write(secrets_line.encode() + b"\n")
        except OSError:
            pass  # the judge is already gone: its outcome will say so
        finally:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        os.set_blocking(self.process.stdout.fileno(), False)

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def drain(self) -> None:
        """Read what the run printed so far, keeping only the tail."""
        stream = self.process.stdout
        while True:
            try:
                chunk = os.read(stream.fileno(), 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self.printed += len(chunk)
            self.tail += chunk
            if len(self.tail) > 2 * TAIL_BYTES:
                del self.tail[:-TAIL_BYTES]

    def poll(self, now: float | None = None) -> bool:
        """True once the run is over: exited, or killed for passing its time limit."""
        if self.process.poll() is not None:
            return True
        now = time.monotonic() if now is None else now
        if now - self.started > self.settings.timeout:
            self.timed_out = True
            self.kill()
            return True
        return False

    def kill(self) -> None:
        """Kill the run's whole process group."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def finish(self) -> RunOutcome:
        """Collect the outcome, kill whatever the run left behind, remove its folders."""
        self.process.wait()
        reaper.disown(self.process.pid)
        self.ended = time.monotonic()
        self.drain()
        self.kill()  # stragglers still in the group
        escaped = reaper.end_orphans()
        suite_changes = self.snapshot.differences(self.suite)
        self.process.stdout.close()
        report, problem = read_report(self.report_path)
        events_data = read_bounded(self.events_path)
        events = parse_events(events_data)
        outcome = RunOutcome(
            returncode=None if self.timed_out else self.process.returncode,
            timed_out=self.timed_out, duration=self.ended - self.started,
            output=bytes(self.tail[-TAIL_BYTES:]).decode("utf-8", errors="replace"),
            output_bytes=self.printed, report=report, report_problem=problem, events=events,
            escaped=escaped, workdir=str(self.workdir), key=self.key, events_data=events_data,
            suite=str(self.suite), suite_changes=suite_changes, target=str(self.target))
        shutil.rmtree(self.secret_dir, ignore_errors=True)
        return outcome

    def abort(self) -> None:
        """Stop the run now (the grading is interrupted) and clean up."""
        self.kill()
        if self.process is not None:
            reaper.disown(self.process.pid)
        reaper.end_orphans()
        shutil.rmtree(self.secret_dir, ignore_errors=True)


def read_report(path: Path) -> tuple[dict | None, str | None]:
    """The --report-json object, or None and why not."""
    try:
        data = read_regular(path, REPORT_LIMIT_BYTES, own=True)
    except UnsafeFile as exc:
        return None, f"the report {exc}"
    except OSError as exc:
        return None, f"the report cannot be read ({exc.strerror})"
    if data is None:
        return None, "no report"
    if len(data) > REPORT_LIMIT_BYTES:
        return None, "the report is implausibly large"
    try:
        report = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"the report is not valid JSON ({exc})"
    if not isinstance(report, dict):
        return None, "the report is not a JSON object"
    return report, None


def read_bounded(path: Path) -> bytes:
    """A regular file's first REPORT_LIMIT_BYTES (b'' when it cannot be read, or something
    else stands at `path`)."""
    try:
        return (read_regular(path, REPORT_LIMIT_BYTES, own=True) or b"")[:REPORT_LIMIT_BYTES]
    except (UnsafeFile, OSError):
        return b""


def parse_events(data: bytes) -> list[dict]:
    """The run's own record (properties.grading.plugin), skipping any unreadable line."""
    events = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            events.append(record)
    return events


#: Prints the contract names the suite has properties for, as a JSON list.
PROBE_CODE = ("import json, properties.catalog as catalog, properties.contract as contract; "
              "print(json.dumps(sorted({p.subject for p in catalog.ALL_PROPERTIES} | "
              "set(contract.TRAINED_NAMES))))")


class CatalogProbe:
    """Which contract names the suite has properties for, asked of a copy of the suite in a
    subprocess started at once and read at the end (importing the suite imports torch, which
    the grader itself never does). A name without properties cannot be graded."""

    def __init__(self, snapshot: SuiteSnapshot, private: Path, python: str = sys.executable):
        root = snapshot.write_to(Path(tempfile.mkdtemp(dir=private)) / "suite")
        self.process = subprocess.Popen(
            [python, "-P", "-c", PROBE_CODE], cwd=root, env=environment(root),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        reaper.own(self.process.pid)

    def subjects(self, timeout: float = 300) -> set[str] | None:
        """The names, or None when the suite could not say (the grader then trusts the
        config)."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None
        reaper.disown(self.process.pid)
        lines = out.decode(errors="replace").strip().splitlines()
        if self.process.returncode != 0 or not lines:
            return None
        try:
            return set(json.loads(lines[-1]))
        except (json.JSONDecodeError, TypeError):
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        reaper.disown(self.process.pid)
