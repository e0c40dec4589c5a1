"""The officer JSON API (README, "Work it like an officer"; OpenAPI at ``/docs``): bearer
tokens, roles and kecamatan scope.

Errors are mapped here and only here: unknown or disabled token 401, role or scope 403
(also: disabling one's own account, or handing a request to an officer who does not cover
its kecamatan), unknown ticket 404, unknown officer 404 (its own words, never "unknown
ticket"), a state that does not allow the action (or a concurrent decision, or a request
handed to a disabled officer) 409, an unusable decision (no reason, a blank name) 422.
The rules behind them live in the desk and the domain, so the console enforces the same.
"""

# No "from __future__ import annotations": FastAPI must see the dependency aliases that
# the router factory defines locally as real objects, not as names to look up globally.

import hmac
import mimetypes
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from services.verification.adapters.postgres import hash_token
from services.verification.adapters.throttle import Throttle
from services.verification.dashboard import Dashboard, DashboardPublic, Scope, public
from services.verification.domain.accounts import OfficerDisabledError, UnknownOfficerError
from services.verification.domain.complaint import Complaint, ComplaintClosedError
from services.verification.domain.officers import NotAllowedError, OfficerAccount, Role
from services.verification.domain.request import (
    InvalidDecisionError,
    InvalidTransitionError,
    State,
)
from services.verification.domain.request import Request as VerificationRequest
from services.verification.handlers import (
    ConflictError,
    Desk,
    QueueItem,
    RequestDetail,
    UnknownTicketError,
)
from shared.access import GUARDED, error_responses
from shared.access import Unauthorized as Unauthorized  # noqa: PLC0414 - the console uses it

BOOTSTRAP_OFFICER = OfficerAccount(id="bootstrap", name="Bootstrap admin", role=Role.ADMIN)

# Every identifier in a path or a query is checked by its shape before anything looks it
# up (422 otherwise, as for any other unusable parameter): a NUL byte or a megabyte of
# text never reaches Postgres. Tickets are case-insensitive.
TICKET_PATTERN: Final = r"^[A-Za-z0-9-]{6,24}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
OFFICER_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
DOC_TYPE_PATTERN: Final = r"^[A-Za-z]{1,20}$"
KECAMATAN_PATTERN: Final = r"^[0-9]{6}$"

TicketPath = Annotated[
    str, Path(pattern=TICKET_PATTERN, description="A ticket (case-insensitive), `KTP-7Q2M9XAB`")
]
Sha256Path = Annotated[
    str, Path(pattern=SHA256_PATTERN, description="The file's SHA-256, lower-case hex")
]
OfficerIdPath = Annotated[str, Path(pattern=OFFICER_ID_PATTERN, description="An officer's id")]


class SignedOutError(Unauthorized):
    """A console session made before its officer signed out."""


_bearer = HTTPBearer(auto_error=False, description="An officer's token")


class Authenticator:
    """Turns a bearer token into an officer account (or refuses it)."""

    def __init__(
        self, desk: Desk, bootstrap_token: str | None, throttle: Throttle | None = None
    ) -> None:
        self.desk = desk
        self.bootstrap_token = bootstrap_token
        self.throttle = throttle or Throttle()
        """Failed sign-ins per client address, the API's and the console's together."""

    async def officer(self, token: str | None) -> OfficerAccount:
        if not token:
            raise Unauthorized("a bearer token is required")
        if self.bootstrap_token and hmac.compare_digest(
            token.encode("utf-8", "replace"), self.bootstrap_token.encode()
        ):
            return BOOTSTRAP_OFFICER
        account = await self.desk.officers.by_token(token)
        if account is None or account.disabled:
            raise Unauthorized("unknown or disabled token")
        return account

    async def officer_by_fingerprint(
        self, officer_id: str, fingerprint: str, generation: int
    ) -> OfficerAccount:
        """The officer of a console session: their id and the SHA-256 of the token they
        signed in with, which must still be theirs (and they still active), and the
        generation of their sessions when it was made, which must still be the current
        one (signing out moves it on)."""
        if officer_id == BOOTSTRAP_OFFICER.id:
            if not self.bootstrap_token or not hmac.compare_digest(
                fingerprint.encode(), hash_token(self.bootstrap_token).encode()
            ):
                raise Unauthorized("the bootstrap token changed")
            account = BOOTSTRAP_OFFICER
        else:
            found = await self.desk.officers.by_id_and_token_hash(officer_id, fingerprint)
            if found is None or found.disabled:
                raise Unauthorized("unknown or disabled officer")
            account = found
        if generation != await self.desk.officers.session_generation(officer_id):
            raise SignedOutError("signed out of the console")
        return account


# -- schemas -----------------------------------------------------------------------------


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChangesBody(_Schema):
    reasons: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        min_length=1, max_length=10
    )


class RejectBody(_Schema):
    reason: str = Field(min_length=1, max_length=500)


class AssignBody(_Schema):
    officer_id: str


class AnswerBody(_Schema):
    answer: str = Field(min_length=1, max_length=3000)


class OfficerCreate(_Schema):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    kecamatan: list[Annotated[str, Field(pattern=r"^[0-9]{6}$")]] = Field(
        default_factory=list, max_length=100
    )


class OfficerCreated(BaseModel):
    id: str
    token: str


class OfficerPublic(BaseModel):
    id: str
    name: str
    role: Role
    kecamatan: list[str]
    disabled: bool


class Flag(BaseModel):
    check: str
    reason: str
    fixable: bool = False
    related_ticket: str | None = None


class SlaPublic(BaseModel):
    level: Literal["ok", "at_risk", "late"]
    waited_working_seconds: float
    waited_wall_seconds: float
    promised_working_seconds: float


class RequestSummary(BaseModel):
    ticket: str
    doc_type: str
    doc_name: str
    kecamatan_code: str | None
    kecamatan_name: str | None
    state: str
    flags: list[Flag]
    attachments: int
    claimed_by: str | None
    claimed_by_name: str | None
    returned_to_me: bool
    received_at: datetime
    sla: SlaPublic


class AttachmentPublic(BaseModel):
    sha256: str
    content_type: str
    size: int
    filename: str | None
    url: str


class HistoryPublic(BaseModel):
    position: int
    type: str
    at: datetime
    actor: str | None
    data: dict[str, Any]
    erased: bool = Field(default=False, description="The citizen's personal data in it was erased")


class RequestPublic(RequestSummary):
    applicant: dict[str, Any]
    personal_data_erased: bool = Field(
        default=False,
        description=(
            "The citizen's personal data was erased (right to erasure, UU 27/2022): "
            "`applicant` is empty, the request's facts remain"
        ),
    )
    reasons: list[str]
    duplicate_of: str | None
    attachment_list: list[AttachmentPublic]
    history: list[HistoryPublic]


class DecisionPublic(BaseModel):
    ticket: str
    state: str
    claimed_by: str | None
    version: int


class ComplaintSummary(BaseModel):
    ticket: str
    related_ticket: str | None
    kecamatan_code: str | None
    state: str
    received_at: datetime
    answered_at: datetime | None
    answered_by: str | None


class ComplaintPublic(BaseModel):
    ticket: str
    related_ticket: str | None
    text: str
    state: str
    received_at: datetime | None
    answer: str | None
    answered_by: str | None
    answered_at: datetime | None


def summary(item: QueueItem) -> RequestSummary:
    return RequestSummary(
        ticket=item.ticket,
        doc_type=item.doc_type,
        doc_name=item.doc_name,
        kecamatan_code=item.kecamatan_code,
        kecamatan_name=item.kecamatan_name,
        state=item.state,
        flags=[Flag.model_validate(flag) for flag in item.flags],
        attachments=item.attachments,
        claimed_by=item.claimed_by,
        claimed_by_name=item.claimed_by_name,
        returned_to_me=item.returned_to_me,
        received_at=item.received_at,
        sla=SlaPublic(
            level=item.badge.level,  # type: ignore[arg-type]
            waited_working_seconds=item.badge.waited_working.total_seconds(),
            waited_wall_seconds=item.badge.waited_wall.total_seconds(),
            promised_working_seconds=item.badge.promised_working.total_seconds(),
        ),
    )


def detail_public(detail: RequestDetail) -> RequestPublic:
    request = detail.request
    base = summary(detail.item).model_dump()
    return RequestPublic(
        **base,
        applicant=request.applicant,
        personal_data_erased=detail.personal_data_erased,
        reasons=list(request.reasons),
        duplicate_of=request.duplicate_of,
        attachment_list=[
            AttachmentPublic(
                sha256=a.sha256,
                content_type=a.content_type,
                size=a.size,
                filename=a.filename,
                url=f"/api/requests/{request.ticket}/attachments/{a.sha256}",
            )
            for a in request.attachments
        ],
        history=[HistoryPublic(**vars(entry)) for entry in detail.history],
    )


def decision(request: VerificationRequest) -> DecisionPublic:
    return DecisionPublic(
        ticket=request.ticket,
        state=request.state.value,
        claimed_by=request.claimed_by,
        version=request.version,
    )


# -- errors ------------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """One mapping from domain errors to HTTP answers, for API and console alike."""
    mapping: list[tuple[type[Exception], int]] = [
        (Unauthorized, 401),
        (NotAllowedError, 403),
        (UnknownTicketError, 404),
        (UnknownOfficerError, 404),
        (InvalidTransitionError, 409),
        (OfficerDisabledError, 409),
        (ConflictError, 409),
        (ComplaintClosedError, 409),
        (InvalidDecisionError, 422),
    ]

    def handler_for(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handle(request: Request, error: Exception) -> JSONResponse:
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            response = _error(status, str(error))
            if headers:
                response.headers.update(headers)
            return response

        return handle

    for error_type, status in mapping:
        app.add_exception_handler(error_type, handler_for(status))


# -- routes ------------------------------------------------------------------------------


def api_router(desk: Desk, auth: Authenticator, *, dashboard: Dashboard) -> APIRouter:
    """The officer API over ``desk``; ``dashboard`` computes ``/api/dashboard``'s figures."""
    router = APIRouter(prefix="/api", tags=["officers"], responses=error_responses(*GUARDED, 403))

    async def current_officer(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> OfficerAccount:
        # Authenticated already, before the body was read (adapters/guard.py).
        known = getattr(request.state, "officer", None)
        if isinstance(known, OfficerAccount):
            return known
        return await auth.officer(credentials.credentials if credentials else None)

    CurrentOfficer = Annotated[OfficerAccount, Depends(current_officer)]

    @router.get("/requests", response_model=list[RequestSummary])
    async def list_requests(
        officer: CurrentOfficer,
        status: Annotated[
            list[State] | None,
            Query(description="States to list (repeatable); default: all open ones"),
        ] = None,
        kecamatan: Annotated[str | None, Query(pattern=KECAMATAN_PATTERN)] = None,
        doc_type: Annotated[
            str | None, Query(pattern=DOC_TYPE_PATTERN, description="`KTP`, `kia`, ...")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[RequestSummary]:
        items = await desk.list_requests(
            officer,
            states=[s.value for s in status] if status else None,
            kecamatan=kecamatan,
            doc_type=doc_type.upper() if doc_type else None,
            limit=limit,
        )
        return [summary(item) for item in items]

    @router.get("/requests/{ticket}", response_model=RequestPublic, responses=error_responses(404))
    async def get_request(officer: CurrentOfficer, ticket: TicketPath) -> RequestPublic:
        return detail_public(await desk.detail(officer, ticket.upper()))

    @router.get(
        "/requests/{ticket}/attachments/{sha256}",
        response_class=FileResponse,
        responses={
            200: {"description": "The file, as a download", "content": {"*/*": {}}},
            **error_responses(404),
        },
    )
    async def get_attachment(
        officer: CurrentOfficer, ticket: TicketPath, sha256: Sha256Path
    ) -> FileResponse:
        """The file as the citizen sent it, as a download: its type is what their phone
        claimed, so it is never sniffed, rendered as a page, or cached."""
        ticket = ticket.upper()
        path, content_type = await desk.attachment(officer, ticket, sha256)
        if not path.is_file():
            raise UnknownTicketError(f"file {sha256} is not in the media store")
        return FileResponse(
            path, media_type=content_type, headers=_download_headers(ticket, sha256, content_type)
        )

    @router.post(
        "/requests/{ticket}/claim",
        response_model=DecisionPublic,
        responses=error_responses(404, 409),
    )
    async def claim(officer: CurrentOfficer, ticket: TicketPath) -> DecisionPublic:
        return decision(await desk.claim(officer, ticket.upper()))

    @router.post(
        "/requests/{ticket}/release",
        response_model=DecisionPublic,
        responses=error_responses(404, 409),
    )
    async def release(officer: CurrentOfficer, ticket: TicketPath) -> DecisionPublic:
        return decision(await desk.release(officer, ticket.upper()))

    @router.post(
        "/requests/{ticket}/assign",
        response_model=DecisionPublic,
        responses=error_responses(400, 404, 409),
    )
    async def assign(
        officer: CurrentOfficer, ticket: TicketPath, body: AssignBody
    ) -> DecisionPublic:
        """Hand the request to another officer (supervisors). 404 ``unknown officer`` for
        an id nobody has, 409 for a disabled officer, 403 for one who does not cover the
        request's kecamatan."""
        return decision(await desk.assign(officer, ticket.upper(), body.officer_id))

    @router.post(
        "/requests/{ticket}/approve",
        response_model=DecisionPublic,
        responses=error_responses(404, 409),
    )
    async def approve(officer: CurrentOfficer, ticket: TicketPath) -> DecisionPublic:
        return decision(await desk.approve(officer, ticket.upper()))

    @router.post(
        "/requests/{ticket}/request-changes",
        response_model=DecisionPublic,
        responses=error_responses(400, 404, 409),
    )
    async def request_changes(
        officer: CurrentOfficer, ticket: TicketPath, body: ChangesBody
    ) -> DecisionPublic:
        return decision(await desk.request_changes(officer, ticket.upper(), body.reasons))

    @router.post(
        "/requests/{ticket}/reject",
        response_model=DecisionPublic,
        responses=error_responses(400, 404, 409),
    )
    async def reject(
        officer: CurrentOfficer, ticket: TicketPath, body: RejectBody
    ) -> DecisionPublic:
        return decision(await desk.reject(officer, ticket.upper(), body.reason))

    @router.post(
        "/requests/{ticket}/collected",
        response_model=DecisionPublic,
        responses=error_responses(404, 409),
    )
    async def collected(officer: CurrentOfficer, ticket: TicketPath) -> DecisionPublic:
        return decision(await desk.collected(officer, ticket.upper()))

    @router.get("/complaints", response_model=list[ComplaintSummary])
    async def list_complaints(
        officer: CurrentOfficer,
        state: Annotated[Literal["open", "answered"] | None, Query()] = "open",
    ) -> list[ComplaintSummary]:
        rows = await desk.list_complaints(officer, state=state)
        return [ComplaintSummary(**vars(row)) for row in rows]

    @router.get(
        "/complaints/{ticket}", response_model=ComplaintPublic, responses=error_responses(404)
    )
    async def get_complaint(officer: CurrentOfficer, ticket: TicketPath) -> ComplaintPublic:
        complaint = await desk.complaint(officer, ticket.upper())
        return _complaint_public(complaint)

    @router.post(
        "/complaints/{ticket}/answer",
        response_model=ComplaintPublic,
        responses=error_responses(400, 404, 409),
    )
    async def answer(
        officer: CurrentOfficer, ticket: TicketPath, body: AnswerBody
    ) -> ComplaintPublic:
        return _complaint_public(await desk.answer_complaint(officer, ticket.upper(), body.answer))

    @router.get(
        "/dashboard",
        response_model=DashboardPublic,
        summary="The office dashboard's figures",
        description=(
            "Requests per day (last 30 days) by document and kecamatan, open requests by "
            "state, admin response latency p50/p90/p99 in the office's working seconds "
            "(nearest-rank; null when there is no data), promises kept, failed messages "
            "(last 7 days) and the SIAK backlog. Operators get their kecamatan only."
        ),
    )
    async def get_dashboard(officer: CurrentOfficer) -> DashboardPublic:
        return public(await dashboard.figures(Scope.of(officer)))

    @router.get("/officers", response_model=list[OfficerPublic])
    async def list_officers(officer: CurrentOfficer) -> list[OfficerPublic]:
        return [_officer_public(account) for account in await desk.list_officers(officer)]

    @router.post(
        "/officers", response_model=OfficerCreated, status_code=201, responses=error_responses(400)
    )
    async def add_officer(officer: CurrentOfficer, body: OfficerCreate) -> OfficerCreated:
        account, token = await desk.add_officer(officer, body.name, body.role, body.kecamatan)
        return OfficerCreated(id=account.id, token=token)

    @router.post("/officers/{officer_id}/disable", status_code=204, responses=error_responses(404))
    async def disable_officer(officer: CurrentOfficer, officer_id: OfficerIdPath) -> None:
        """Lock an officer out at once (admins). Disabling one's own account is refused
        with 403, as a right the caller lacks rather than a state conflict (409): nothing
        about the account would make it allowed later, and an admin who locked themselves
        out would need another admin anyway. An unknown id is 404 ``unknown officer``."""
        await desk.set_officer_disabled(officer, officer_id, disabled=True)

    return router


def _download_headers(ticket: str, sha256: str, content_type: str) -> dict[str, str]:
    # Named by ticket and digest, never by the citizen's own file name (which may hold a
    # name, and any character).
    extension = mimetypes.guess_extension(content_type.partition(";")[0].strip()) or ".bin"
    return {
        "Content-Disposition": f'attachment; filename="{ticket}-{sha256[:12]}{extension}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }


def _officer_public(account: OfficerAccount) -> OfficerPublic:
    return OfficerPublic(
        id=account.id,
        name=account.name,
        role=account.role,
        kecamatan=list(account.kecamatan),
        disabled=account.disabled,
    )


def _complaint_public(complaint: Complaint) -> ComplaintPublic:
    return ComplaintPublic(
        ticket=complaint.ticket,
        related_ticket=complaint.related_ticket,
        text=complaint.text,
        state="open" if complaint.is_open else "answered",
        received_at=complaint.received_at,
        answer=complaint.answer,
        answered_by=complaint.answered_by,
        answered_at=complaint.answered_at,
    )
