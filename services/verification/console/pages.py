"""The console's frame: templates, the signed-in officer of each request, forms checked
for CSRF, and errors shown as pages (never JSON)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData

from services.verification.adapters.api import Authenticator, SignedOutError, Unauthorized
from services.verification.console.errors import (
    DESK_ERRORS,
    ERROR_HEADINGS,
    CsrfError,
    LoginRequiredError,
    PageError,
    explain,
)
from services.verification.console.forms import MAX_FORM_FIELDS
from services.verification.console.labels import (
    CHECK_LABELS,
    ROLE_LABELS,
    SLA_LABELS,
    STATE_LABELS,
    duration,
    moment,
)
from services.verification.console.sessions import Flash, Session, Sessions, check_csrf
from services.verification.domain.officers import OfficerAccount
from services.verification.handlers import Desk
from shared.config import Environment as Deployment
from shared.config import Settings

HERE: Final = Path(__file__).resolve().parent.parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"

PAGE_HEADERS: Final = {
    # No script anywhere; attachments are framed from this origin only.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show citizens' personal data on shared office laptops: keep them out of caches.
    "Cache-Control": "no-store",
}


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def route_class(
    on_error: Callable[[Request, Exception], Coroutine[Any, Any, Response]],
) -> type[APIRoute]:
    """Routes that turn the console's and the desk's errors into pages, not JSON."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except (LoginRequiredError, CsrfError, PageError, *DESK_ERRORS) as error:
                    return await on_error(request, error)

            return guarded

    return ConsoleRoute


class Console:
    """What every page needs; one instance per app, built by ``console_router``."""

    def __init__(self, desk: Desk, auth: Authenticator, settings: Settings) -> None:
        self.desk = desk
        self.auth = auth
        self.sessions = Sessions(settings.key, secure=settings.environment is Deployment.PRODUCTION)
        self.templates = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["waktu"] = moment(desk.calendar.timezone)
        self.templates.filters["durasi"] = duration
        self.templates.globals.update(
            state_labels=STATE_LABELS,
            sla_labels=SLA_LABELS,
            check_labels=CHECK_LABELS,
            role_labels=ROLE_LABELS,
            kecamatan_names=desk.kecamatan_names,
        )
        self.css = (STATIC / "console.css").read_bytes()

    # -- sessions and forms ----------------------------------------------------------------

    async def officer(self, request: Request) -> tuple[OfficerAccount, Session]:
        """The signed-in officer, checked again now; otherwise off to the login page."""
        session = self.sessions.read(request)
        # After login, back to the page asked for (a form posted meanwhile is not resent).
        next_path = None
        if request.method == "GET":
            query = request.url.query
            next_path = request.url.path + (f"?{query}" if query else "")
        if session is None or session.officer_id is None or session.fingerprint is None:
            raise LoginRequiredError(next_path=next_path)
        try:
            officer = await self.auth.officer_by_fingerprint(
                session.officer_id, session.fingerprint, session.generation
            )
        except Unauthorized as refused:
            # Signed out (here or on another device): back to the login page, without the
            # words for a disabled account.
            raise LoginRequiredError(
                next_path=next_path, refused=not isinstance(refused, SignedOutError)
            ) from refused
        request.state.officer, request.state.session = officer, session
        return officer, session

    async def posted(self, request: Request) -> tuple[OfficerAccount, Session, FormData]:
        """A signed-in officer's form, once its CSRF token matched the session's."""
        officer, session = await self.officer(request)
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        check_csrf(session, form)
        return officer, session, form

    def done(self, location: str, message: str, *, secret: str | None = None) -> Response:
        response = redirect(location)
        self.sessions.write_flash(response, Flash("ok", message, secret))
        return response

    # -- rendering --------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        *,
        officer: OfficerAccount | None,
        session: Session | None,
        status: int = 200,
        error: str | None = None,
        active: str = "",
        flash: Flash | None = None,
        **context: Any,
    ) -> HTMLResponse:
        stored = self.sessions.read_flash(request)
        flash = flash or stored
        html = self.templates.get_template(template).render(
            officer=officer,
            csrf=session.csrf if session else "",
            flash=flash,
            error=error,
            active=active,
            status_code=status,
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
        if stored is not None:
            self.sessions.clear_flash(response)
        return response

    async def on_error(self, request: Request, error: Exception) -> Response:
        if isinstance(error, LoginRequiredError):
            query = {"next": error.next_path} if error.next_path else {}
            response = redirect("/console/login" + (f"?{urlencode(query)}" if query else ""))
            if error.refused:
                self.sessions.clear(response)
                self.sessions.write_flash(
                    response,
                    Flash(
                        "error",
                        "Kode akses Anda tidak berlaku lagi (akun dinonaktifkan?). "
                        "Hubungi admin kantor.",
                    ),
                )
            return response
        status, message = explain(error)
        return self.render(
            request,
            "error.html",
            officer=getattr(request.state, "officer", None),
            session=getattr(request.state, "session", None),
            status=status,
            heading=ERROR_HEADINGS.get(status, "Ada masalah"),
            message=message,
        )
