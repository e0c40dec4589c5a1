"""Composition root of the WhatsApp simulator (no database, no NATS)."""

from __future__ import annotations

import asyncio
import logging

from services.simulator.app import create_app, simulator_of
from shared.config import Settings
from shared.runtime.service import run_service, serve_http

log = logging.getLogger(__name__)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    app = create_app(settings)
    base = f"http://{settings.host}:{settings.simulator_port}"
    log.info("WhatsApp simulator: chat page %s/ , Cloud API %s/v21.0", base, base)
    try:
        await serve_http(app, settings.host, settings.simulator_port, stop)
    finally:
        await simulator_of(app).aclose()


def main() -> None:
    run_service("simulator", run)


if __name__ == "__main__":
    main()
