"""Where each process spends its CPU, sampled with py-spy while a step runs.

``py-spy record --nonblocking --format raw`` writes one line per distinct stack with its
sample count; :func:`summarise` folds the stacks into a few kinds of work (HTTP client,
web framework, telemetry, Postgres driver, ...) by the files their frames come from. A
stack counts towards every kind it passes through, so the shares overlap; "busy" is the
share of samples that were not waiting in the event loop's ``select``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PY_SPY: Final = Path(sys.executable).parent / "py-spy"
RATE: Final = 100
"""Samples per second."""


def _through(*needles: str) -> Callable[[Sequence[str]], bool]:
    def test(frames: Sequence[str]) -> bool:
        return any(needle in frame for frame in frames for needle in needles)

    return test


def _failed_sniffio_import(frames: Sequence[str]) -> bool:
    """httpcore's ``current_async_library`` tries ``import sniffio`` on every call; without
    the package each try searches ``sys.path`` again (a failed import is not cached)."""
    return _through("current_async_library")(frames) and _through("<frozen importlib")(frames)


KINDS: Final[tuple[tuple[str, Callable[[Sequence[str]], bool]], ...]] = (
    ("HTTP client (httpx, httpcore)", _through("(httpx/", "(httpcore/")),
    ("  of it, httpcore's pool bookkeeping", _through("_assign_requests_to_connections")),
    ("  of it, failed `import sniffio` in httpcore", _failed_sniffio_import),
    (
        "web framework (uvicorn, Starlette, FastAPI)",
        _through("(uvicorn/", "(starlette/", "(fastapi/"),
    ),
    ("OpenTelemetry", _through("(opentelemetry/")),
    ("Postgres driver (asyncpg)", _through("(asyncpg/")),
    ("NATS client, FastStream", _through("(nats/", "(faststream/")),
    ("pydantic", _through("(pydantic/", "(pydantic_core/")),
    ("json", _through("(json/")),
    ("logging", _through("(logging/")),
    ("socket reads and writes", _through("(asyncio/selector_events.py")),
)
IDLE_FRAME: Final = "select (selectors.py"


def available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


@dataclass(frozen=True)
class Profile:
    role: str
    samples: int
    busy: float
    """Share of samples not waiting in ``select``."""
    kinds: dict[str, float]
    """Share of busy samples whose stack passes through each kind of work."""
    top: list[tuple[str, float]]
    """The project's own functions with the largest inclusive share of busy samples."""


def _function(frame: str) -> str:
    """``Intake.on_message (services/intake/handlers.py)`` from a raw py-spy frame
    ``Intake.on_message (services/intake/handlers.py:101)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})"


def _ours(frame: str) -> bool:
    """A frame of the project's code (py-spy shortens paths to their ``sys.path`` entry)."""
    return any(f" ({root}/" in frame for root in ("services", "shared", "adminduk", "benchmarks"))


def summarise(role: str, raw: str, top: int = 6) -> Profile:
    samples = busy = 0
    kinds: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        if IDLE_FRAME in frames[-1]:
            continue
        busy += count
        for kind, test in KINDS:
            if test(frames):
                kinds[kind] += count
        loop = [i for i, frame in enumerate(frames) if frame.startswith("BaseEventLoop._run_once")]
        tasks = frames[loop[-1] + 1 :] if loop else frames
        for function in {_function(frame) for frame in tasks if _ours(frame)}:
            if not function.startswith(("main (", "run_service (", "<module> (", "_serve (")):
                ours[function] += count
    share = 1 / busy if busy else 0.0
    return Profile(
        role=role,
        samples=samples,
        busy=busy / samples if samples else 0.0,
        kinds={kind: kinds[kind] * share for kind, _ in KINDS},
        top=[(function, count * share) for function, count in ours.most_common(top)],
    )


async def record(pids: dict[str, int], seconds: float, folder: Path) -> list[Profile]:
    """Sample every process in ``pids`` (role -> pid) for ``seconds`` at once."""
    binary = str(PY_SPY) if PY_SPY.exists() else (shutil.which("py-spy") or "py-spy")
    runs: dict[str, tuple[asyncio.subprocess.Process, Path]] = {}
    for role, pid in pids.items():
        output = folder / f"profile-{role}.txt"
        process = await asyncio.create_subprocess_exec(
            binary,
            "record",
            "--nonblocking",
            "--rate",
            str(RATE),
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--output",
            str(output),
            "--pid",
            str(pid),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        runs[role] = (process, output)
    for process, _ in runs.values():
        try:
            await asyncio.wait_for(process.wait(), seconds + 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    # Parsed only once every sampler has stopped, so that no profile shows the parsing.
    return [
        summarise(role, output.read_text(errors="replace"))
        for role, (_, output) in runs.items()
        if output.exists()
    ]
