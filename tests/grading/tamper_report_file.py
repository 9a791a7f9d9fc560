"""Wrong corr2d that, while loading, finds the judge's --report-json and --grade-events paths
in its parent's command line, writes an all-pass report and record there, and leaves a
detached process (setsid) rewriting them until long after the run.

Sandboxed, its parent's command line names no report, and nothing outside its /tmp is
writable: its wrong corr2d fails.

convcheck-grade: status=error|ok corr2d=error|fail pool2d=error|missing
"""
import json
import os
import time

import torch

NAMES = ["corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
         "pool2d", "batch_norm", "Conv2D", "BatchNorm", "conv2d", "max_pool2d",
         "avg_pool2d", "LeNet"]


def _option(args, flag):
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def _forge(report_path, events_path, target):
    report = {"target": target, "defined": NAMES, "conventions": {},
              "functions": {n: {"status": "pass", "passed": 1, "failed": 0, "skipped": 0,
                                "failures": []} for n in NAMES}}
    with open(report_path, "w") as handle:
        json.dump(report, handle)
    if events_path:
        with open(events_path, "w") as handle:
            handle.write(json.dumps({"event": "collected", "items": {n: 1 for n in NAMES},
                                     "defined": NAMES}) + "\n")
            for n in NAMES:
                handle.write(json.dumps({"event": "test", "subject": n, "culprit": n,
                                         "outcome": "passed", "failure": None}) + "\n")
            handle.write(json.dumps({"event": "finished", "exitstatus": 0}) + "\n")


try:
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as _handle:
        _args = [a.decode() for a in _handle.read().split(b"\0")]
    _report, _events = _option(_args, "--report-json"), _option(_args, "--grade-events")
    if _report:
        _forge(_report, _events, _option(_args, "--target"))
        if os.fork() == 0:
            os.setsid()
            _end = time.time() + 120
            while time.time() < _end:
                try:
                    _forge(_report, _events, _option(_args, "--target"))
                except OSError:
                    pass
                time.sleep(0.05)
            os._exit(0)
except OSError:
    pass


def corr2d(X, K):
    return torch.zeros((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1))
