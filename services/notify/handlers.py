"""Notify's use cases: owe a message, send it once, learn what became of it.

1. **Record the intent.** An event that calls for a message (a request received, a pickup
   date, a guided-mode question...) is rendered once and recorded as ``NotificationQueued``
   on ``notification-<cause event id>``, together with its row in the outbox table and the
   consumer's inbox record: one transaction, so a redelivered cause owes nothing twice.
2. **Send.** A worker takes due rows (each citizen's oldest first, one at a time), marks
   the attempt begun (committed before the call), waits for the business number's token
   bucket and the citizen's pacing, decides the form (free-form inside the 24-hour window,
   the approved template outside it, nothing when there is no template), and calls the
   Cloud API with ``biz_opaque_callback_data`` = ``notification:<id>``.
3. **Record the result.** ``NotificationSent`` (with the wamid) or, for good,
   ``NotificationFailed`` with the reason officers read; a retryable error (throughput,
   pair rate, 131000, 5xx, time-outs) puts the row back with exponential backoff and jitter.
4. **Reconcile.** A crash between 2 and 3 leaves an attempt begun and never finished. The
   Cloud API has no idempotency key, but it reports every accepted message in delivery
   statuses carrying our callback data: if one comes, the attempt went out (recorded as
   sent, ``reconciled``); if none comes within ``notify_reconcile_after``, it never left and
   is sent again. A double needs a crash in that instant *and* Meta's status webhooks held
   back longer than that wait.
5. **Delivery statuses** (``sent``, ``delivered``, ``read``, ``failed``) are applied as a
   one-way state machine and recorded as ``NotificationStatusChanged``; a ``failed`` with
   131047 (the window closed after all) sends the message again as its template.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.notify.adapters import outbox as db
from services.notify.adapters.outbox import OutboxRow
from services.notify.domain.delivery import (
    OUTSIDE_WINDOW,
    RecipientPacer,
    TokenBucket,
    advances,
    backoff,
    failure_reason,
    in_window,
    verdict,
)
from services.notify.domain.messages import render
from services.notify.domain.outbound import Attached, OutboundMessage, choose_form, cloud_payload
from services.notify.domain.templates import template_name
from shared.bus.consumer import HandlerContext
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Settings
from shared.contracts import (
    DeliveryState,
    DeliveryStatusReceived,
    NotificationFailed,
    NotificationQueued,
    NotificationSent,
    NotificationStatusChanged,
    SendForm,
    WhatsAppMessageReceived,
    citizen_stream,
)
from shared.eventstore.envelope import (
    NO_STREAM,
    Metadata,
    UnknownEventTypeError,
    deterministic_event_id,
)
from shared.eventstore.errors import ConcurrencyConflictError
from shared.eventstore.store import EventStore, UnitOfWork
from shared.mediastore import FileMediaStore
from shared.runtime.rounds import report_failed_round
from shared.telemetry import attach_trace_context, current_trace_context, detach
from shared.whatsapp.client import CloudApiClient, CloudApiError

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

REPLY_EVENTS: Final = (
    ("citizen", "InvalidRequestReceived"),
    ("citizen", "StatusReported"),
    ("citizen", "InfoRequested"),
    ("citizen", "MenuRequested"),
    ("citizen", "AttachmentRejected"),
    ("citizen", "AttachmentLinked"),
    ("citizen", "AttachmentHeld"),
    ("citizen", "UnsupportedCommandReceived"),
    ("citizen", "CorrectionRefused"),
    ("citizen", "DuplicateRequestReceived"),
    ("citizen", "CancellationRefused"),
    ("citizen", "GuidedStepAsked"),
    ("citizen", "GuidedEnded"),
    ("request", "RequestReceived"),
    ("request", "ChangesRequested"),
    ("request", "RequestAmended"),
    ("request", "RequestVerified"),
    ("request", "RequestRejected"),
    ("request", "RequestCancelled"),
    ("request", "IssuanceScheduled"),
    ("request", "IssuanceDelayed"),
    ("request", "DocumentIssued"),
    ("request", "DocumentReady"),
    ("request", "DocumentCollected"),
    ("request", "SurveyAnswered"),
    ("complaint", "ComplaintReceived"),
    ("complaint", "ComplaintAnswered"),
)
INBOUND_EVENTS: Final = (("citizen", "WhatsAppMessageReceived"),)
"""Read for the 24-hour window, in the same consumer as the replies: a citizen's message
is then always counted before the answer to it is queued (one stream, in order)."""
STATUS_EVENTS: Final = (("delivery", "DeliveryStatusReceived"),)

CALLBACK_PREFIX: Final = "notification:"
_TRACKED_STATUSES: Final[Mapping[str, DeliveryState]] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
CRASH_AFTER_SEND: Final = "notify-crash-after-send"
"""A file of this name in ``<data>/faults`` makes notify kill itself (SIGKILL) right after
its next accepted send, before recording it: the crash that reconciliation must survive.
Used by the end-to-end test; ignored in production."""


class LetterMissingError(Exception):
    """The file a message must carry is not in the media store (or not the bytes named)."""


@dataclass(frozen=True)
class SendPolicy:
    rate: float = 80.0
    recipient_interval: timedelta = timedelta(seconds=6)
    recipient_burst: int = 3
    retry_base: timedelta = timedelta(seconds=1)
    retry_max: timedelta = timedelta(minutes=5)
    give_up_after: timedelta = timedelta(days=3)
    reconcile_after: timedelta = timedelta(minutes=2)
    window_margin: timedelta = timedelta(minutes=10)
    lease: timedelta = timedelta(seconds=60)
    """Longer than any one call (the client times out after 15 s)."""
    batch: int = 200
    concurrency: int = 32
    interactive: bool = True
    template_names: Mapping[str, str] = field(default_factory=dict)
    language: str = "id"

    @classmethod
    def from_settings(cls, settings: Settings) -> SendPolicy:
        return cls(
            rate=settings.notify_rate,
            recipient_interval=settings.notify_recipient_interval,
            recipient_burst=settings.notify_recipient_burst,
            retry_base=settings.notify_retry_base,
            retry_max=settings.notify_retry_max,
            give_up_after=settings.notify_give_up_after,
            reconcile_after=settings.notify_reconcile_after,
            lease=settings.notify_send_lease,
            window_margin=settings.notify_window_margin,
            interactive=settings.whatsapp_interactive,
            template_names=dict(settings.whatsapp_templates),
            language=settings.whatsapp_template_language,
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _record_status(
    uow: UnitOfWork,
    context: HandlerContext,
    status: DeliveryStatusReceived,
    notification_id: str,
    new: DeliveryState,
    row: db.Tracked,
) -> None:
    """``NotificationStatusChanged`` for a status that moved the message forward."""
    changed = NotificationStatusChanged(
        cause_event_id=notification_id,
        wamid=status.wamid,
        status=new,
        at=status.at,
        error_code=status.error_codes[0] if status.error_codes else None,
        error_title=status.error_titles[0] if status.error_titles else None,
        ticket=row.ticket,
    )
    uow.append(
        f"notification-{notification_id}",
        [
            changed.to_new_event(
                event_id=context.event_id("status"),
                metadata=context.metadata(actor="system:notify"),
            )
        ],
    )


class _SendRecorder:
    """Records accepted sends in one transaction per moment (group commit): the sends of
    one round finish at about the same time, and each would otherwise be a transaction of
    its own. A caller returns once its send is recorded. If the shared transaction fails,
    each send is recorded on its own, so one row's trouble stays with that row."""

    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._pending: list[tuple[OutboxRow, str, SendForm, asyncio.Future[None]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None

    async def record(self, row: OutboxRow, wamid: str, form: SendForm) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, wamid, form, future))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # the other sends that are finishing join this batch
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)
        finally:
            self._flushing = False

    async def _write(
        self, batch: list[tuple[OutboxRow, str, SendForm, asyncio.Future[None]]]
    ) -> None:
        notify = self._notify
        try:
            async with notify.store.unit_of_work() as uow:
                for row, wamid, form, _ in batch:
                    await notify._record_sent(uow, row, wamid, form, reconciled=False)
        except Exception:  # noqa: BLE001 - recorded one by one below, each with its own outcome
            if len(batch) == 1:
                row, wamid, form, future = batch[0]
                await _settle(future, notify._sent(row, wamid, form))
                return
            await asyncio.gather(
                *(
                    _settle(future, notify._sent(row, wamid, form))
                    for row, wamid, form, future in batch
                )
            )
            return
        for *_, future in batch:
            if not future.done():
                future.set_result(None)


async def _settle(future: asyncio.Future[None], work: Awaitable[None]) -> None:
    try:
        await work
    except Exception as error:  # noqa: BLE001 - the caller hears of it
        if not future.done():
            future.set_exception(error)
        return
    if not future.done():
        future.set_result(None)


@dataclass
class Notify:
    store: EventStore
    cloud: CloudApiClient
    media: FileMediaStore
    key: bytes
    calendar: WorkingCalendar | None = None
    office_hours: OfficeHours | None = None
    policy: SendPolicy = field(default_factory=SendPolicy)
    now: Callable[[], datetime] = _utc_now
    clock: Callable[[], float] = time.monotonic
    crash_marker: Path | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.policy.rate, max(1.0, self.policy.rate), self.clock)
        self.pacer = RecipientPacer(
            self.policy.recipient_interval.total_seconds(),
            self.policy.recipient_burst,
            self.clock,
        )
        self._sends = _SendRecorder(self)

    # -- 1. the intent ----------------------------------------------------------------

    async def handle(self, context: HandlerContext) -> None:
        """The ``notify-replies`` consumer: citizens' messages (for the window) and the
        events that call for a message."""
        if context.event.erased:
            # The citizen's data was erased (a replay, or a redelivery after the erasure):
            # there is no number to write to, and nothing is owed any more.
            log.info("%s of an erased citizen: no message", context.event.event_type)
            return
        if context.event.event_type == WhatsAppMessageReceived.event_type:
            await self.record_inbound(context)
        else:
            await self.queue(context)

    async def record_inbound(self, context: HandlerContext) -> None:
        message = context.decode(WhatsAppMessageReceived)
        async with context.unit_of_work() as uow:
            await db.touch_contact(uow.connection, context.event.stream_id, message.sent_at)

    def _owed(self, context: HandlerContext) -> tuple[NotificationQueued, db.Owed] | None:
        """The message ``context``'s event calls for, if any, as its intent and its row."""
        try:
            event = context.registry.decode(context.event)
        except UnknownEventTypeError:
            return None
        message = render(
            event,
            calendar=self.calendar,
            office_hours=self.office_hours,
            at=context.event.occurred_at,
        )
        if message is None:
            return None
        if not message.to:
            # Caused by a request whose citizen's data was erased: there is nobody to tell.
            log.info("%s has no number (erased data): no message", context.event.event_type)
            return None
        notification_id = str(context.event.event_id)
        queued = NotificationQueued(
            cause_event_id=notification_id,
            kind=message.kind,
            to=message.to,
            ticket=message.ticket,
            message=message.model_dump(mode="json"),
        )
        received_at = getattr(event, "received_at", None)
        return queued, db.Owed(
            notification_id=notification_id,
            recipient=citizen_stream(message.to, self.key),
            message=message,
            inbound_at=received_at if isinstance(received_at, datetime) else None,
            trace=context.metadata(actor="system:notify").trace or {},
        )

    def _stage(self, uow: UnitOfWork, context: HandlerContext, queued: NotificationQueued) -> None:
        uow.append(
            f"notification-{queued.cause_event_id}",
            [
                queued.to_new_event(
                    event_id=context.event_id("queued"),
                    metadata=context.metadata(actor="system:notify"),
                )
            ],
            NO_STREAM,
        )

    async def queue(self, context: HandlerContext) -> None:
        owed = self._owed(context)
        if owed is None:
            return
        queued, row = owed
        try:
            async with context.unit_of_work() as uow:
                self._stage(uow, context, queued)
                await db.enqueue_many(uow.connection, [row], self.now())
        except ConcurrencyConflictError:
            # Its notification stream exists: sent before this outbox existed.
            log.info("message %s for %s was handled before", queued.kind, queued.cause_event_id)
            return
        context.after_commit(self.wake.set)

    async def handle_many(self, contexts: Sequence[HandlerContext]) -> None:
        """:meth:`handle` for a batch in its shared transaction: the citizens' latest
        messages written with one statement, the messages owed with another (their intents
        are appended together at the commit). A notification stream that exists already
        fails the batch, which then runs one by one (see :meth:`queue`)."""
        inbound: dict[str, datetime] = {}
        rows: list[db.Owed] = []
        connection: db.Connection | None = None
        for context in contexts:
            event = context.event
            if event.erased:
                log.info("%s of an erased citizen: no message", event.event_type)
                continue
            if event.event_type == WhatsAppMessageReceived.event_type:
                sent_at = context.decode(WhatsAppMessageReceived).sent_at
                inbound[event.stream_id] = max(sent_at, inbound.get(event.stream_id, sent_at))
                async with context.unit_of_work() as uow:
                    connection = uow.connection
                continue
            owed = self._owed(context)
            if owed is None:
                continue
            queued, row = owed
            async with context.unit_of_work() as uow:
                self._stage(uow, context, queued)
                connection = uow.connection
            rows.append(row)
            context.after_commit(self.wake.set)
        if connection is not None:
            await db.touch_contacts(connection, inbound)
            await db.enqueue_many(connection, rows, self.now())

    # -- 5. delivery statuses ---------------------------------------------------------

    async def on_status(self, context: HandlerContext) -> None:
        status = context.decode(DeliveryStatusReceived)
        callback = status.callback_data or ""
        new = _TRACKED_STATUSES.get(status.status)
        if not callback.startswith(CALLBACK_PREFIX) or new is None:
            return  # not one of ours, or a status we do not track (e.g. "deleted")
        notification_id = callback.removeprefix(CALLBACK_PREFIX)
        code = status.error_codes[0] if status.error_codes else None
        resend = False
        async with context.unit_of_work() as uow:
            row = await db.tracked(uow.connection, notification_id)
            if row is None or not advances(row.delivery, new):
                return
            if row.wamid is not None and row.wamid != status.wamid:
                return  # a status of an earlier attempt (one refused for the window)
            await db.set_delivery(uow.connection, notification_id, new, status.wamid, self.now())
            _record_status(uow, context, status, notification_id, new, row)
            if new != "failed" and row.state == "queued":
                # A retry is waiting, yet the Cloud API reports the message: the call that
                # "timed out" had reached it. Settled as sent; the retry never goes.
                waiting = await db.one(uow.connection, notification_id)
                if waiting is not None:
                    await self._record_sent(
                        uow, waiting, status.wamid, _form_of(waiting), reconciled=True
                    )
            if new == "failed":
                log.warning("message %s failed after it was accepted: code %s", row.wamid, code)
                if code == OUTSIDE_WINDOW and row.form != "template" and row.has_template:
                    await db.requeue_as_template(uow.connection, notification_id, self.now())
                    resend = True
        if resend:
            context.after_commit(self.wake.set)

    async def on_statuses(self, contexts: Sequence[HandlerContext]) -> None:
        """:meth:`on_status` for a batch in its shared transaction: the rows read with one
        statement and updated with one; the rare turns (a failure, a waiting retry that a
        status settles) take the one-by-one path, in the same transaction and order."""
        wanted = []
        for context in contexts:
            status = context.decode(DeliveryStatusReceived)
            callback = status.callback_data or ""
            new = _TRACKED_STATUSES.get(status.status)
            if callback.startswith(CALLBACK_PREFIX) and new is not None:
                wanted.append((context, status, callback.removeprefix(CALLBACK_PREFIX), new))
        if not wanted:
            return
        shared = wanted[0][0].shared
        if shared is None:
            raise RuntimeError("on_statuses runs in a batch's shared transaction")
        connection, now = shared.connection, self.now()
        rows = await db.tracked_many(connection, [nid for _, _, nid, _ in wanted])
        changes: list[tuple[str, DeliveryState, str]] = []
        for context, status, notification_id, new in wanted:
            row = rows.get(notification_id)
            if row is None or not advances(row.delivery, new):
                continue
            if row.wamid is not None and row.wamid != status.wamid:
                continue
            if new == "failed" or row.state == "queued":
                await db.set_deliveries(connection, changes, now)
                changes = []
                await self.on_status(context)
                refreshed = await db.tracked(connection, notification_id)
                if refreshed is not None:
                    rows[notification_id] = refreshed
                continue
            async with context.unit_of_work() as uow:
                _record_status(uow, context, status, notification_id, new, row)
            changes.append((notification_id, new, status.wamid))
            rows[notification_id] = dataclasses.replace(
                row, delivery=new, wamid=row.wamid or status.wamid
            )
        await db.set_deliveries(connection, changes, now)

    # -- 2.-4. the worker ---------------------------------------------------------------

    async def run_worker(self, stop: asyncio.Event, idle: float = 0.5) -> None:
        """Send what is due until ``stop``; woken early by new intents."""
        reconciled_at = float("-inf")
        while not stop.is_set():
            done = 0
            try:
                if self.clock() - reconciled_at >= 5.0:
                    await self.reconcile()
                    reconciled_at = self.clock()
                    self.pacer.forget_idle()
                done = await self.drain_once()
            except Exception as error:  # noqa: BLE001 - reported; the loop goes on
                report_failed_round(log, "notify send round", error)
            if done == 0:
                self.wake.clear()
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
                _, pending = await asyncio.wait(
                    waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()

    async def drain_once(self) -> int:
        """One round: lease due messages, send those whose citizen may get one now.
        Returns how many were attempted."""
        now = self.now()
        rows = await db.lease(self.store.pool, now, self.policy.batch, self.policy.lease)
        if not rows:
            return 0
        ready, later = [], []
        for row in rows:
            wait = self.pacer.wait(row.recipient)
            if wait > 0:
                later.append((row.notification_id, now + timedelta(seconds=wait)))
            else:
                self.pacer.take(row.recipient)
                ready.append(row)
        await db.postpone(self.store.pool, later, now)
        gate = asyncio.Semaphore(self.policy.concurrency)

        async def one(row: OutboxRow) -> None:
            async with gate:
                try:
                    await self.attempt(row)
                except Exception as error:  # noqa: BLE001 - reported; reconciliation resends
                    report_failed_round(log, f"sending {row.message.kind}", error)

        await asyncio.gather(*(one(row) for row in ready))
        return len(ready)

    async def _throughput(self) -> None:
        """Wait for the business number's next token (the bucket is shared by every task)."""
        wait = self.bucket.wait()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.bucket.wait()
        self.bucket.take()

    async def attempt(self, row: OutboxRow) -> None:
        """One attempt at one leased message, recorded whatever its outcome, as a span of
        the trace that asked for the message (so the send is part of the request's path)."""
        attributes: dict[str, str | int] = {
            "adminduk.notification.kind": row.message.kind,
            "adminduk.attempt": row.attempts,
        }
        if row.message.ticket:
            attributes["adminduk.ticket"] = row.message.ticket
        token = attach_trace_context(row.trace)
        try:
            with tracer.start_as_current_span(
                "whatsapp send", kind=SpanKind.CLIENT, attributes=attributes
            ):
                await self._attempt(row)
        finally:
            detach(token)

    async def _attempt(self, row: OutboxRow) -> None:
        message = row.message
        now = self.now()
        open_window = not row.force_template and in_window(
            row.last_inbound, now, self.policy.window_margin
        )
        form = choose_form(message, in_window=open_window, interactive=self.policy.interactive)
        if form is None:
            await self._failed(row, OUTSIDE_WINDOW, failure_reason(OUTSIDE_WINDOW, None))
            return
        await self._throughput()
        try:
            wamid = await self._send(row, form)
        except LetterMissingError as error:
            await self._failed(row, None, str(error))
            return
        except CloudApiError as error:
            await self._refused(row, form, error)
            return
        self._crash_if_asked()
        await self._sends.record(row, wamid, form)

    async def _send(self, row: OutboxRow, form: SendForm) -> str:
        message = row.message
        media_id = None
        needs_file = form == "document" or (
            form == "template" and message.template is not None and message.template.document_header
        )
        if needs_file and message.document is not None:
            data = await self._letter(message.document)
            media_id = await self.cloud.upload_media(
                data, message.document.content_type, message.document.filename
            )
        name = (
            template_name(message.template.key, self.policy.template_names)
            if form == "template" and message.template is not None
            else None
        )
        payload = cloud_payload(
            message, form, template_name=name, language=self.policy.language, media_id=media_id
        )
        payload["biz_opaque_callback_data"] = f"{CALLBACK_PREFIX}{row.notification_id}"
        return await self.cloud.send(payload)

    async def _refused(self, row: OutboxRow, form: SendForm, error: CloudApiError) -> None:
        now = self.now()
        policy = self.policy
        match verdict(error.status, error.code, error.retryable):
            case "throttled":
                self.bucket.pause(backoff(1, policy.retry_base, policy.retry_max).total_seconds())
                delay = backoff(row.attempts, policy.retry_base, policy.retry_max)
            case "paced":
                self.pacer.slow_down(row.recipient)
                delay = policy.recipient_interval + backoff(
                    row.attempts, policy.retry_base, policy.retry_max
                )
            case "outside_window" if form != "template" and row.message.template is not None:
                await db.retry_later(
                    self.store.pool,
                    row.notification_id,
                    now,
                    now,
                    error_code=error.code,
                    reason="outside the 24-hour window: sending the template",
                    force_template=True,
                )
                return
            case "auth":
                log.error("the Cloud API refused our access token (HTTP %s)", error.status)
                delay = policy.retry_max
            case "retry" if error.unanswered:
                # A time-out or a broken connection: the call may have reached the API. Wait
                # as long as reconciliation does, so a delivery status can settle it first.
                delay = max(
                    policy.reconcile_after,
                    backoff(row.attempts, policy.retry_base, policy.retry_max),
                )
            case "retry":
                delay = backoff(row.attempts, policy.retry_base, policy.retry_max)
            case _:
                await self._failed(row, error.code, failure_reason(error.code, error.status))
                return
        if now - row.created_at > policy.give_up_after:
            reason = f"gagal terkirim setelah {row.attempts} percobaan"
            await self._failed(row, error.code, reason)
            return
        log.info(
            "send of %s refused (HTTP %s, code %s); attempt %d, again in %.1f s",
            row.message.kind,
            error.status,
            error.code,
            row.attempts,
            delay.total_seconds(),
        )
        await db.retry_later(
            self.store.pool,
            row.notification_id,
            now + delay,
            now,
            error_code=error.code,
            reason=f"HTTP {error.status}, code {error.code}",
        )

    def _crash_if_asked(self) -> None:
        if self.crash_marker is not None and self.crash_marker.exists():
            self.crash_marker.unlink(missing_ok=True)
            log.warning("fault injection: killing notify between a send and its record")
            os.kill(os.getpid(), signal.SIGKILL)

    def _metadata(self, notification_id: str) -> Metadata:
        return Metadata(
            causation_id=deterministic_event_id("notify-cause", notification_id),
            actor="system:notify",
            trace=current_trace_context(),
        )

    async def _sent(
        self, row: OutboxRow, wamid: str, form: SendForm, *, reconciled: bool = False
    ) -> None:
        async with self.store.unit_of_work() as uow:
            await self._record_sent(uow, row, wamid, form, reconciled=reconciled)

    async def _record_sent(
        self,
        uow: UnitOfWork,
        row: OutboxRow,
        wamid: str,
        form: SendForm,
        *,
        reconciled: bool,
    ) -> None:
        """``NotificationSent`` for the row's latest attempt, with the row's update. The id
        is the attempt's, so the worker and reconciliation cannot both record it."""
        message = row.message
        sent = NotificationSent(
            cause_event_id=row.notification_id,
            kind=message.kind,
            to=message.to,
            wamid=wamid,
            form=form,
            template=(
                template_name(message.template.key, self.policy.template_names)
                if form == "template" and message.template is not None
                else None
            ),
            attempts=row.attempts,
            ticket=message.ticket,
            reconciled=reconciled,
        )
        uow.append(
            f"notification-{row.notification_id}",
            [
                sent.to_new_event(
                    event_id=deterministic_event_id(
                        "notify", row.notification_id, "sent", str(row.attempts)
                    ),
                    metadata=self._metadata(row.notification_id),
                )
            ],
        )
        await db.mark_sent(uow.connection, row.notification_id, wamid, form, self.now())

    async def _failed(self, row: OutboxRow, code: int | None, reason: str) -> None:
        log.warning("message %s failed for good: %s", row.message.kind, reason)
        message = row.message
        failed = NotificationFailed(
            cause_event_id=row.notification_id,
            kind=message.kind,
            to=message.to,
            error_code=code,
            reason=reason,
            attempts=row.attempts,
            ticket=message.ticket,
        )
        async with self.store.unit_of_work() as uow:
            uow.append(
                f"notification-{row.notification_id}",
                [
                    failed.to_new_event(
                        event_id=deterministic_event_id(
                            "notify", row.notification_id, "failed", str(row.attempts)
                        ),
                        metadata=self._metadata(row.notification_id),
                    )
                ],
            )
            await db.mark_failed(uow.connection, row.notification_id, code, reason, self.now())

    async def reconcile(self) -> int:
        """Settle attempts a crash left unknown; returns how many were settled."""
        now = self.now()
        settled = 0
        for doubt in await db.in_doubt(self.store.pool, now):
            if doubt.wamid is not None:
                # A delivery status proved that the attempt went out.
                row = await self._row(doubt.notification_id)
                if row is not None:
                    await self._sent(row, doubt.wamid, _form_of(row), reconciled=True)
                    log.info("reconciled %s: it was sent before the crash", row.message.kind)
                    settled += 1
            elif now - doubt.leased_until >= self.policy.reconcile_after and (
                await db.requeue_unknown(self.store.pool, doubt.notification_id, now)
            ):
                log.info("no status for an interrupted send: sending it again")
                settled += 1
        if settled:
            self.wake.set()
        return settled

    async def _row(self, notification_id: str) -> OutboxRow | None:
        async with self.store.pool.acquire() as connection:
            return await db.one(connection, notification_id)

    async def _letter(self, document: Attached) -> bytes:
        # The reasons name no person: they end up in logs and in the notification stream.
        if document.sha256 is None:
            raise LetterMissingError("the event carries no letter")
        try:
            data = await asyncio.to_thread(self.media.get, document.sha256)
        except (FileNotFoundError, ValueError) as error:  # other I/O errors are retried
            raise LetterMissingError(
                f"letter {document.sha256[:12]} not in the media store"
            ) from error
        if hashlib.sha256(data).hexdigest() != document.sha256:
            raise LetterMissingError(f"letter {document.sha256[:12]} does not match its digest")
        return data


def _form_of(row: OutboxRow) -> SendForm:
    """The form an interrupted attempt most likely took (for the record only)."""
    message: OutboundMessage = row.message
    if row.force_template:
        return "template"
    if message.document is not None:
        return "document"
    return "interactive" if message.choices is not None else "text"
