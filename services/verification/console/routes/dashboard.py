"""The office dashboard's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.verification.console.pages import Console
from services.verification.dashboard import Dashboard, Scope, page_view


def add_dashboard_routes(router: APIRouter, console: Console, dashboard: Dashboard) -> None:
    async def dashboard_page(request: Request) -> Response:
        officer, session = await console.officer(request)
        figures = await dashboard.figures(Scope.of(officer))
        return console.render(
            request,
            "dashboard.html",
            active="dashboard",
            officer=officer,
            session=session,
            page=page_view(figures, console.desk.calendar),
        )

    router.add_api_route("/console/dashboard", dashboard_page, methods=["GET"])
