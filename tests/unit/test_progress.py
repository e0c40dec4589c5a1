"""The replay and rebuild progress line: drawn only on a terminal."""

from __future__ import annotations

import io

from adminduk.ops.progress import ProgressLine, clock


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_when_stderr_is_not_a_terminal() -> None:
    out = io.StringIO()
    with ProgressLine("replay", 1000, stream=out) as line:
        line.update(500)
        line.interrupt()
    assert not line.enabled
    assert out.getvalue() == ""


def test_a_terminal_gets_done_total_rate_and_eta_on_one_line() -> None:
    out = Terminal()
    line = ProgressLine("verification: rebuilding", 100_000, stream=out)
    line.started -= 2.0  # two seconds in
    line.update(40_000, note="12,000 events applied")
    drawn = out.getvalue()
    assert drawn.startswith("\r")
    assert "40,000/100,000 events (40%)" in drawn
    assert "events/s" in drawn and "ETA 0:0" in drawn and "12,000 events applied" in drawn
    line.close()
    assert out.getvalue().endswith("\n")
    assert out.getvalue().count("\n") == 1


def test_clock() -> None:
    assert (clock(7), clock(185), clock(3729)) == ("0:07", "3:05", "1:02:09")
