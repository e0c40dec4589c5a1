"""Automatic checks: what a machine can tell about a request before an officer reads it.

Pure functions of the request, the office's area and the day: no I/O. The one check that
needs other requests (duplicates) is given its answer by the caller.

What each failure means for the citizen:
* papers missing altogether: the citizen can fix it, so it becomes a correction request;
* fewer files than papers required, the NIK from outside the regency, a family card from
  another regency than the NIK, an age that does not fit the document: an officer must
  judge (a photo may show two papers, a resident may have moved in, a NIK may be mistyped),
  so these are flags on the request in the officers' queue;
* another open request of the same document for the same person: this one is closed and
  the citizen is pointed to the existing ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from services.verification.domain.request import Request, State
from shared.contracts import CheckResult
from shared.documents import DocType, KtpReason, document
from shared.identity import (
    InvalidIdentityNumberError,
    Nik,
    OfficeArea,
    describe_region,
    parse_nik,
)

JAKARTA: Final = ZoneInfo("Asia/Jakarta")
KTP_AGE: Final = 17
"""A KTP-el from 17; a KIA until then (a married person under 17 is a case for officers)."""
CHILD_PHOTO_AGE: Final = 5
"""The KIA's child photo is required from this age."""
AGE_RULES: Final = {DocType.KIA: "under", DocType.KTP: "from"}


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    area: OfficeArea
    papers_grace: timedelta
    """How long after a request without all its files the checks wait for more: citizens
    often send the text first and the photos after it."""


def papers_required(request: Request, today: date) -> tuple[str, ...]:
    spec = document(DocType(request.doc_type))
    reason = request.applicant.get("reason")
    papers = spec.requirements_for(KtpReason(reason) if reason in set(KtpReason) else None)
    nik = _nik(request, today)
    if spec.doc_type == DocType.KIA and nik is not None and nik.age_on(today) < CHILD_PHOTO_AGE:
        papers = tuple(paper for paper in papers if "foto" not in paper.lower())
    return papers


def ready_for_checks(request: Request, policy: CheckPolicy, now: datetime) -> bool:
    """Whether to check now: after a correction at once; on receipt once every paper has a
    file, or when the grace period for sending them is over."""
    if request.state == State.AMENDED:
        return True
    if request.state != State.RECEIVED or request.received_at is None:
        return False
    received_on = request.received_at.astimezone(JAKARTA).date()
    if len(request.attachments) >= len(papers_required(request, received_on)):
        return True
    return now - request.received_at >= policy.papers_grace


def run_checks(
    request: Request, policy: CheckPolicy, today: date, duplicate_of: str | None
) -> tuple[CheckResult, ...]:
    nik = _nik(request, today)
    results = [_papers(request, today)]
    if nik is not None:
        results += [_nik_region(nik, policy.area), _kk_region(request, nik)]
        if (age := _age(request, nik, today)) is not None:
            results.append(age)
    if request.check_round == 0:
        results.append(
            CheckResult(
                check="duplicate",
                passed=duplicate_of is None,
                reason=(
                    f"Permohonan yang sama masih diproses dengan tiket {duplicate_of}."
                    if duplicate_of
                    else ""
                ),
                related_ticket=duplicate_of,
            )
        )
    return tuple(results)


def _nik(request: Request, today: date) -> Nik | None:
    text = request.applicant.get("nik")
    if not isinstance(text, str):
        return None
    try:
        return parse_nik(text, today)
    except InvalidIdentityNumberError:
        return None  # intake checked it on another day; nothing to add here


def _papers(request: Request, today: date) -> CheckResult:
    papers = papers_required(request, today)
    files = len(request.attachments)
    if files == 0:
        listed = "; ".join(papers)
        return CheckResult(
            check="papers",
            passed=False,
            fixable=True,
            reason=f"Belum ada foto atau PDF persyaratan. Kirimkan: {listed}.",
        )
    if files < len(papers):
        return CheckResult(
            check="papers",
            passed=False,
            reason=f"Berkas {files} dari {len(papers)} persyaratan; periksa kelengkapannya.",
        )
    return CheckResult(check="papers", passed=True)


def _nik_region(nik: Nik, area: OfficeArea) -> CheckResult:
    if area.contains(nik.region_code):
        return CheckResult(check="nik_region", passed=True)
    where = describe_region(nik.region_code) or f"kode wilayah {nik.region_code}"
    return CheckResult(
        check="nik_region",
        passed=False,
        reason=f"NIK diterbitkan di {where}, di luar {area.name} (penduduk pindahan?).",
    )


def _kk_region(request: Request, nik: Nik) -> CheckResult:
    no_kk = request.applicant.get("no_kk")
    if not isinstance(no_kk, str) or no_kk[:4] == nik.regency_code:
        return CheckResult(check="kk_region", passed=True)
    return CheckResult(
        check="kk_region",
        passed=False,
        reason=(
            f"No. KK dari {describe_region(no_kk[:6]) or no_kk[:6]}, NIK dari "
            f"{describe_region(nik.region_code) or nik.region_code}: pastikan data pindah datang."
        ),
    )


def _age(request: Request, nik: Nik, today: date) -> CheckResult | None:
    rule = AGE_RULES.get(DocType(request.doc_type))
    if rule is None:
        return None
    age = nik.age_on(today)
    if rule == "under" and age >= KTP_AGE:
        reason = f"Menurut NIK pemohon berusia {age} tahun; KIA hanya untuk anak di bawah 17 tahun."
    elif rule == "from" and age < KTP_AGE:
        reason = (
            f"Menurut NIK pemohon berusia {age} tahun; KTP-el mulai usia 17 tahun "
            "(atau sudah/pernah kawin)."
        )
    else:
        return CheckResult(check="age", passed=True)
    return CheckResult(check="age", passed=False, reason=reason)
