"""Composition root of the issuance service: working days, pickup dates, SIAK (issue 5).

At this stage the process joins the runtime (event store, NATS, its durable consumers) and
registers no handler yet; its handlers arrive with the issue named above.
"""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.runtime.service import open_resources, run_service


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with open_resources("issuance", settings) as resources:
        await resources.consumers.start(resources.jetstream)
        await stop.wait()


def main() -> None:
    run_service("issuance", run)


if __name__ == "__main__":
    main()
