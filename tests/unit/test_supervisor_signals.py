"""The supervisor's stop signal handler against every moment it can interrupt: a handler
runs in the main thread between two of its bytecodes, so it must take no lock the
interrupted code may hold (``threading.Event.set`` inside ``Event.wait`` deadlocked)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from adminduk.supervisor import Supervisor
from shared.config import load_settings


def test_a_stop_signal_at_any_line_of_the_wait_ends_it_without_a_deadlock(
    tmp_path: Path,
) -> None:
    supervisor = Supervisor(load_settings(data_dir=tmp_path), ("relay",))
    interrupted: list[str] = []

    def signal_at_every_line(frame: FrameType, event: str, _: Any) -> Any:
        # As SIGTERM would: the handler runs right there, in the waiting thread.
        if event == "line":
            interrupted.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
            supervisor.request_stop()
        return signal_at_every_line

    def wait() -> None:
        sys.settrace(signal_at_every_line)
        try:
            supervisor._pause(30)
        finally:
            sys.settrace(None)

    waiting = threading.Thread(target=wait, daemon=True)
    started = time.monotonic()
    waiting.start()
    waiting.join(5)

    assert not waiting.is_alive(), "the wait deadlocked on the signal handler"
    assert time.monotonic() - started < 5
    assert interrupted, "the handler never ran inside the wait"
