"""Composition root of the intake service."""

from __future__ import annotations

import asyncio

from services.intake.adapters.http import create_app
from shared.config import Settings
from shared.runtime.service import open_resources, run_service, serve_http


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with open_resources("intake", settings) as resources:
        app = create_app(settings, resources.store)
        await serve_http(app, settings.host, settings.intake_port, stop)


def main() -> None:
    run_service("intake", run)


if __name__ == "__main__":
    main()
