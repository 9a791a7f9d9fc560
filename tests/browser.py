"""Headless Chromium for the tests of the HTML reports: a page's screenshot at a phone's
width and its rendered DOM. Skips the calling test, saying why, when no Chromium is installed
(Debian: `apt-get install chromium`; .ci/run installs it when it can)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

#: A phone's viewport width in CSS pixels (a common Android phone).
PHONE_WIDTH = 412
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: This machine has no network: nothing Chromium would fetch on its own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")


def chromium() -> str:
    found = next((shutil.which(name) for name in NAMES if shutil.which(name)), None)
    if found is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    return found


def _run(page: Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="convcheck-chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args,
                               page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=300)


def screenshot(page: Path, out: Path, width: int = PHONE_WIDTH, height: int = 3000):
    """The page rendered at `width` x `height` CSS pixels, as an (H, W, 3) float tensor in
    [0, 1] (also written to `out`)."""
    done = _run(page, f"--window-size={width},{height}", f"--screenshot={out}")
    assert out.exists(), done.stderr[-2000:]
    from matplotlib import image
    return torch.as_tensor(image.imread(out)[..., :3])


def dom(page: Path) -> str:
    """The DOM Chromium built from the page (what it parsed and would show)."""
    done = _run(page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def has_colour(pixels: torch.Tensor, hex_colour: str, at_least: int = 20,
               tolerance: float = 0.02) -> bool:
    """Whether at least `at_least` pixels have the colour (within `tolerance` per channel)."""
    rgb = torch.tensor([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    close = ((pixels - rgb).abs().amax(-1) <= tolerance).sum()
    return int(close) >= at_least
