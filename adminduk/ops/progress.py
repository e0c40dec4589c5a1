"""A progress line for long replays and rebuilds: done/total, rate and time left.

Drawn on stderr with a carriage return, only when stderr is a terminal: piped or captured
output (a script, a log file, CI) gets no progress at all, only the command's own lines.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Final, TextIO

REDRAW_EVERY: Final = 0.2
"""Seconds between redraws: often enough to look alive, rarely enough to cost nothing."""


def clock(seconds: float) -> str:
    """``0:07``, ``3:05``, ``1:02:09``."""
    whole = max(int(seconds + 0.5), 0)
    hours, rest = divmod(whole, 3600)
    minutes, second = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{second:02d}" if hours else f"{minutes}:{second:02d}"


class ProgressLine:
    """``label: done/total events (percent)  rate events/s  ETA m:ss  note`` on one line.

    ``done`` and ``total`` count events of the log the run goes through (positions), so the
    rate and the time left hold however many of them the handler takes."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.total = max(total, 0)
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = ""
        self._width = 0
        self.done = 0
        self.note = ""

    def text(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.label}: {self.done:,}/{self.total:,} events"]
        if self.total:
            parts[0] += f" ({100 * min(self.done / self.total, 1.0):.0f}%)"
        parts.append(f"{rate:,.0f} events/s")
        if rate > 0 and self.total > self.done:
            parts.append(f"ETA {clock((self.total - self.done) / rate)}")
        elif self.done >= self.total:
            parts.append(f"in {clock(elapsed)}")
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def update(self, done: int, *, total: int | None = None, note: str | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if note is not None:
            self.note = note
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at >= REDRAW_EVERY:
            self._draw(now)

    def _draw(self, now: float) -> None:
        line = self.text(now)
        if line == self._drawn:
            return
        self._drawn = line
        padding = " " * max(self._width - len(line), 0)
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()
        self._width = len(line)
        self._drawn_at = now

    def interrupt(self) -> None:
        """End the line drawn so far, so that other output starts on a line of its own."""
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
            self._drawn = ""

    def close(self) -> None:
        """The last figures, and the line ended (nothing when not a terminal)."""
        if not self.enabled:
            return
        if self._width:  # a line is showing: its last figures, then end it
            self._draw(time.monotonic())
            self.stream.write("\n")
        self.stream.flush()
        self.enabled = False

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
