"""The officer console: server-rendered pages over the same desk as the API.

Officers are not technical, so every page is plain HTML (no script at all) in Bahasa
Indonesia, and every error the desk raises is shown on the page in words, with the HTTP
status the API would give, never as JSON. The rules themselves (who may do what, what a
decision needs) are the desk's and the domain's; the console only words them.

* :mod:`.sessions`: signed session and flash cookies, the CSRF check;
* :mod:`.labels`: the Indonesian words for states, documents, durations, dates, history;
* :mod:`.views`: what each page shows, prepared for its template;
* :mod:`.errors`: the console's own refusals and every error in words (:func:`explain`);
* :mod:`.pages`: the frame every page shares (templates, the signed-in officer, errors);
* :mod:`.routes`: one module per area, each adding its routes to the router.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.verification.adapters.api import Authenticator
from services.verification.console.pages import Console, route_class
from services.verification.console.routes.auth import add_auth_routes
from services.verification.console.routes.complaints import add_complaint_routes
from services.verification.console.routes.dashboard import add_dashboard_routes
from services.verification.console.routes.officers import add_supervisor_routes
from services.verification.console.routes.requests import add_request_routes
from services.verification.dashboard import Dashboard
from services.verification.handlers import Desk
from shared.config import Settings

__all__ = ["console_router"]


def console_router(
    desk: Desk, auth: Authenticator, settings: Settings, dashboard: Dashboard
) -> APIRouter:
    """Every console page, over ``desk``; ``dashboard`` computes the dashboard's figures."""
    console = Console(desk, auth, settings)
    router = APIRouter(include_in_schema=False, route_class=route_class(console.on_error))
    add_auth_routes(router, console)
    add_request_routes(router, console)
    add_complaint_routes(router, console)
    add_dashboard_routes(router, console, dashboard)
    add_supervisor_routes(router, console)
    return router
