"""convcheck's pytest plugin: choose and load the target, print it in the header, file every
property outcome under its contract name, write --report-json and the report card.

See README.md ("The target contract") and ../shared/target-contract.md.
"""
from __future__ import annotations

import os

import pytest
import torch

import properties.profiles  # noqa: F401  (registers and loads the Hypothesis profile)
from properties import contract, conventions, devices
from properties.failures import find_property_failure
from properties.report import (FAILURE_KEY, NOTE_KEY, SUBJECT_KEY, ReportCollector,
                               failure_longrepr, failure_text)
from properties.target import Target


def pytest_addoption(parser):
    group = parser.getgroup("convcheck")
    group.addoption("--target", default=None, metavar="SPEC",
                    help="implementation under test: reference (default), torch, a dotted "
                         "module, a .py file or an .ipynb notebook "
                         f"(else ${contract.ENV_VAR})")
    group.addoption("--report-json", default=None, metavar="PATH",
                    help="write the per-name results as one JSON object to PATH")
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
                    help="with --isolate: the worker's address-space limit (graders use this)")


def pytest_configure(config):
    # The suite's tensors are tiny: torch's intra-op threads only add synchronisation, which on
    # a loaded or xdist-shared machine makes F.batch_norm take ~50 ms a call instead of ~5 µs.
    torch.set_num_threads(1)
    config.addinivalue_line("markers", "selftest: a test of the suite itself (runs when no "
                                       "target is chosen)")
    config.addinivalue_line("markers", "lenet: LeNet convergence smoke tests")
    config.addinivalue_line("markers", "corpus: meta-tests over the self-test corpus "
                                       "(run with -m corpus)")
    try:
        config.convcheck_devices = devices.select_devices(config.getoption("--device"),
                                                          config.getoption("--require-cuda"))
    except devices.DeviceError as exc:
        raise pytest.UsageError(f"convcheck: {exc}") from None
    spec = contract.resolve_spec(config.getoption("--target"))
    # `pytest` alone is the project's own test run; `pytest --target SPEC` checks SPEC only.
    config.convcheck_selftests = not (config.getoption("--target")
                                      or os.environ.get(contract.ENV_VAR))
    try:
        target = Target.open(spec, isolate=config.getoption("--isolate"),
                             timeout=config.getoption("--call-timeout"),
                             memory_limit_mb=config.getoption("--memory-limit-mb"))
    except contract.TargetLoadError as exc:
        raise pytest.UsageError(f"convcheck: cannot load target {spec!r}: {exc}") from None
    target.conventions = conventions.detect(target)
    config.convcheck_target = target
    if not hasattr(config, "workerinput"):
        config.convcheck_report = ReportCollector(target)
        config.pluginmanager.register(config.convcheck_report, "convcheck-report")


def pytest_unconfigure(config):
    target = getattr(config, "convcheck_target", None)
    if target is not None:
        target.close()


def pytest_report_header(config):
    target = config.convcheck_target
    from hypothesis import settings
    lines = [f"convcheck target: {target.spec} ({target.kind}: {target.origin})",
             "defines: " + (", ".join(target.defined) or "none of the contract's names")]
    if target.dialects:
        lines.append("dialects: " + ", ".join(f"{n} {d}" for n, d in target.dialects.items()))
    for name, found in target.conventions.items():
        lines.append(f"conventions of {name}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    for index, first_line, reason in target.skipped_cells:
        lines.append(f"skipped notebook cell {index} ({first_line[:50]}): {reason}")
    profile = settings._current_profile
    lines.append(f"hypothesis profile: {profile} (max_examples={settings().max_examples}, "
                 f"derandomize={settings().derandomize}); devices: "
                 f"{', '.join(config.convcheck_devices)}; "
                 f"isolated: {target.runner.isolated}")
    if not config.convcheck_selftests:
        lines.append("suite self-tests: deselected (they run with plain `pytest`, no target)")
    return lines


#: The test modules whose tests check the target; the others test the suite itself.
TARGET_TEST_MODULES = ("test_properties.py", "test_lenet.py")


def _selftests_wanted(config) -> bool:
    return config.convcheck_selftests or "selftest" in (config.getoption("-m") or "")


def pytest_ignore_collect(collection_path, config):
    """With a target chosen, the self-test modules are not even imported (seconds of start-up
    that `pytest -x --target ...` would pay before its first failure)."""
    if not _selftests_wanted(config) and collection_path.suffix == ".py" and \
            collection_path.name.startswith("test_") and \
            collection_path.name not in TARGET_TEST_MODULES:
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that do not use the `target` fixture test the suite itself: mark them `selftest`
    and run them only when no target is chosen (plain `pytest`, or `-m selftest`). The
    properties run before the LeNet checks, which train networks: under `-x` a wrong function
    is reported in seconds."""
    items.sort(key=lambda item: item.get_closest_marker("lenet") is not None)
    for item in items:
        if "target" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.selftest)
        if item.path.name == "test_corpus.py":
            item.add_marker(pytest.mark.corpus)
    if not _selftests_wanted(config):
        kept = [i for i in items if i.get_closest_marker("selftest") is None]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_generate_tests(metafunc):
    """Run device-aware tests once per selected device."""
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", metafunc.config.convcheck_devices)


@pytest.fixture(scope="session")
def target(pytestconfig):
    """The target under test (properties.target.Target)."""
    return pytestconfig.convcheck_target


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    prop = getattr(getattr(item, "callspec", None), "params", {}).get("prop")
    subject = getattr(prop, "subject", None) or getattr(item.function, "convcheck_subject",
                                                         None)
    if subject is None:
        return
    if (SUBJECT_KEY, subject) not in report.user_properties:
        report.user_properties.append((SUBJECT_KEY, subject))
    if call.when == "call":
        report.user_properties.extend((NOTE_KEY, note)
                                      for note in item.config.convcheck_target.take_notes())
    if report.failed and call.excinfo is not None:
        failure = find_property_failure(call.excinfo.value)
        if failure is not None:
            if item.config.getoption("tbstyle") == "auto":   # --tb=long etc. keep the traceback
                report.longrepr = failure_longrepr(failure_text(
                    failure, item.nodeid, item.config.convcheck_target.spec,
                    getattr(call.excinfo.value, "__notes__", ())),
                    f"{failure.culprit}: {failure.summary}", str(item.path))
            report.user_properties.append((FAILURE_KEY, {
                "culprit": failure.culprit, "property": failure.prop or prop.title,
                "message": failure.one_line(), "diagnosis": failure.diagnosis,
                "example": failure.example}))
        else:
            exc = call.excinfo.value
            report.user_properties.append((FAILURE_KEY, {
                "culprit": subject, "property": getattr(prop, "title", item.name),
                "message": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                "diagnosis": None, "example": None}))


def pytest_terminal_summary(terminalreporter, config):
    collector = getattr(config, "convcheck_report", None)
    if collector is None:
        return
    terminalreporter.section("convcheck report card")
    for line in collector.card_lines():
        terminalreporter.write_line(line)


def pytest_sessionfinish(session):
    collector = getattr(session.config, "convcheck_report", None)
    path = session.config.getoption("--report-json")
    if collector is not None and path:
        collector.write_json(path)
