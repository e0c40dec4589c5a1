"""Entry, login and logout, and the stylesheet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.verification.adapters.api import Unauthorized
from services.verification.adapters.postgres import hash_token
from services.verification.console.errors import CsrfError
from services.verification.console.forms import MAX_FORM_FIELDS, safe_next, text
from services.verification.console.pages import Console, redirect
from services.verification.console.sessions import Flash, Session, check_csrf


class AuthPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def root(self) -> Response:
        return redirect("/console")

    async def stylesheet(self) -> Response:
        return Response(
            self.console.css,
            media_type="text/css",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    async def login_page(
        self, request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
    ) -> Response:
        console = self.console
        session = console.sessions.read(request)
        if session is not None and session.officer_id and session.fingerprint:
            try:
                await console.auth.officer_by_fingerprint(
                    session.officer_id, session.fingerprint, session.generation
                )
            except Unauthorized:
                session = None
            else:
                return redirect(safe_next(next_path))
        fresh = session or Session.anonymous()
        response = console.render(
            request, "login.html", officer=None, session=fresh, next=safe_next(next_path)
        )
        console.sessions.write(response, Session(csrf=fresh.csrf))
        return response

    async def login(self, request: Request) -> Response:
        console = self.console
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        session = console.sessions.read(request)
        next_path = safe_next(text(form, "next"))
        try:
            check_csrf(session, form)
        except CsrfError:
            return self.login_again(
                request, next_path, 403, "Halaman masuk sudah kedaluwarsa. Silakan coba lagi."
            )
        address = request.client.host if request.client else "unknown"
        if wait := console.auth.throttle.retry_after(address):
            refused = self.login_again(
                request,
                next_path,
                429,
                "Terlalu banyak percobaan masuk yang gagal dari alamat ini. Coba lagi "
                f"dalam {wait} detik.",
            )
            refused.headers["Retry-After"] = str(wait)
            return refused
        try:
            officer = await console.auth.officer(text(form, "token"))
        except Unauthorized:
            console.auth.throttle.failed(address)
            return self.login_again(
                request,
                next_path,
                401,
                "Kode akses tidak dikenal atau akunnya dinonaktifkan. Periksa lagi kode yang "
                "Anda tempel.",
            )
        response = redirect(next_path)
        # A new CSRF token with the new identity: nothing sent before login is valid after.
        signed_in = Session(
            csrf=Session.anonymous().csrf,
            officer_id=officer.id,
            fingerprint=hash_token(text(form, "token")),
            generation=await console.desk.officers.session_generation(officer.id),
        )
        console.sessions.write(response, signed_in)
        console.sessions.write_flash(response, Flash("ok", f"Selamat datang, {officer.name}."))
        return response

    def login_again(self, request: Request, next_path: str, status: int, message: str) -> Response:
        fresh = Session.anonymous()
        response = self.console.render(
            request,
            "login.html",
            officer=None,
            session=fresh,
            status=status,
            error=message,
            next=next_path,
        )
        self.console.sessions.write(response, fresh)
        return response

    async def logout(self, request: Request) -> Response:
        console = self.console
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        session = console.sessions.read(request)
        check_csrf(session, form)
        if session is not None and session.officer_id is not None:
            # Every session of this officer ends, this cookie and any copy of it.
            await console.desk.officers.end_sessions(session.officer_id)
        response = redirect("/console/login")
        console.sessions.clear(response)
        console.sessions.write_flash(response, Flash("ok", "Anda sudah keluar."))
        return response


def add_auth_routes(router: APIRouter, console: Console) -> None:
    pages = AuthPages(console)
    router.add_api_route("/", pages.root, methods=["GET"])
    router.add_api_route("/console/static/console.css", pages.stylesheet, methods=["GET"])
    router.add_api_route("/console/login", pages.login_page, methods=["GET"])
    router.add_api_route("/console/login", pages.login, methods=["POST"])
    router.add_api_route("/console/logout", pages.logout, methods=["POST"])
