"""Composition root of the verification service: automatic checks, the officer queue,
console and API (issue 4).

At this stage it joins the runtime and serves the console port's health check; the
officer API and its handlers arrive with issue 4.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.runtime.service import add_health_check, open_resources, run_service, serve_http


def create_app(store: EventStore) -> FastAPI:
    app = FastAPI(title="adminduk officer console and API", version="0.1.0")

    add_health_check(app, store)
    return app


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with open_resources("verification", settings) as resources:
        await resources.consumers.start(resources.jetstream)
        await serve_http(create_app(resources.store), settings.host, settings.console_port, stop)


def main() -> None:
    run_service("verification", run)


if __name__ == "__main__":
    main()
