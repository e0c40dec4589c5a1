"""Citizens' complaints: the list, one complaint, and the written answer."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.verification.console.errors import FormRefusedError, explain
from services.verification.console.forms import text, ticket_of
from services.verification.console.labels import ERASED
from services.verification.console.pages import Console
from services.verification.console.sessions import Session
from services.verification.domain.complaint import MAX_ANSWER_LENGTH, ComplaintClosedError
from services.verification.domain.officers import OfficerAccount
from services.verification.domain.request import InvalidDecisionError
from services.verification.handlers import ConflictError


class ComplaintPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.desk = console.desk

    async def complaints(self, request: Request, state: str | None = "open") -> Response:
        officer, session = await self.console.officer(request)
        chosen = state if state in {"open", "answered"} else None
        rows = await self.desk.list_complaints(officer, state=chosen)
        return self.console.render(
            request,
            "complaints.html",
            active="complaints",
            officer=officer,
            session=session,
            rows=rows,
            chosen=chosen or "all",
        )

    async def complaint(self, request: Request, ticket: str) -> Response:
        ticket = ticket_of(ticket)
        officer, session = await self.console.officer(request)
        return await self.complaint_page(request, officer, session, ticket)

    async def complaint_page(
        self,
        request: Request,
        officer: OfficerAccount,
        session: Session,
        ticket: str,
        *,
        status: int = 200,
        error: str | None = None,
        answer: str = "",
    ) -> Response:
        found = await self.desk.complaint(officer, ticket)
        if not found.text:  # a complaint always has a text, unless it was erased
            found = replace(found, text=ERASED)
        return self.console.render(
            request,
            "complaint.html",
            active="complaints",
            officer=officer,
            session=session,
            status=status,
            error=error,
            complaint=found,
            answer=answer,
            max_answer=MAX_ANSWER_LENGTH,
        )

    async def answer(self, request: Request, ticket: str) -> Response:
        ticket = ticket_of(ticket)
        officer, session, form = await self.console.posted(request)
        answer = text(form, "answer")
        try:
            if not answer:
                raise FormRefusedError("Tulis jawaban untuk warga.")
            if len(answer) > MAX_ANSWER_LENGTH:
                raise FormRefusedError(f"Jawaban paling panjang {MAX_ANSWER_LENGTH} huruf.")
            await self.desk.answer_complaint(officer, ticket, answer)
        except (ComplaintClosedError, ConflictError, InvalidDecisionError) as error:
            status, words = explain(error)
            return await self.complaint_page(
                request, officer, session, ticket, status=status, error=words, answer=answer
            )
        return self.console.done(
            f"/console/complaints/{quote(ticket, safe='')}",
            "Jawaban dikirim ke warga lewat WhatsApp; pengaduan ditutup.",
        )


def add_complaint_routes(router: APIRouter, console: Console) -> None:
    pages = ComplaintPages(console)
    router.add_api_route("/console/complaints", pages.complaints, methods=["GET"])
    router.add_api_route("/console/complaints/{ticket}", pages.complaint, methods=["GET"])
    router.add_api_route("/console/complaints/{ticket}/answer", pages.answer, methods=["POST"])
