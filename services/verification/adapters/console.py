"""The officer console: server-rendered pages over the same desk as the API (placeholder,
being written)."""

from __future__ import annotations

from fastapi import APIRouter

from services.verification.adapters.api import Authenticator
from services.verification.handlers import Desk
from shared.config import Settings


def console_router(desk: Desk, auth: Authenticator, settings: Settings) -> APIRouter:
    return APIRouter()
