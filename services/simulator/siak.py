"""A stand-in for SIAK, the national population system, with the failures the real one has.

Mounted by the simulator app (``app.include_router(siak_router(sim))``; the router carries
its ``/siak`` prefix). SIAK side (bearer token ``ADMINDUK_SIAK_TOKEN``):

- ``POST /siak/v1/dokumen``: issue a document. Header ``Idempotency-Key`` and the body's
  ``ticket`` and ``doc_type`` are required (400), the body must be a valid JSON object
  (422). Answers 201 with ``document_number`` and ``issued_at``; the same key again answers
  200 with the same number, the same key for another ticket or document type 409.

Control side (no token, local only, outside ``/siak/v1``):

- ``POST /siak/_sim/outage`` ``{"down": true|false}``: force an outage on or off;
  ``GET /siak/_sim/outage`` says whether SIAK is down and why.
- ``GET /siak/_sim/documents``: every document issued, with how often its key was posted.
- ``GET /siak/_sim/stats``: counts of accepted, replayed, failed and lost answers.

Failures: each call first waits ``latency``. During an outage window or a forced outage it
answers 503; with probability ``error_rate`` it answers 500 or 503 without doing anything;
with probability ``lost_reply_rate`` it issues the document and then answers 504, as a
gateway that timed out after SIAK did the work.

Document numbers are ``<DOC>/<region>/<DDMMYYYY>/<seq:04d>``, the sequence counting per
document type and day (in the office's time zone). With a ``journal`` every issued
document is appended to a JSON-lines file and read back at start, so a restart forgets no
idempotency key (a real SIAK would not). The journal holds no personal data.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.calendar import OFFICE_TIMEZONE
from shared.config import Settings
from shared.documents import DocType

log = logging.getLogger(__name__)

PREFIX: Final = "/siak"
MAINTENANCE_MESSAGE: Final = "SIAK sedang dalam pemeliharaan"
STATS: Final = (
    "accepted",  # documents issued
    "replayed",  # a known key answered again with its document
    "conflicts",  # a known key posted for another ticket or document type (409)
    "failed_outage",  # 503 in an outage window or a forced outage
    "failed_random",  # 500/503 by error_rate, no work done
    "lost_replies",  # work done, answer replaced by 504
)

_OFFICE_ZONE: Final = ZoneInfo(OFFICE_TIMEZONE)
_DURATION: Final = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?"
)


# --- outage windows -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutageWindow:
    """SIAK is down from ``start`` (included) to ``end`` (excluded)."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if match is None or text in {"P", "PT"} or text.endswith("T"):
        raise ValueError(
            f"bad duration {text!r}: expected ISO 8601 like PT2H, PT30M, P1DT4H "
            "(years and months are not supported)"
        )
    parts = {
        name: float(value.replace(",", ".")) for name, value in match.groupdict().items() if value
    }
    return timedelta(**parts)


def _parse_moment(text: str, interval: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"bad outage {interval!r}: {text!r} is not an ISO 8601 date-time "
            "(e.g. 2026-12-07T08:00+07:00)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"bad outage {interval!r}: {text!r} needs a UTC offset, e.g. +07:00")
    return moment


def parse_outages(text: str) -> tuple[OutageWindow, ...]:
    """Comma-separated ISO 8601 intervals, ``start/end`` or ``start/duration``, e.g.
    ``2026-12-07T08:00+07:00/PT2H, 2026-12-08T22:00+07:00/2026-12-09T02:00+07:00``."""
    windows = []
    for raw in text.split(","):
        interval = raw.strip()
        if not interval:
            continue
        start_text, slash, end_text = interval.partition("/")
        if not slash or "/" in end_text:
            raise ValueError(f"bad outage {interval!r}: expected start/end or start/duration")
        start = _parse_moment(start_text.strip(), interval)
        end_text = end_text.strip()
        if end_text.upper().startswith("P"):
            try:
                end = start + _parse_duration(end_text.upper())
            except ValueError as error:
                raise ValueError(f"bad outage {interval!r}: {error}") from None
        else:
            end = _parse_moment(end_text, interval)
        if end <= start:
            raise ValueError(f"bad outage {interval!r}: it ends before it starts")
        windows.append(OutageWindow(start, end))
    return tuple(windows)


# --- state ----------------------------------------------------------------------------------


class DocumentRequest(BaseModel):
    """The body of ``POST /siak/v1/dokumen``. The applicant's data is accepted, not kept."""

    model_config = ConfigDict(extra="ignore")

    ticket: str = Field(min_length=1, max_length=100)
    doc_type: DocType
    region_code: str = Field(pattern=r"^\d{4}$")
    kecamatan_code: str | None = None
    applicant: dict[str, Any] = Field(default_factory=dict, repr=False)


class OutageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    down: bool


@dataclass
class IssuedDocument:
    idempotency_key: str
    ticket: str
    doc_type: str
    region_code: str
    document_number: str
    created_at: datetime
    submissions: int = 1

    def journal_line(self) -> str:
        return json.dumps(
            {
                "idempotency_key": self.idempotency_key,
                "ticket": self.ticket,
                "doc_type": self.doc_type,
                "region_code": self.region_code,
                "document_number": self.document_number,
                "created_at": self.created_at.isoformat(),
            },
            separators=(",", ":"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.idempotency_key,
            "ticket": self.ticket,
            "doc_type": self.doc_type,
            "region_code": self.region_code,
            "document_number": self.document_number,
            "created_at": self.created_at.isoformat(),
            "submissions": self.submissions,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """What the SIAK side answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error": message}, headers)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _sequence_key(doc_type: str, moment: datetime) -> tuple[str, str]:
    return doc_type, moment.astimezone(_OFFICE_ZONE).strftime("%d%m%Y")


class SiakSimulator:
    """SIAK's memory and its failure knobs. The knobs (``latency``, ``error_rate``,
    ``lost_reply_rate``, ``forced_down``) may be changed while it runs.

    ``now`` gives aware date-times (outage windows, numbers, timestamps); ``rand`` decides
    the random failures. Both exist for tests.
    """

    def __init__(
        self,
        token: str,
        *,
        latency: timedelta = timedelta(0),
        error_rate: float = 0.0,
        lost_reply_rate: float = 0.0,
        outages: str = "",
        journal: Path | None = None,
        now: Callable[[], datetime] = _utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        for name, rate in (("error_rate", error_rate), ("lost_reply_rate", lost_reply_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        self.token = token
        self.latency = latency
        self.error_rate = error_rate
        self.lost_reply_rate = lost_reply_rate
        self.outages = parse_outages(outages)
        self.forced_down = False
        self.journal = journal
        self.now = now
        self.rand = rand
        self.documents: dict[str, IssuedDocument] = {}
        self.stats: Counter[str] = Counter(dict.fromkeys(STATS, 0))
        self._sequences: Counter[tuple[str, str]] = Counter()
        if journal is not None:
            self._load(journal)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        journal: Path | None = None,
        now: Callable[[], datetime] = _utc_now,
        rand: Callable[[], float] = random.random,
    ) -> SiakSimulator:
        return cls(
            settings.siak_token.get_secret_value(),
            latency=settings.siak_sim_latency,
            error_rate=settings.siak_sim_error_rate,
            lost_reply_rate=settings.siak_sim_lost_reply_rate,
            outages=settings.siak_sim_outages,
            journal=journal,
            now=now,
            rand=rand,
        )

    # --- journal --------------------------------------------------------------------------

    def _load(self, journal: Path) -> None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        if not journal.exists():
            return
        data = journal.read_bytes()
        if data and not data.endswith(b"\n"):
            # A crash in the middle of an append: that document's answer was never sent,
            # so the client will ask again and get a new one. Drop the torn line.
            data = data[: data.rfind(b"\n") + 1]
            journal.write_bytes(data)
            log.warning("SIAK simulator journal %s: dropped a torn last line", journal)
        for number, line in enumerate(data.decode().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                document = IssuedDocument(
                    idempotency_key=entry["idempotency_key"],
                    ticket=entry["ticket"],
                    doc_type=entry["doc_type"],
                    region_code=entry["region_code"],
                    document_number=entry["document_number"],
                    created_at=datetime.fromisoformat(entry["created_at"]),
                )
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(
                    f"SIAK simulator journal {journal}, line {number}: {error}"
                ) from error
            self.documents[document.idempotency_key] = document
            key = _sequence_key(document.doc_type, document.created_at)
            sequence = int(document.document_number.rsplit("/", 1)[-1])
            self._sequences[key] = max(self._sequences[key], sequence)

    def _append(self, document: IssuedDocument) -> None:
        if self.journal is None:
            return
        # Synchronous on purpose: no other request can run between taking the key and
        # writing it down, and the answer leaves only after the line is on disk.
        with self.journal.open("a", encoding="utf-8") as file:
            file.write(document.journal_line() + "\n")
            file.flush()
            os.fsync(file.fileno())

    # --- behaviour ------------------------------------------------------------------------

    def token_ok(self, authorization: str | None) -> bool:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        )

    def outage_until(self, moment: datetime) -> datetime | None:
        """The end of the outage window ``moment`` falls in, if any."""
        return next((window.end for window in self.outages if moment in window), None)

    def is_down(self) -> bool:
        return self.forced_down or self.outage_until(self.now()) is not None

    def issue(self, key: str, request: DocumentRequest, *, at: datetime | None = None) -> Answer:
        """Issue the document once per key (at ``at``, default now); the answer to a
        repeated key is the same."""
        document = self.documents.get(key)
        if document is not None:
            if (document.ticket, document.doc_type) != (request.ticket, request.doc_type.value):
                self.stats["conflicts"] += 1
                return _error(409, "Idempotency-Key sudah dipakai untuk pengajuan lain")
            document.submissions += 1
            self.stats["replayed"] += 1
            return Answer(200, self._receipt(document))
        created_at = at or self.now()
        sequence_key = _sequence_key(request.doc_type.value, created_at)
        self._sequences[sequence_key] += 1
        document = IssuedDocument(
            idempotency_key=key,
            ticket=request.ticket,
            doc_type=request.doc_type.value,
            region_code=request.region_code,
            document_number=(
                f"{request.doc_type.value}/{request.region_code}/{sequence_key[1]}/"
                f"{self._sequences[sequence_key]:04d}"
            ),
            created_at=created_at,
        )
        self._append(document)
        self.documents[key] = document
        self.stats["accepted"] += 1
        return Answer(201, self._receipt(document))

    @staticmethod
    def _receipt(document: IssuedDocument) -> dict[str, Any]:
        return {
            "document_number": document.document_number,
            "issued_at": document.created_at.isoformat(),
            "ticket": document.ticket,
        }

    async def submit(self, authorization: str | None, key: str | None, raw: bytes) -> Answer:
        """One ``POST /siak/v1/dokumen``: checks, latency, failures, then :meth:`issue`."""
        if not self.token_ok(authorization):
            return _error(401, "token tidak sah", {"WWW-Authenticate": "Bearer"})
        try:
            key, request = _read_request(key, raw)
        except _RefusedError as refused:
            return refused.answer
        await asyncio.sleep(self.latency.total_seconds())
        now = self.now()
        failure = self._injected_failure(now)
        if failure is not None:
            return failure
        answer = self.issue(key, request, at=now)
        if answer.status < 300 and self.lost_reply_rate > 0 and self.rand() < self.lost_reply_rate:
            self.stats["lost_replies"] += 1
            return _error(504, "gateway timeout")
        return answer

    def _injected_failure(self, now: datetime) -> Answer | None:
        """The outage or random failure this call meets, if any; it does no work."""
        window_end = self.outage_until(now)
        if self.forced_down or window_end is not None:
            self.stats["failed_outage"] += 1
            headers = None
            if window_end is not None:
                headers = {"Retry-After": str(max(1, int((window_end - now).total_seconds())))}
            return _error(503, MAINTENANCE_MESSAGE, headers)
        if self.error_rate > 0 and self.rand() < self.error_rate:
            self.stats["failed_random"] += 1
            if self.rand() < 0.5:
                return _error(500, "kesalahan internal SIAK")
            return _error(503, "SIAK sibuk, coba lagi")
        return None


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.answer = _error(status, message)


def _read_request(key: str | None, raw: bytes) -> tuple[str, DocumentRequest]:
    """The idempotency key and the body, or the 400/422 SIAK answers to a bad request."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise _RefusedError(422, "body harus JSON") from None
    if not isinstance(body, dict):
        raise _RefusedError(422, "body harus objek JSON")
    key = (key or "").strip()
    missing = [name for name in ("ticket", "doc_type") if not body.get(name)]
    if not key:
        missing.insert(0, "Idempotency-Key")
    if missing:
        raise _RefusedError(400, "wajib diisi: " + ", ".join(missing))
    if len(key) > 200:
        raise _RefusedError(400, "Idempotency-Key terlalu panjang (maksimal 200)")
    try:
        return key, DocumentRequest.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()
        )
        raise _RefusedError(422, problems) from None


# --- routes ---------------------------------------------------------------------------------


def siak_router(sim: SiakSimulator) -> APIRouter:
    """SIAK's API under ``/siak/v1`` and the simulator's controls under ``/siak/_sim``."""
    router = APIRouter(prefix=PREFIX)

    @router.post("/v1/dokumen", tags=["siak"])
    async def submit_document(request: Request) -> JSONResponse:
        """Issue a document (idempotent per ``Idempotency-Key``)."""
        answer = await sim.submit(
            request.headers.get("authorization"),
            request.headers.get("idempotency-key"),
            await request.body(),
        )
        return answer.response()

    @router.post("/_sim/outage", tags=["siak control"])
    async def set_outage(outage: OutageRequest) -> dict[str, bool]:
        """Force an outage on (``down: true``) or off."""
        sim.forced_down = outage.down
        return {"down": sim.is_down(), "forced": sim.forced_down}

    @router.get("/_sim/outage", tags=["siak control"])
    async def get_outage() -> dict[str, bool]:
        """Whether SIAK is down now, and whether by a forced outage."""
        return {"down": sim.is_down(), "forced": sim.forced_down}

    @router.get("/_sim/documents", tags=["siak control"])
    async def documents() -> list[dict[str, Any]]:
        """Every issued document, in order of issue."""
        return [document.to_json() for document in sim.documents.values()]

    @router.get("/_sim/stats", tags=["siak control"])
    async def stats() -> dict[str, int]:
        return dict(sim.stats)

    return router
