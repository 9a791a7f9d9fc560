"""`convcheck grade SUBMISSION...` (also `python -m properties.grade`): grade a whole class.

Runs the suite once per submission (a `.py` file, an `.ipynb` notebook, or a folder of them:
one row per file), each in its own process group with a wall-clock and a memory limit,
several at a time, the submission's code in the suite's isolated worker so it can never touch
the judge; writes grades.csv and grades.json, per-student Markdown feedback on request, HTML
pages with --report-html (properties.grading.pages: one per submission, with the pictures of
wrong results, and a class overview), and a class summary; with --gradescope, Gradescope's
results.json; with --shard K/N, one N-th of the class, and --merge puts the shards together.
See README.md ("Grading a class").

    convcheck grade submissions/ --jobs 4 --out results --feedback results/feedback

The submissions' code runs in a sandbox (--sandbox, grade_confinement: bubblewrap, else a uid
of its own when root, else a loud "not sandboxed"), with inputs drawn from a secret seed
(grade_seed).

Modules: grade_config (points, TOML), grade_submissions (what is graded), grade_confinement
(the sandbox), grade_seed (the secret seed), grade_run (one run and its limits), grade_plugin
(the judge-side pytest plugin), grade_reaper (processes runs leave behind), grade_verdict (what
a run means, tamper checks), grade_watch (the suite snapshot, watched files), grade_safefile
(reading what a submission may have replaced), grade_journal (--resume), grade_sheet (CSV,
JSON, summary), grade_feedback (Markdown), grade_progress (stderr), gradescope (results.json),
shards (--shard, --merge).

Exit status: 0 when the sheet was written, 2 for a usage error (or no sandbox with
--require-sandbox), 130 when interrupted (the finished submissions are in the journal: run
again with --resume).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import select
import signal
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from properties import sandbox
from properties.contract import ACCEPTABLE_CONVENTIONS, ASSIGNMENTS
from properties.grading import reaper
from properties.grading.confinement import NotSandboxed, decide, hidden
from properties.grading.config import ConfigError, GradingConfig, load_config
from properties.grading.feedback import write_feedback
from properties.grading.gradescope import (VISIBILITIES, results, unusable_results,
                                           write_results)
from properties.grading.journal import Journal, default_path, recorded_seed, run_key
from properties.grading.pages import write_pages
from properties.grading.progress import Progress
from properties.grading.run import CatalogProbe, Run, RunSettings
from properties.grading.seed import new_seed, store_seed, stored_seed
from properties.grading.shards import (SHARD_KEY, ShardError, in_shard, merge, parse_shard,
                                       shard_settings)
from properties.grading.sheet import CSV_NAME, JSON_NAME, summary, summary_lines, write_sheet
from properties.grading.submissions import Submission, SubmissionError, discover, file_digest
from properties.grading.verdict import Verdict, judge
from properties.grading.watch import SuiteSnapshot, Watch

DEFAULTS = {"timeout": 900.0, "call_timeout": 30.0, "memory_limit_mb": 3072,
            "max_examples": None, "jobs": max(1, min(4, os.cpu_count() or 1))}
POLL_SECONDS = 0.2


def _positive(kind):
    """An argparse type: a number of `kind` above zero."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above zero: {text!r}")
        return value
    convert.__name__ = kind.__name__
    return convert


def parser(prog: str = "python -m properties.grade") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Grade a class: run the convcheck suite on every submission, each in its "
                    "own process with limits, and write a grade sheet.")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help=".py files, .ipynb notebooks, or folders of them (one row per file)")
    p.add_argument("--out", default=".", metavar="DIR",
                   help=f"where {CSV_NAME} and {JSON_NAME} go (default: .)")
    p.add_argument("--config", default=None, metavar="TOML",
                   help="points per contract name and default limits "
                        "(default: properties/grading/grading.toml)")
    p.add_argument("--assignment", default=None, choices=tuple(ASSIGNMENTS),
                   help="the names graded, of the config's [points]: textbook (d2l's "
                        "chapter 6, the default scheme's), functional or all")
    p.add_argument("--accept", action="append", default=[], metavar="CONVENTION",
                   choices=tuple(ACCEPTABLE_CONVENTIONS),
                   help="accept a convention of the course's notes (as the config's accept; "
                        "repeatable): " + ", ".join(ACCEPTABLE_CONVENTIONS))
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="grade only this name of the config (repeatable)")
    p.add_argument("--jobs", "-j", type=_positive(int), default=None, metavar="N",
                   help="submissions graded at once (default: the config's [limits], else "
                        f"{DEFAULTS['jobs']})")
    p.add_argument("--timeout", type=_positive(float), default=None, metavar="SECONDS",
                   help="wall-clock limit per submission (default: the config's [limits], "
                        f"else {DEFAULTS['timeout']:g})")
    p.add_argument("--call-timeout", type=_positive(float), default=None, metavar="SECONDS",
                   help="limit per call of the submission's code (default: the config's "
                        f"[limits], else {DEFAULTS['call_timeout']:g})")
    p.add_argument("--memory-limit-mb", type=_positive(int), default=None, metavar="MB",
                   help="address-space limit of the process running a submission (default: "
                        f"the config's [limits], else {DEFAULTS['memory_limit_mb']}; torch "
                        "itself needs about 1000)")
    p.add_argument("--max-examples", type=_positive(int), default=None, metavar="N",
                   help="Hypothesis examples per property (default: the config's [limits], "
                        "else the suite's ci profile)")
    p.add_argument("--feedback", default=None, metavar="DIR",
                   help="write one Markdown feedback file per submission into DIR")
    p.add_argument("--report-html", default=None, metavar="DIR",
                   help="write one HTML page per submission (its card, failures and the "
                        "pictures of wrong results) and a class overview (DIR/index.html)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the journal of an interrupted run: finished submissions whose "
                        "file and settings did not change are not graded again")
    p.add_argument("--journal", default=None, metavar="PATH",
                   help="the resume journal (default: ~/.cache/convcheck/grade-journals/...)")
    p.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    p.add_argument("--sandbox", default="auto", choices=("auto", *sandbox.MODES),
                   help="where submissions' code runs: bwrap (bubblewrap), uid (a uid of its "
                        "own, root only), none, or auto (default: the strongest that works "
                        "here)")
    p.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade when no sandbox works here")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="the seed of the inputs drawn (default: the one stored in the output "
                        "folder by an earlier grading, else a new secret one)")
    machines = p.add_argument_group("grading on several machines (docs/sharding.md)")
    machines.add_argument("--shard", default=None, metavar="K/N",
                          help="grade only shard K of N of the submissions (split by a hash "
                               "of their identifiers; give every shard the same arguments and "
                               "--seed), for --merge")
    machines.add_argument("--merge", default=None, metavar="OUT",
                          help="merge the output folders of the N shards, given as the SUBMISSION "
                               "arguments, into OUT: the files one run over the class writes")
    gradescope = p.add_argument_group("Gradescope (docs/gradescope.md)")
    gradescope.add_argument("--gradescope", default=None, metavar="RESULTS_JSON",
                            help="also write Gradescope's results.json for the one submission "
                                 "graded (the SUBMISSION arguments must name exactly one file)")
    gradescope.add_argument("--gradescope-visibility", default="visible", choices=VISIBILITIES,
                            help="when students see the Gradescope results (default: visible)")
    return p


def _setting(args, config, key):
    value = getattr(args, key)
    if value is not None:
        return value
    return config.limits.get(key, DEFAULTS[key])


class Grader:
    """Runs the submissions (see the module docstring), watching the files it relies on."""

    def __init__(self, settings: RunSettings, snapshot: SuiteSnapshot, watch: Watch,
                 journal: Journal, progress: Progress, private: Path, jobs: int):
        self.settings, self.snapshot, self.watch = settings, snapshot, watch
        self.journal, self.progress, self.private = journal, progress, private
        self.jobs = max(1, jobs)
        self.replacements = [(str(private), "<grader>")]
        self.suspects: set[str] = set()
        self.blame: dict[str, list[str]] = {}
        self.active: list[Run] = []

    # -- watching
    def _check(self, window: list[Run]) -> list[str]:
        """Changes to watched files since the last check, blamed on the runs in `window`."""
        changed = [self.watch.label(p) for p in self.watch.changes()]
        if changed:
            names = sorted({run.submission.identifier for run in window})
            for name in names:
                self.suspects.add(name)
                self.blame.setdefault(name, []).extend(changed)
            self.progress.message(f"warning: {', '.join(changed[:5])} changed while "
                                  f"{', '.join(names) or 'nothing'} ran (repaired)")
        return changed

    # -- running
    def _judge(self, run: Run) -> Verdict:
        outcome = run.finish()
        return judge(run.submission, outcome, list(self.settings.names),
                     replacements=self.replacements, timeout=self.settings.timeout)

    def _record(self, verdict: Verdict) -> None:
        self.watch.accept(self.journal.path, self.journal.record(verdict))
        self.progress.finished(verdict.identifier, _outcome_words(verdict), verdict.duration)

    def run_all(self, submissions: list[Submission], jobs: int | None = None) -> dict:
        """Grade `submissions` `jobs` at a time; their verdicts by identifier."""
        jobs = jobs or self.jobs
        pending, verdicts = deque(submissions), {}
        while pending or self.active:
            while pending and len(self.active) < jobs:
                submission = pending.popleft()
                self._check(self.active)
                run = Run(submission, self.settings, self.private, self.snapshot)
                run.start()
                self.active.append(run)
                self.progress.started()
            streams = {run.fileno(): run for run in self.active}
            ready, _, _ = select.select(list(streams), [], [], POLL_SECONDS)
            for fd in ready:
                streams[fd].drain()
            now = time.monotonic()
            for run in list(self.active):
                if run.poll(now):
                    self.active.remove(run)
                    verdict = self._judge(run)
                    self._check([*self.active, run])
                    verdicts[verdict.identifier] = verdict
                    if verdict.identifier in self.suspects:
                        self.progress.finished(verdict.identifier,
                                               "changed watched files (see above)", None)
                    else:
                        self._record(verdict)
            self.progress.redraw()
        return verdicts

    def regrade_suspects(self, by_id: dict[str, Submission], verdicts: dict) -> None:
        """Grade each suspect alone: the one whose run changes watched files is an error."""
        for identifier in sorted(self.suspects):
            self.suspects.discard(identifier)
            self.blame.pop(identifier, None)
            self.progress.message(f"grading {identifier} again on its own")
            self.progress.total += 1
            verdict = self.run_all([by_id[identifier]], jobs=1)[identifier]
            if identifier in self.suspects:  # its own run changed what the grader relies on
                self.suspects.discard(identifier)
                changed = sorted(set(self.blame.pop(identifier, [])))
                verdict = Verdict(identifier=verdict.identifier, path=verdict.path,
                                  sha256=verdict.sha256, status="error",
                                  reason="changed files the grader relies on: "
                                         + ", ".join(changed[:5]),
                                  names={n: "error" for n in verdict.names},
                                  duration=verdict.duration)
                self.watch.accept(self.journal.path, self.journal.record(verdict))
            verdicts[identifier] = verdict

    def abort(self) -> None:
        for run in self.active:
            run.abort()
        self.active = []


def _outcome_words(verdict: Verdict) -> str:
    passed = sum(1 for s in verdict.names.values() if s == "pass")
    words = f"{passed}/{len(verdict.names)} pass"
    if verdict.status != "ok":
        words += f", {verdict.status}: {verdict.reason[:80]}"
    return words


def _changed_files(submissions: list[Submission], verdicts: dict) -> None:
    """A submission whose file changed while the class was graded is an error."""
    for submission in submissions:
        if file_digest(submission.path) != submission.sha256:
            old = verdicts[submission.identifier]
            verdicts[submission.identifier] = Verdict(
                identifier=old.identifier, path=old.path, sha256=old.sha256, status="error",
                reason="the file changed while the class was being graded",
                names={n: "error" for n in old.names}, duration=old.duration)


def _gradable(config: GradingConfig, subjects: set[str] | None):
    """The config without the names the suite has no property for, and why they were left
    out (nobody could earn their points)."""
    if subjects is None:
        return config, {}
    left_out = {n: "the suite has no property about it" for n in config.names
                if n not in subjects}
    if not left_out:
        return config, {}
    kept = {n: p for n, p in config.points.items() if n not in left_out}
    return dataclasses.replace(config, points=kept), left_out


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def _lock(path: Path):
    """Hold an exclusive lock on `path` for the life of this process (another grading that
    writes the same sheet or journal is refused rather than mixed with this one)."""
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 - kept open while grading
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def main(argv: list[str] | None = None, prog: str = "python -m properties.grade") -> int:
    """The command (`convcheck grade` passes its own `prog` for the usage lines)."""
    args = parser(prog).parse_args(argv)
    if args.merge:
        return _merge(args)
    try:
        shard = parse_shard(args.shard, args.seed) if args.shard else None
        config = load_config(args.config)
        if args.assignment:
            config = config.for_assignment(args.assignment)
        if args.accept:
            config = dataclasses.replace(
                config, accepted=tuple(dict.fromkeys((*config.accepted, *args.accept))))
    except (ShardError, ConfigError) as exc:
        print(f"convcheck grade: {exc}", file=sys.stderr)
        return 2
    try:
        everyone = submissions = discover(args.submissions)
        if shard:
            submissions = [s for s in everyone if in_shard(s.identifier, *shard)]
        if args.gradescope and len(submissions) != 1:
            raise SubmissionError(
                "Gradescope grades one file per submission; found "
                + ", ".join(s.identifier for s in submissions)
                + ": submit exactly one .py file or .ipynb notebook")
    except SubmissionError as exc:
        print(f"convcheck grade: {exc}", file=sys.stderr)
        if args.gradescope:
            write_results(Path(args.gradescope),
                          unusable_results(str(exc), config, args.gradescope_visibility))
        return 2
    names = config.names
    if args.only:
        unknown = [n for n in args.only if n not in config.points]
        if unknown:
            print(f"convcheck grade: --only {', '.join(unknown)}: not graded by "
                  f"{config.source}", file=sys.stderr)
            return 2
        config = dataclasses.replace(config, points={n: p for n, p in config.points.items()
                                                     if n in args.only})
        names = config.names
    jobs = _setting(args, config, "jobs")
    out = Path(args.out).resolve()
    feedback = Path(args.feedback).resolve() if args.feedback else None
    pages = Path(args.report_html).resolve() if args.report_html else None
    journal_path = Path(args.journal).resolve() if args.journal else default_path(out)
    locks = [_lock(out / ".convcheck-grade.lock"),
             _lock(journal_path.with_name(journal_path.name + ".lock"))]
    if None in locks:
        print(f"convcheck grade: another grading is writing to {out} or {journal_path}; "
              "wait for it or stop it first", file=sys.stderr)
        return 2
    try:
        confinement = decide(args.sandbox, args.require_sandbox)
    except (NotSandboxed, sandbox.SandboxError) as exc:
        print(f"convcheck grade: {exc}", file=sys.stderr)
        return 2
    for line in confinement.warning():
        print(line, file=sys.stderr)
    seed = args.seed if args.seed is not None else stored_seed(out)
    if seed is None and args.resume:
        seed = recorded_seed(journal_path)
    seed = new_seed() if seed is None else seed
    store_seed(out, seed)
    reaper.become_subreaper()
    progress = Progress(len(submissions), enabled=not args.no_progress)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="convcheck-grade-") as private_name:
        private = Path(private_name)
        os.chmod(private, 0o711)  # entered, not listed, by a worker under a uid of its own
        snapshot = SuiteSnapshot()
        probe = CatalogProbe(snapshot, private)
        settings = RunSettings(
            names=tuple(names), timeout=float(_setting(args, config, "timeout")),
            call_timeout=float(_setting(args, config, "call_timeout")),
            memory_limit_mb=_setting(args, config, "memory_limit_mb"),
            max_examples=_setting(args, config, "max_examples"), sandbox=confinement.mode,
            hide=hidden(private, out, journal_path.parent, feedback, pages,
                        Path(os.path.commonpath([str(s.path.parent) for s in everyone]))),
            seed=seed, accepted=config.accepted, forbidden=tuple((name, operation)
                                       for name, operations in config.forbidden.items()
                                       if name in names for operation in operations),
            figures=pages is not None)
        journal = Journal(journal_path, run_key(snapshot.digest, settings.fingerprint()),
                          resume=args.resume, seed=seed)
        watched_files = [out / CSV_NAME, out / JSON_NAME, journal_path,
                         *(s.path for s in submissions),
                         *([Path(args.gradescope).resolve()] if args.gradescope else [])]
        watch = Watch(files=watched_files,
                      folders=[f for f in (feedback, pages) if f],
                      labels={out: "the output folder",
                              **({feedback: "the feedback folder"} if feedback else {}),
                              **({pages: "the HTML pages' folder"} if pages else {}),
                              journal_path: "the resume journal"})
        grader = Grader(settings, snapshot, watch, journal, progress, private, jobs)
        if args.resume:
            progress.message(f"resume: {len(journal.entries)} verdict(s) in {journal_path}"
                             + (f"; {journal.ignored} from another version of the suite or "
                                "other settings ignored" if journal.ignored else "")
                             + (f"; {journal.forged} line(s) without a valid signature "
                                "ignored" if journal.forged else ""))
        verdicts, todo = {}, []
        for submission in submissions:
            kept = journal.finished(submission.spec, submission.sha256)
            if kept is not None:
                kept.identifier = submission.identifier
                verdicts[submission.identifier] = kept
                progress.finished(submission.identifier, "journalled: "
                                  + _outcome_words(kept), None)
            else:
                todo.append(submission)
        try:
            verdicts.update(grader.run_all(todo))
            grader.regrade_suspects({s.identifier: s for s in submissions}, verdicts)
        except KeyboardInterrupt:
            grader.abort()
            probe.stop()
            progress.close()
            print(f"convcheck grade: interrupted; {len(journal.entries)} submission(s) are "
                  f"journalled in {journal_path}: run the same command with --resume to "
                  "go on", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)
        progress.close()
        _changed_files(submissions, verdicts)
        ordered = [verdicts[s.identifier] for s in submissions]
        config, not_graded = _gradable(config, probe.subjects())
        for name, why in not_graded.items():
            print(f"convcheck grade: {name} is not graded: {why}", file=sys.stderr)
        sheet_settings = {**settings.public(), "suite": snapshot.digest,
                          "sandbox": confinement.describe()}
        if not_graded:
            sheet_settings["not_graded"] = not_graded
        if shard:
            sheet_settings[SHARD_KEY] = shard_settings(*shard, everyone, journal.key)
        if feedback:
            write_feedback(feedback, ordered, config)
        if pages:
            write_pages(pages, ordered, config)
        if args.gradescope:
            write_results(Path(args.gradescope),
                          results(ordered[0], config, time.monotonic() - started,
                                  args.gradescope_visibility))
        left = reaper.end_orphans()  # every run is over: nothing of theirs may outlive them
        if left:
            print(f"convcheck grade: warning: {left} process(es) of finished runs were still "
                  "running (killed)", file=sys.stderr)
        csv_path, json_path = write_sheet(out, ordered, config, sheet_settings)  # last
    elapsed = time.monotonic() - started
    for line in summary_lines(summary(ordered, config), config):
        print(line)
    print(f"wrote {csv_path} and {json_path}" + (f", feedback in {feedback}" if feedback
                                                  else "")
          + (f", HTML pages in {pages}" if pages else "")
          + (f", Gradescope results in {args.gradescope}" if args.gradescope else ""))
    graded = len(todo)
    print(f"graded {graded} submission(s) in {elapsed:.0f} s with {jobs} job(s) (limit "
          f"{settings.timeout:g} s each, so at most about "
          f"{-(-graded // max(1, jobs)) * settings.timeout:.0f} s)")
    return 0


def _merge(args) -> int:
    """`--merge OUT SHARD_DIR...` (properties.grading.shards)."""
    out = Path(args.merge).resolve()
    journal_path = Path(args.journal).resolve() if args.journal else default_path(out)
    try:
        verdicts, config, csv_path, json_path = merge(
            out, [Path(folder) for folder in args.submissions],
            Path(args.feedback).resolve() if args.feedback else None, journal_path, args.seed)
    except ShardError as exc:
        print(f"convcheck grade: {exc}", file=sys.stderr)
        return 2
    if args.report_html:  # from the shards' grades.json, which keeps no pictures
        write_pages(Path(args.report_html).resolve(), verdicts, config)
    for line in summary_lines(summary(verdicts, config), config):
        print(line)
    print(f"merged {len(args.submissions)} shard(s): wrote {csv_path} and {json_path}"
          + (f", feedback in {args.feedback}" if args.feedback else "")
          + (f", HTML pages (without pictures) in {args.report_html}" if args.report_html
             else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
