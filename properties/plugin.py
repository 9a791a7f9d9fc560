"""convcheck's pytest plugin, registered through the `pytest11` entry point `convcheck`.

Installed, it is loaded into every pytest run of the environment, so it stays inert unless
asked: importing it imports nothing heavy (no torch), and it only adds its command-line and
ini options. It turns on when a target is chosen —

    pytest --target SPEC          (the option; any path form, since the plugin is loaded before
                                   pytest reads the command line)
    CONVCHECK_TARGET=SPEC pytest  (the environment)
    convcheck_target = SPEC       (an ini option, e.g. in [tool.pytest.ini_options])

— or when the project's own ini says `convcheck_self_tests = true` (the suite's own tests:
the reference target, plus the self-tests). Then `properties.session.Session` is registered:
it loads the target, prints it in the header, files every property outcome under its
contract name, and writes the report card and `--report-json` (see docs/contract.md).
"""
from __future__ import annotations

import os

from properties import sandbox
from properties.contract import ACCEPTABLE_CONVENTIONS, ENV_VAR, chosen_spec
from properties.forbidden import RuleError, parse_rule

INI_TARGET = "convcheck_target"
INI_SELF_TESTS = "convcheck_self_tests"
INI_REPLAY = "convcheck_replay"


def pytest_addoption(parser):
    group = parser.getgroup("convcheck")
    group.addoption("--target", default=None, metavar="SPEC",
                    help="implementation under test: reference, torch, a dotted module, a .py "
                         f"file or an .ipynb notebook (else ${ENV_VAR}, else the ini option "
                         f"{INI_TARGET})")
    group.addoption("--report-json", default=None, metavar="PATH",
                    help="write the per-name results as one JSON object to PATH")
    group.addoption("--report-html", default=None, metavar="PATH",
                    help="write the report card as a self-contained HTML page to PATH, each "
                         "wrong tensor result with its picture (with matplotlib)")
    group.addoption("--save-figures", default=None, metavar="DIR",
                    help="save each failure's minimal failing call as a script in DIR, and "
                         "beside it the picture of its wrong result (with matplotlib)")
    group.addoption("--report-figures", action="store_true",
                    help="draw the picture of each wrong tensor result into the report "
                         "(--report-json's \"figure\"; implied by --report-html and "
                         "--save-figures)")
    group.addoption("--isolate", action="store_true",
                    help="run the target in a separate worker process (graders use this)")
    group.addoption("--device", default="auto", metavar="DEVICE",
                    help="auto (CPU, plus CUDA when available), cpu, cuda, cuda:N or mps")
    group.addoption("--require-cuda", action="store_true",
                    help="a missing CUDA device is a usage error instead of skipped tests")
    group.addoption("--fashion-mnist", default=None, metavar="DIR",
                    help="a folder holding Fashion-MNIST's IDX files (plain or .gz) for the "
                         "LeNet smoke tests (else $CONVCHECK_FASHION_MNIST); never downloaded")
    group.addoption("--call-timeout", type=float, default=60.0, metavar="SECONDS",
                    help="a target call that takes longer fails (default 60)")
    group.addoption("--memory-limit-mb", type=int, default=None, metavar="MB",
                    help="with --isolate: the memory of the worker's processes, each and "
                         "together (graders use this)")
    group.addoption("--sandbox", default="none", metavar="MODE",
                    choices=("auto", *sandbox.MODES),
                    help="with --isolate: where the worker runs: bwrap (bubblewrap), uid (a uid "
                         "of its own, root only), none (default), or auto (the strongest that "
                         "works here)")
    group.addoption("--sandbox-hide", action="append", default=[], metavar="PATH",
                    help="with --sandbox bwrap: a path the worker must not see (repeatable)")
    group.addoption("--worker-processes", type=int, default=sandbox.DEFAULT_PROCESSES,
                    metavar="N", help="with --isolate: processes and threads the worker may "
                                      f"have at once (default {sandbox.DEFAULT_PROCESSES})")
    group.addoption("--worker-cpu-seconds", type=float, default=None, metavar="S",
                    help="with --isolate: CPU time the worker's processes may use together")
    group.addoption("--forbid", action="append", default=[], metavar="NAME=OPERATION",
                    help="with --isolate: NAME may not use OPERATION (torch.nn.functional."
                         "conv2d, scipy.signal.*, aten.convolution; repeatable)")
    group.addoption("--worker-disk-mb", type=int, default=sandbox.DEFAULT_DISK_MB, metavar="MB",
                    help="with --sandbox bwrap: size of the worker's scratch folder (default "
                         f"{sandbox.DEFAULT_DISK_MB})")
    group.addoption("--accept", action="append", default=[], metavar="CONVENTION",
                    choices=sorted(ACCEPTABLE_CONVENTIONS),
                    help="accept a convention of the course's notes that the contract does not "
                         "(reported as a note): " + ", ".join(sorted(ACCEPTABLE_CONVENTIONS)))
    parser.addini(INI_TARGET, "convcheck: the target checked when neither --target nor "
                              f"${ENV_VAR} names one", default=None)
    parser.addini(INI_REPLAY, "convcheck: the command a failure's 'to replay' line shows, "
                              "with {nodeid} and {spec} filled in",
                  default="pytest {nodeid} --target {spec}")
    parser.addini(INI_SELF_TESTS, "convcheck: this project is the suite itself (its self-tests "
                                  "run when no target is chosen)", type="bool", default=False)


def chosen_target(config) -> str | None:
    """The SPEC the user chose: --target, else $CONVCHECK_TARGET, else the ini option; None
    when none names one (an empty value names nothing)."""
    return chosen_spec(config.getoption("--target"), os.environ, config.getini(INI_TARGET))


def worker_sandbox(config) -> "sandbox.Sandbox":
    """The sandbox and limits of an isolated worker, from the options (--sandbox auto picks
    the strongest mode that works here). Raises sandbox.SandboxError when the mode asked for
    cannot be used."""
    mode, _ = sandbox.choose(config.getoption("--sandbox"))
    try:
        forbidden = tuple(parse_rule(rule) for rule in config.getoption("--forbid"))
    except RuleError as exc:
        raise sandbox.SandboxError(str(exc)) from None
    return sandbox.Sandbox(mode=mode, hide=tuple(config.getoption("--sandbox-hide")),
                           forbidden=forbidden,
                           memory_mb=config.getoption("--memory-limit-mb"),
                           processes=config.getoption("--worker-processes"),
                           cpu_seconds=config.getoption("--worker-cpu-seconds"),
                           disk_mb=config.getoption("--worker-disk-mb"))


def is_active(config) -> bool:
    """Whether convcheck has anything to do in this run."""
    return chosen_target(config) is not None or bool(config.getini(INI_SELF_TESTS))


def pytest_configure(config):
    if not is_active(config):
        return
    if config.getoption("--forbid") and not config.getoption("--isolate"):
        import pytest
        raise pytest.UsageError("convcheck: --forbid needs --isolate (forbidden operations are "
                                "caught in the isolated worker)")
    from properties.session import Session  # imports torch: only now
    config.pluginmanager.register(Session(config, chosen_target(config)), "convcheck-session")
