"""The machine a benchmark ran on, as the report describes it."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import asyncpg

from shared.runtime.embedded import nats_server_binary

POSTGRES_SETTINGS: Final = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "commit_delay",
    "shared_buffers",
)


@dataclass(frozen=True)
class MachineInfo:
    date: str
    cpus: int
    memory_gib: float
    cpu_model: str
    kernel: str
    python: str
    postgres: str
    postgres_settings: dict[str, str]
    nats: str
    filesystem: str
    event_loop: str
    """The benchmark process's event loop: ``uvloop`` as in the services, or ``asyncio``."""


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def filesystem_of(path: Path) -> str:
    """``ext4 on /dev/vda`` for the mount that holds ``path``."""
    resolved = str(path.resolve())
    best = ("", "unknown", "unknown")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount_point, kind = line.split()[:3]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best[0]):
            best = (mount_point, kind, device)
    return f"{best[1]} on {best[2]}"


def nats_version() -> str:
    result = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or result.stderr.strip()


def event_loop_name() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def collect_machine_info(dsn: str, data_dir: Path) -> MachineInfo:
    connection = await asyncpg.connect(dsn)
    try:
        version = str(await connection.fetchval("SHOW server_version"))
        settings = {
            name: str(await connection.fetchval(f"SHOW {name}")) for name in POSTGRES_SETTINGS
        }
    finally:
        await connection.close()
    return MachineInfo(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=len(os.sched_getaffinity(0)),
        memory_gib=memory_gib(),
        cpu_model=cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        postgres=version,
        postgres_settings=settings,
        nats=nats_version(),
        filesystem=filesystem_of(data_dir),
        event_loop=event_loop_name(),
    )
