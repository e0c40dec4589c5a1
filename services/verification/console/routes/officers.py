"""The supervisor page: the backlog, handing requests over, and (admins) officers'
accounts."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from services.verification.console.errors import FormRefusedError, PageError, explain
from services.verification.console.forms import text, texts, ticket_of
from services.verification.console.pages import Console, redirect
from services.verification.console.routes.requests import assign
from services.verification.console.sessions import Flash, Session
from services.verification.console.views import supervisor_context
from services.verification.domain.accounts import (
    MAX_NAME_LENGTH,
    OwnAccountError,
    UnknownOfficerError,
    is_officer_id,
    kecamatan_codes,
    officer_name,
)
from services.verification.domain.officers import OfficerAccount, Role
from services.verification.domain.request import InvalidDecisionError, InvalidTransitionError
from services.verification.handlers import ConflictError, UnknownTicketError

Action = Callable[[OfficerAccount, FormData], Coroutine[Any, Any, Flash]]


class SupervisorPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.desk = console.desk

    async def supervisor(self, request: Request) -> Response:
        officer, session = await self.console.officer(request)
        return await self.page(request, officer, session)

    async def page(
        self,
        request: Request,
        officer: OfficerAccount,
        session: Session,
        *,
        status: int = 200,
        error: str | None = None,
        flash: Flash | None = None,
    ) -> Response:
        backlog = await self.desk.backlog(officer)
        officers = await self.desk.list_officers(officer)
        return self.console.render(
            request,
            "supervisor.html",
            active="supervisor",
            officer=officer,
            session=session,
            status=status,
            error=error,
            flash=flash,
            **supervisor_context(self.desk.kecamatan_names, officer, backlog, officers),
        )

    async def act(self, request: Request, action: Action) -> Response:
        """Run one form of the page; its refusal is shown on the page, its result after a
        redirect (or at once, when it holds a new officer's token)."""
        officer, session, form = await self.console.posted(request)
        officer.require_office_wide("the supervisor page")
        try:
            flash = await action(officer, form)
        except (InvalidTransitionError, ConflictError, InvalidDecisionError) as error:
            status, words = explain(error)
            return await self.page(request, officer, session, status=status, error=words)
        if flash.secret is not None:
            # Shown here, once: a redirect would have to carry the token in a cookie.
            return await self.page(request, officer, session, status=201, flash=flash)
        response = redirect("/console/supervisor")
        self.console.sessions.write_flash(response, flash)
        return response

    async def assign(self, request: Request) -> Response:
        async def action(officer: OfficerAccount, form: FormData) -> Flash:
            try:
                ticket = ticket_of(text(form, "ticket"))
            except PageError as error:
                raise FormRefusedError("Nomor tiket tidak dikenal.") from error
            try:
                return Flash(
                    "ok", await assign(self.desk, officer, ticket, text(form, "officer_id"))
                )
            except UnknownTicketError as error:
                raise FormRefusedError(f"Tiket {ticket} tidak ditemukan.") from error

        return await self.act(request, action)

    async def add_officer(self, request: Request) -> Response:
        async def action(officer: OfficerAccount, form: FormData) -> Flash:
            try:
                name = officer_name(text(form, "name"))
            except InvalidDecisionError as error:
                raise FormRefusedError(
                    f"Tulis nama petugas dengan huruf biasa, paling panjang {MAX_NAME_LENGTH} "
                    "huruf."
                ) from error
            role = text(form, "role")
            kecamatan = kecamatan_codes(texts(form, "kecamatan"))
            if role not in set(Role):
                raise FormRefusedError("Pilih peran petugas.")
            if any(code not in self.desk.kecamatan_names for code in kecamatan):
                raise FormRefusedError("Pilih kecamatan dari daftar.")
            if role == Role.OPERATOR and not kecamatan:
                raise FormRefusedError("Operator harus menangani minimal satu kecamatan.")
            account, token = await self.desk.add_officer(officer, name, Role(role), kecamatan)
            return Flash(
                "ok",
                f"Petugas {account.name} ditambahkan. Berikan kode akses ini kepadanya; kode "
                "ini hanya ditampilkan sekali.",
                secret=token,
            )

        return await self.act(request, action)

    async def change_officer(self, request: Request, officer_id: str, change: str) -> Response:
        if change not in {"disable", "enable"} or not is_officer_id(officer_id):
            raise PageError(404, "Halaman tidak ditemukan.")

        async def action(officer: OfficerAccount, _: FormData) -> Flash:
            try:
                await self.desk.set_officer_disabled(officer, officer_id, change == "disable")
            except OwnAccountError as error:
                raise FormRefusedError(
                    "Anda tidak bisa menonaktifkan akun Anda sendiri."
                ) from error
            except UnknownOfficerError as error:
                raise FormRefusedError("Petugas tidak ditemukan.") from error
            done = "dinonaktifkan" if change == "disable" else "diaktifkan kembali"
            return Flash("ok", f"Akun petugas {done}.")

        return await self.act(request, action)


def add_supervisor_routes(router: APIRouter, console: Console) -> None:
    pages = SupervisorPages(console)
    router.add_api_route("/console/supervisor", pages.supervisor, methods=["GET"])
    router.add_api_route("/console/supervisor/assign", pages.assign, methods=["POST"])
    router.add_api_route("/console/officers", pages.add_officer, methods=["POST"])
    router.add_api_route(
        "/console/officers/{officer_id}/{change}", pages.change_officer, methods=["POST"]
    )
