"""Composition root of the WhatsApp simulator (no database, no NATS)."""

from __future__ import annotations

import asyncio
import logging

from services.notify.domain.templates import by_name
from services.simulator.app import create_app, simulator_of
from shared.config import Settings
from shared.runtime.service import run_service, serve_http

log = logging.getLogger(__name__)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    # As Meta does: free-form messages only inside the citizen's 24-hour window, and only
    # the templates this office has approved (under its names, in its language).
    app = create_app(
        settings,
        enforce_service_window=settings.simulator_service_window,
        templates=by_name(settings.whatsapp_templates),
        template_language=settings.whatsapp_template_language,
    )
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
