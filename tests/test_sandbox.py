"""The worker's sandbox (properties.sandbox, properties.sandbox_exec) and the limits on its whole
process tree (properties.proctree), tried with targets that probe their surroundings or flood.

Each probe is a target whose `corr2d` looks around and raises what it saw as JSON (the judge
gets it back as TargetRaised). Tests of a mode that this machine cannot run are skipped, unless
$CONVCHECK_REQUIRE_SANDBOX=1 (CI installs bubblewrap): then they fail.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

from properties import proctree, sandbox
from properties.runner import TargetCrashed, TargetRaised, WorkerRunner
from properties.target import call_function

REQUIRED = os.environ.get("CONVCHECK_REQUIRE_SANDBOX") == "1"


@functools.cache
def problem(mode: str) -> str | None:
    return sandbox.problem(mode)


def usable(mode: str) -> None:
    """Skip (or, where CI requires the sandbox, fail) when `mode` cannot run here."""
    why = problem(mode)
    if why is not None:
        if REQUIRED and mode == "bwrap":
            pytest.fail(f"$CONVCHECK_REQUIRE_SANDBOX=1 but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def bwrap():
    usable("bwrap")


def probe(tmp_path: Path, body: str, **settings):
    """Run `body` (the inside of a function; it fills the dict `info`) in a worker under
    Sandbox(**settings); what it saw, or the TargetCrashed the worker ended with."""
    target = tmp_path / "probe.py"
    target.write_text("import json, os, sys, time\n\ndef corr2d(X, K):\n    info = {}\n"
                      + textwrap.indent(textwrap.dedent(body), "    ")
                      + "\n    raise RuntimeError(json.dumps(info))\n")
    runner = WorkerRunner(str(target), timeout=120, sandbox=sandbox.Sandbox(**settings))
    try:
        runner.run(call_function, "corr2d", (torch.zeros(2, 2), torch.zeros(1, 1)), {}, None)
    except TargetRaised as exc:
        assert exc.type_name == "RuntimeError", exc.message
        return json.loads(exc.message)
    except TargetCrashed as exc:
        return exc
    finally:
        runner.close()
    raise AssertionError("the probe returned")


LOOK_AROUND = """
info["uid"] = os.getuid()
info["cwd"] = os.getcwd()
info["env"] = {k: v for k, v in os.environ.items()}
info["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
def can_write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        os.unlink(path)
        return True
    except OSError:
        return False
info["write_project"] = can_write(PROJECT + "/planted.py")
info["write_beside_target"] = can_write(os.path.join(os.path.dirname(__file__), "planted.py"))
info["write_scratch"] = can_write("scratch.txt")
info["write_home"] = can_write(os.path.expanduser("~/x"))
info["hidden"] = os.listdir(HIDDEN) if os.path.isdir(HIDDEN) else None
import socket
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1).close()
    info["network"] = "connected"
except OSError as exc:
    info["network"] = type(exc).__name__
"""


def look_around(tmp_path, hidden: Path, **settings):
    hidden.mkdir(exist_ok=True)
    (hidden / "secret.txt").write_text("the grading seed")
    body = (f"PROJECT = {str(sandbox.SUITE_ROOT)!r}\nHIDDEN = {str(hidden)!r}\n"
            + textwrap.dedent(LOOK_AROUND))
    return probe(tmp_path, body, **settings)


def test_a_bwrap_worker_sees_only_itself_and_writes_only_its_scratch(tmp_path, bwrap):
    seen = look_around(tmp_path, tmp_path / "grader-private", mode="bwrap",
                       hide=(str(tmp_path / "grader-private"),))
    assert len(seen["pids"]) <= 3, seen["pids"]        # bubblewrap's init and the worker
    assert seen["cwd"] == "/tmp" and seen["write_scratch"] and seen["write_home"]
    assert not seen["write_project"] and not seen["write_beside_target"]
    assert "secret.txt" not in (seen["hidden"] or [])
    assert seen["network"] != "connected"
    if os.geteuid() == 0:
        assert sandbox.UID_RANGE[0] <= seen["uid"] <= sandbox.UID_RANGE[1]
    else:
        assert seen["uid"] == sandbox.NOBODY


def test_the_worker_environment_is_the_same_in_every_mode_and_says_nothing_of_grading(
        tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCHECK_GRADE_TOKEN", "t" * 32)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p properties.grading.plugin")
    plain = look_around(tmp_path, tmp_path / "h", mode="none")
    assert sorted(plain["env"]) == sorted({*sandbox.environment("/x"),
                                           *(k for k in sandbox.PASSED_VARIABLES
                                             if k in os.environ)})
    assert not any("CONVCHECK" in k or "PYTEST" in k or k == "CI" for k in plain["env"])
    assert plain["cwd"] == plain["env"]["HOME"] != os.getcwd()
    if problem("bwrap") is None:
        boxed = look_around(tmp_path, tmp_path / "h", mode="bwrap")
        assert sorted(boxed["env"]) == sorted(plain["env"])


def test_the_scratch_folder_is_capped(tmp_path, bwrap):
    seen = probe(tmp_path, """
written = 0
try:
    with open("big", "wb") as handle:
        for _ in range(64):
            handle.write(b"x" * 2**20)
            handle.flush()
            written += 1
except OSError as exc:
    info["error"] = exc.errno
info["written_mb"] = written
""", mode="bwrap", disk_mb=8)
    assert seen["written_mb"] <= 8 and seen["error"] == 28    # ENOSPC


FORK_AND_HOLD = """
children = []
for _ in range({count}):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        block = bytearray({megabytes} * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(30)
        os._exit(0)
    children.append(pid)
info["forked"] = len(children)
time.sleep({wait})
"""


def test_the_process_limit_holds_for_the_whole_tree(tmp_path, bwrap):
    seen = probe(tmp_path, FORK_AND_HOLD.format(count=150, megabytes=0, wait=0),
                 mode="bwrap", processes=20)
    assert isinstance(seen, dict), seen
    assert seen["forked"] < 20


@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_memory_held_by_many_processes_together_stops_the_worker(tmp_path, mode):
    usable(mode)
    crashed = probe(tmp_path, FORK_AND_HOLD.format(count=8, megabytes=200, wait=20),
                    mode=mode, memory_mb=1200)
    assert isinstance(crashed, TargetCrashed), crashed
    assert "together used more than 1200 MB of memory" in str(crashed)


def test_cpu_time_of_the_whole_tree_is_limited(tmp_path):
    crashed = probe(tmp_path, """
for _ in range(3):
    if os.fork() == 0:
        while True:
            pass
time.sleep(60)
""", mode="none", cpu_seconds=3)
    assert isinstance(crashed, TargetCrashed), crashed
    assert "more than 3 s of CPU time" in str(crashed)


def test_nothing_the_worker_started_outlives_it(tmp_path, bwrap):
    target = tmp_path / "daemon.py"
    target.write_text(textwrap.dedent("""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env={},
                         start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def corr2d(X, K):
            return X
    """))
    before = proctree.descendants(os.getpid())
    runner = WorkerRunner(str(target), timeout=120, sandbox=sandbox.Sandbox(mode="bwrap"))
    runner.describe()
    assert len(proctree.descendants(os.getpid()) - before) >= 3   # bwrap, init, worker, daemon
    runner.close()
    assert proctree.descendants(os.getpid()) == before


def test_a_sandbox_that_cannot_run_says_why(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert sandbox.problem("bwrap") == "bubblewrap (bwrap) is not installed"
    assert sandbox.problem("none") is None
    if os.geteuid() != 0:
        assert sandbox.problem("uid") == "dropping to another uid needs root"
    mode, reasons = sandbox.choose("auto")
    assert mode in ("uid", "none") and reasons[0] == "bubblewrap (bwrap) is not installed"
    with pytest.raises(sandbox.SandboxError, match="unknown sandbox"):
        sandbox.choose("docker")


def test_a_root_sandbox_mounts_the_folders_an_unprivileged_uid_could_not_enter(tmp_path):
    if not os.path.isdir("/var/tmp"):
        pytest.skip("no /var/tmp to make a private folder in outside /tmp")
    private = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        (private / "lib" / "python").mkdir(parents=True)
        private.chmod(0o700)
        closed = tmp_path / "closed"
        closed.mkdir(mode=0o700)
        (closed / "target.py").write_text("")
        (closed / "target.py").chmod(0o644)
        needed = [Path("/usr/lib"), closed, private / "lib" / "python", closed / "target.py"]
        options = sandbox.bwrap_arguments(sandbox.Sandbox(mode="bwrap"), needed, root=True)
        text = " ".join(options)
        assert f"--tmpfs {private} " in text
        assert f"--perms 0755 --dir {private / 'lib'} " in text
        assert f"--ro-bind {private / 'lib' / 'python'} {private / 'lib' / 'python'}" in text
        assert text.index(f"--remount-ro {private}") > text.index(f"--ro-bind {private}")
        assert "--ro-bind /usr/lib" not in text      # reachable through the root bind
        # a closed folder is made open in the sandbox's fresh /tmp, with the file in it
        assert f"--perms 0755 --dir {closed} " in text
        assert f"--ro-bind {closed / 'target.py'} " in text
        assert "--cap-add CAP_SETUID" in text and "--unshare-user" not in text
        user = " ".join(sandbox.bwrap_arguments(sandbox.Sandbox(mode="bwrap", hide=(
            str(private),)), needed, root=False))
        assert "--unshare-user --uid 65534" in user and f"--tmpfs {private} " in user
        assert f"--ro-bind {private / 'lib' / 'python'}" in user   # needed, under a cover
    finally:
        shutil.rmtree(private)
