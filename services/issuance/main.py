"""How the issuance service is built and run: schedules verified requests, hands them to
SIAK (the worker), renews promises and announces ready documents (the sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.issuance.adapters.letters import LetterSigner
from services.issuance.adapters.siak import Breaker, BreakingSiak, HttpSiak
from services.issuance.handlers import IssuanceService, Office, SiakPolicy
from services.issuance.service import MIGRATIONS
from shared.bus.consumer import Consumers, ConsumerSpec, Handler
from shared.bus.jetstream import subject_filter
from shared.calendar import OfficeHours, WorkingCalendar
from shared.config import Settings
from shared.eventstore.store import EventStore
from shared.identity import OfficeArea
from shared.mediastore import FileMediaStore
from shared.runtime.rounds import report_failed_round
from shared.runtime.service import open_resources

log = logging.getLogger(__name__)


def office_of(settings: Settings) -> Office:
    regency = OfficeArea(settings.office_region).name.replace("Kab.", "Kabupaten")
    return Office(
        region_code=settings.office_region,
        name=f"Dinas Kependudukan dan Pencatatan Sipil {regency}",
        pickup_place=settings.pickup_place or f"loket pengambilan dokumen Disdukcapil {regency}",
    )


def signer_of(settings: Settings, office: Office) -> LetterSigner:
    """The office's key when configured, else a development key under the data folder."""
    if settings.signing_key_file is not None:
        password = settings.signing_key_password
        return LetterSigner.from_pkcs12(
            settings.signing_key_file,
            None if password is None else password.get_secret_value().encode(),
        )
    return LetterSigner.development(settings.data_dir / "signing", office.name)


def build(settings: Settings, store: EventStore, siak: HttpSiak) -> IssuanceService:
    office = office_of(settings)
    breaker = Breaker.from_settings(settings)
    return IssuanceService(
        store=store,
        siak=BreakingSiak(siak, breaker),
        breaker=breaker,
        calendar=WorkingCalendar(OfficeHours.parse(settings.office_hours, settings.office_days)),
        office=office,
        signer=signer_of(settings, office),
        media=FileMediaStore(settings.data_dir / "media"),
        policy=SiakPolicy(
            concurrency=settings.siak_concurrency,
            retry_base=settings.siak_retry_base,
            retry_max=settings.siak_retry_max,
        ),
    )


def consumers_of(issuance: IssuanceService) -> list[tuple[ConsumerSpec, Handler]]:
    """Issuance's durable consumers and their handlers (the replay tools use them too)."""
    return [
        (
            ConsumerSpec(
                name="issuance-schedule", subjects=[subject_filter("request", "RequestVerified")]
            ),
            issuance.on_verified,
        ),
        (
            ConsumerSpec(
                name="issuance-closed",
                subjects=[
                    subject_filter("request", "RequestCancelled"),
                    subject_filter("request", "DocumentCollected"),
                ],
            ),
            issuance.on_closed,
        ),
    ]


def register_consumers(consumers: Consumers, issuance: IssuanceService) -> None:
    for spec, handler in consumers_of(issuance):
        consumers.register(spec, handler)


async def _sweep_forever(issuance: IssuanceService, interval: float) -> None:
    while True:
        try:
            await issuance.sweep()
        except Exception as error:  # noqa: BLE001 - reported; the loop goes on
            report_failed_round(log, "issuance sweep", error)
        await asyncio.sleep(interval)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    async with open_resources("issuance", settings, migrations=[MIGRATIONS]) as resources:
        siak = HttpSiak.from_settings(settings)
        try:
            issuance = build(settings, resources.store, siak)
            register_consumers(resources.consumers, issuance)
            await resources.consumers.start(resources.jetstream)
            tasks = [
                asyncio.create_task(issuance.run_worker(stop)),
                asyncio.create_task(_sweep_forever(issuance, settings.issuance_sweep_interval)),
            ]
            try:
                await stop.wait()
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await siak.aclose()
