"""What convcheck's pytest plugin does once it is active (properties.plugin registers a
`Session` then): load the target, print it in the header, run the target's tests (and the
suite's self-tests when no target is chosen), file every property outcome under its contract
name, write the report card and --report-json.

See docs/contract.md for the interface this implements.
"""
from __future__ import annotations

import pytest
import torch

import properties.profiles  # noqa: F401  (registers and loads the Hypothesis profile)
from properties import contract, conventions, dependencies, devices
from properties.failures import find_property_failure
from properties.outcomes import annotate, record_of
from properties.plugin import worker_sandbox
from properties.sandbox import SandboxError
from properties.report import FailureText, ReportCollector, failure_text
from properties.target import Target

#: The test modules whose tests check the target; the others test the suite itself.
TARGET_TEST_MODULES = ("test_properties.py", "suite.py")


class Session:
    """The active plugin for one pytest run (see the module docstring)."""

    def __init__(self, config, spec: str | None):
        self.config = config
        # The suite's tensors are tiny: torch's intra-op threads only add synchronisation,
        # which on a loaded or xdist-shared machine makes F.batch_norm take ~50 ms a call
        # instead of ~5 µs.
        torch.set_num_threads(1)
        config.addinivalue_line("markers", "selftest: a test of the suite itself (runs when "
                                           "no target is chosen)")
        config.addinivalue_line("markers", "lenet: LeNet convergence smoke tests")
        try:
            self.devices = devices.select_devices(config.getoption("--device"),
                                                  config.getoption("--require-cuda"))
        except devices.DeviceError as exc:
            raise pytest.UsageError(f"convcheck: {exc}") from None
        # `pytest` alone is the project's own test run; `pytest --target SPEC` checks SPEC only.
        self.selftests = spec is None
        spec = spec or contract.DEFAULT_SPEC
        try:
            self.target = Target.open(spec, isolate=config.getoption("--isolate"),
                                      timeout=config.getoption("--call-timeout"),
                                      sandbox=worker_sandbox(config)
                                      if config.getoption("--isolate") else None)
        except SandboxError as exc:
            raise pytest.UsageError(f"convcheck: {exc}") from None
        except contract.TargetLoadError as exc:
            line = f"convcheck: cannot load target {spec!r}: {exc}"
            # As data for the grader's record of the run (properties.grading.plugin).
            config.convcheck_load_error = {"kind": exc.kind, "message": line}
            raise pytest.UsageError(line) from None
        self.target.accepted = frozenset(config.getoption("--accept"))
        self.target.conventions = conventions.detect(self.target)
        self.target.dependencies = dependencies.detect(self.target)
        # Pictures of wrong results are drawn where the failure is (properties.figures).
        self.figures = bool(config.getoption("--report-html") or
                            config.getoption("--save-figures") or
                            config.getoption("--report-figures"))
        # Read by the grader's judge-side plugin (properties.grading.plugin).
        config.convcheck_target = self.target
        config.convcheck_report = None
        from properties import fixtures
        config.pluginmanager.register(fixtures, "convcheck-fixtures")
        if not hasattr(config, "workerinput"):
            config.convcheck_report = ReportCollector(self.target)
            config.pluginmanager.register(config.convcheck_report, "convcheck-report")

    def pytest_unconfigure(self, config):
        self.target.close()

    def pytest_report_header(self, config):
        return self.header_lines()

    def header_lines(self) -> list[str]:
        """What the run checks: the target, its names, dialects and conventions, the notebook
        cells left out, the profile and devices (the header; the HTML page's too)."""
        from hypothesis import settings
        target = self.target
        lines = [f"convcheck target: {target.spec} ({target.kind}: {target.origin})",
                 "defines: " + (", ".join(target.defined) or "none of the contract's names")]
        if target.dialects:
            lines.append("dialects: " + ", ".join(f"{n} {d}" for n, d in target.dialects.items()))
        for name, found in target.conventions.items():
            lines.append(f"conventions of {name}: "
                         + ", ".join(f"{k} {v}" for k, v in found.items()))
        for name, calls in target.dependencies.items():
            lines.append(f"{name} calls the target's own {', '.join(calls)}")
        for index, first_line, reason in target.skipped_cells:
            lines.append(f"skipped notebook cell {index} ({first_line[:50]}): {reason}")
        lines.append(f"hypothesis profile: {settings.get_current_profile_name()} "
                     f"(max_examples={settings().max_examples}, "
                     f"derandomize={settings().derandomize}); devices: "
                     f"{', '.join(self.devices)}; isolated: {target.runner.isolated}")
        if not self.selftests:
            lines.append("suite self-tests: deselected (they run with plain `pytest`, no target)")
        return lines

    # -- collection
    def _selftests_wanted(self) -> bool:
        return self.selftests or "selftest" in (self.config.getoption("-m") or "")

    def pytest_ignore_collect(self, collection_path, config):
        """With a target chosen, the self-test modules are not even imported (seconds of
        start-up that `pytest -x --target ...` would pay before its first failure)."""
        if not self._selftests_wanted() and collection_path.suffix == ".py" and \
                collection_path.name.startswith("test_") and \
                collection_path.name not in TARGET_TEST_MODULES:
            return True
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        """Tests that do not use the `target` fixture test the suite itself: mark them
        `selftest` and run them only when no target is chosen (plain `pytest`, or
        `-m selftest`). The properties run before the LeNet checks, which train networks:
        under `-x` a wrong function is reported in seconds."""
        items.sort(key=lambda item: item.get_closest_marker("lenet") is not None)
        for item in items:
            if "target" not in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.selftest)
        if not self._selftests_wanted():
            kept = [i for i in items if i.get_closest_marker("selftest") is None]
            config.hook.pytest_deselected(items=[i for i in items if i not in kept])
            items[:] = kept

    def pytest_generate_tests(self, metafunc):
        """Run device-aware tests once per selected device."""
        if "device" in metafunc.fixturenames:
            metafunc.parametrize("device", self.devices)

    # -- outcomes
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Record in the report what the test found out about its contract name
        (properties.outcomes), and show a failure as a student reads it."""
        outcome = yield
        report = outcome.get_result()
        prop = getattr(getattr(item, "callspec", None), "params", {}).get("prop")
        subject = getattr(prop, "subject", None) or getattr(item.function, "convcheck_subject",
                                                             None)
        if subject is None:
            return
        title = getattr(prop, "title", item.name)
        notes = self.target.take_notes() if call.when == "call" else []
        record = None
        if report.failed and call.excinfo is not None:
            record = record_of(call.excinfo.value, subject, title, figure=self.figures)
            failure = find_property_failure(call.excinfo.value)
            if failure is not None:
                if item.config.getoption("tbstyle") == "auto":  # --tb=long keeps the traceback
                    report.longrepr = FailureText(failure_text(
                        failure, item.nodeid, self.target.spec,
                        getattr(call.excinfo.value, "__notes__", ()),
                        item.config.getini("convcheck_replay")),
                        f"{failure.culprit}: {failure.summary}")
        annotate(report, subject, record, notes, item)

    def pytest_terminal_summary(self, terminalreporter, config):
        collector = config.convcheck_report
        if collector is None or (self.selftests and not collector.any_ran()):
            return   # e.g. `pytest tests/test_cli.py`: no property looked at the reference
        terminalreporter.section("convcheck report card")
        for line in collector.card_lines():
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session):
        collector = session.config.convcheck_report
        if collector is None:
            return
        config = session.config
        if config.getoption("--report-json"):
            collector.write_json(config.getoption("--report-json"))
        if config.getoption("--report-html"):
            from properties import html
            html.write_page(config.getoption("--report-html"),
                            f"convcheck: {self.target.spec}",
                            html.card(collector.as_json(), header=self.header_lines()))
        if config.getoption("--save-figures"):
            from properties.savefigures import save_failures
            save_failures(config.getoption("--save-figures"), collector.as_json())
