"""The queue, one request's page and its files, and the decisions taken on it (claim,
release, approve, collected, request changes, reject, assign)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import FormData

from services.verification.console.errors import FormRefusedError, PageError, explain
from services.verification.console.forms import SHA256, text, texts, ticket_of
from services.verification.console.pages import Console
from services.verification.console.sessions import Session
from services.verification.console.views import (
    INLINE_TYPES,
    queue_context,
    queue_filters,
    request_context,
    request_url,
)
from services.verification.domain.accounts import (
    AssigneeOutOfScopeError,
    OfficerDisabledError,
    UnknownOfficerError,
)
from services.verification.domain.officers import OfficerAccount
from services.verification.domain.request import (
    DECIDABLE,
    MAX_REASON_LENGTH,
    MAX_REASONS,
    InvalidDecisionError,
    InvalidTransitionError,
)
from services.verification.handlers import ConflictError, Desk

Action = Callable[[OfficerAccount, str, FormData], Coroutine[Any, Any, str]]


async def assign(desk: Desk, officer: OfficerAccount, ticket: str, target_id: str) -> str:
    """Hand ``ticket`` to another officer; the words to show when done. The desk decides
    who may take it; a refusal is shown on the form (422)."""
    try:
        assigned = await desk.assign(officer, ticket, target_id)
    except (UnknownOfficerError, OfficerDisabledError) as error:
        raise FormRefusedError("Pilih petugas yang masih aktif.") from error
    except AssigneeOutOfScopeError as error:
        raise FormRefusedError(
            f"{error.target.name} tidak menangani kecamatan permohonan ini."
        ) from error
    return f"Permohonan dialihkan ke {assigned.claimed_by_name or target_id}."


def change_reasons(form: FormData) -> list[str]:
    """The reasons ticked and the one written, in the words of the form's refusals."""
    reasons = [reason for reason in texts(form, "reasons") if reason]
    if other := " ".join(text(form, "other").split()):
        reasons.append(other)
    if not reasons:
        raise FormRefusedError("Pilih minimal satu alasan perbaikan, atau tulis alasan sendiri.")
    if len(reasons) > MAX_REASONS:
        raise FormRefusedError(f"Paling banyak {MAX_REASONS} alasan sekaligus.")
    if any(len(reason) > MAX_REASON_LENGTH for reason in reasons):
        raise FormRefusedError(f"Satu alasan paling panjang {MAX_REASON_LENGTH} huruf.")
    return reasons


def reject_reason(form: FormData) -> str:
    reason = " ".join(text(form, "reason").split())
    if not reason:
        raise FormRefusedError("Tulis alasan penolakan; warga akan membacanya.")
    if len(reason) > MAX_REASON_LENGTH:
        raise FormRefusedError(f"Alasan paling panjang {MAX_REASON_LENGTH} huruf.")
    return reason


class RequestPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.desk = console.desk

    async def queue(
        self,
        request: Request,
        status: str | None = None,
        kecamatan: str | None = None,
        doc_type: str | None = None,
    ) -> Response:
        officer, session = await self.console.officer(request)
        names = self.desk.kecamatan_names
        chosen = queue_filters(names, status, kecamatan, doc_type)
        chosen_state, chosen_kecamatan, chosen_doc = chosen
        items = await self.desk.list_requests(
            officer,
            states=[chosen_state] if chosen_state else None,
            kecamatan=chosen_kecamatan,
            doc_type=chosen_doc,
        )
        return self.console.render(
            request,
            "queue.html",
            active="queue",
            officer=officer,
            session=session,
            items=items,
            **queue_context(names, officer, chosen),
        )

    async def detail(self, request: Request, ticket: str) -> Response:
        ticket = ticket_of(ticket)
        officer, session = await self.console.officer(request)
        return await self.request_page(request, officer, session, ticket)

    async def attachment(self, request: Request, ticket: str, sha256: str) -> Response:
        ticket = ticket_of(ticket)
        if not SHA256.fullmatch(sha256):
            raise PageError(404, "Berkas tidak ditemukan.")
        officer, _ = await self.console.officer(request)
        path, content_type = await self.desk.attachment(officer, ticket, sha256)
        if not path.is_file():
            raise PageError(404, "Berkas ini belum ada di penyimpanan kantor. Coba lagi nanti.")
        inline = content_type in INLINE_TYPES
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Disposition": "inline" if inline else "attachment",
            # Framed by the request page only; whatever else a file holds never runs here.
            "Content-Security-Policy": "frame-ancestors 'self'"
            if content_type == "application/pdf"
            else "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
            "frame-ancestors 'self'; sandbox",
        }
        return FileResponse(
            path, media_type=content_type if inline else "application/octet-stream", headers=headers
        )

    async def request_page(
        self,
        request: Request,
        officer: OfficerAccount,
        session: Session,
        ticket: str,
        *,
        status: int = 200,
        error: str | None = None,
        form: FormData | None = None,
    ) -> HTMLResponse:
        detail = await self.desk.detail(officer, ticket)
        assignable: list[OfficerAccount] = []
        if officer.office_wide and detail.request.state in DECIDABLE:
            assignable = [
                account
                for account in await self.desk.list_officers(officer)
                if not account.disabled and account.covers(detail.request.kecamatan_code)
            ]
        return self.console.render(
            request,
            "request.html",
            active="queue",
            officer=officer,
            session=session,
            status=status,
            error=error,
            **request_context(detail, officer, assignable, form),
        )

    async def decide(self, request: Request, ticket: str, action: Action) -> Response:
        """Run one officer decision from a form; back to the request page either way."""
        ticket = ticket_of(ticket)
        officer, session, form = await self.console.posted(request)
        try:
            message = await action(officer, ticket, form)
        except (InvalidTransitionError, ConflictError, InvalidDecisionError) as error:
            status, words = explain(error)
            return await self.request_page(
                request, officer, session, ticket, status=status, error=words, form=form
            )
        return self.console.done(request_url(ticket), message)

    # -- decisions ------------------------------------------------------------------------

    async def claim(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await self.desk.claim(officer, ticket)
            return "Permohonan ini sekarang Anda periksa. Petugas lain melihatnya sudah diambil."

        return await self.decide(request, ticket, action)

    async def release(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await self.desk.release(officer, ticket)
            return "Permohonan dilepas dan kembali ke antrean."

        return await self.decide(request, ticket, action)

    async def approve(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await self.desk.approve(officer, ticket)
            return "Permohonan disetujui. Warga diberi tahu lewat WhatsApp."

        return await self.decide(request, ticket, action)

    async def collected(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, _: FormData) -> str:
            await self.desk.collected(officer, ticket)
            return "Pengambilan dicatat. Warga diminta mengisi survei kepuasan."

        return await self.decide(request, ticket, action)

    async def request_changes(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, form: FormData) -> str:
            await self.desk.request_changes(officer, ticket, change_reasons(form))
            return "Permintaan perbaikan dikirim ke warga lewat WhatsApp."

        return await self.decide(request, ticket, action)

    async def reject(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, form: FormData) -> str:
            await self.desk.reject(officer, ticket, reject_reason(form))
            return "Permohonan ditolak. Warga diberi tahu alasannya lewat WhatsApp."

        return await self.decide(request, ticket, action)

    async def assign(self, request: Request, ticket: str) -> Response:
        async def action(officer: OfficerAccount, ticket: str, form: FormData) -> str:
            return await assign(self.desk, officer, ticket, text(form, "officer_id"))

        return await self.decide(request, ticket, action)


def add_request_routes(router: APIRouter, console: Console) -> None:
    pages = RequestPages(console)
    router.add_api_route("/console", pages.queue, methods=["GET"])
    router.add_api_route("/console/requests/{ticket}", pages.detail, methods=["GET"])
    router.add_api_route(
        "/console/requests/{ticket}/attachments/{sha256}", pages.attachment, methods=["GET"]
    )
    for name, endpoint in [
        ("claim", pages.claim),
        ("release", pages.release),
        ("approve", pages.approve),
        ("collected", pages.collected),
        ("request-changes", pages.request_changes),
        ("reject", pages.reject),
        ("assign", pages.assign),
    ]:
        router.add_api_route(f"/console/requests/{{ticket}}/{name}", endpoint, methods=["POST"])
