"""The WhatsApp simulator's process (no database, no NATS). The composition root starts it
with the templates the office has approved (notify's, under the office's names)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from services.simulator.app import create_app, simulator_of
from services.simulator.cloud import ApprovedTemplate
from shared.config import Settings
from shared.runtime.service import serve_http

log = logging.getLogger(__name__)


async def run(
    settings: Settings, stop: asyncio.Event, *, templates: Mapping[str, ApprovedTemplate]
) -> None:
    # As Meta does: free-form messages only inside the citizen's 24-hour window, and only
    # the templates this office has approved (under its names, in its language).
    app = create_app(
        settings,
        enforce_service_window=settings.simulator_service_window,
        templates=templates,
        template_language=settings.whatsapp_template_language,
    )
    base = f"http://{settings.host}:{settings.simulator_port}"
    log.info("WhatsApp simulator: chat page %s/ , Cloud API %s/v21.0", base, base)
    try:
        await serve_http(app, settings.host, settings.simulator_port, stop)
    finally:
        await simulator_of(app).aclose()
