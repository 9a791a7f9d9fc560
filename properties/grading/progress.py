"""Progress while grading, on stderr: a bar redrawn in place on a terminal, one plain line
per finished submission otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time

BAR_WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.done, self.running = total, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last = ""

    def _write(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text)
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (a warning, a resumed submission) without breaking the bar."""
        if self.tty:
            self._write("\r\033[K" + text + "\n")
            self.redraw()
        else:
            self._write(text + "\n")

    def started(self) -> None:
        self.running += 1
        self.redraw()

    def finished(self, identifier: str, outcome: str, seconds: float | None) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        took = f" ({seconds:.1f} s)" if seconds is not None else ""
        self.last = f"{identifier}: {outcome}"
        if self.tty:
            self.redraw()
        else:
            self._write(f"[{self.done}/{self.total}] {identifier}: {outcome}{took}\n")

    def redraw(self) -> None:
        if not self.tty:
            return
        filled = BAR_WIDTH * self.done // max(1, self.total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = (f"[{bar}] {self.done}/{self.total} graded, {self.running} running, "
                f"{_clock(time.monotonic() - self.start)}")
        if self.last:
            line += f"  last: {self.last}"
        self._write("\r\033[K" + line[:160])

    def close(self) -> None:
        if self.tty:
            self._write("\n")
