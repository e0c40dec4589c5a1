"""What a page shows, prepared for its template: the applicant's fields, the files, the
history with officers' names, and the dictionaries the queue, request and supervisor pages
render."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from starlette.datastructures import FormData

from services.verification.adapters.api import BOOTSTRAP_OFFICER
from services.verification.console.forms import text, texts
from services.verification.console.labels import (
    ERASED,
    EVENT_LABELS,
    FIELD_LABELS,
    KTP_REASONS,
    ROLE_LABELS,
    STATE_LABELS,
    history_actor,
    history_note,
)
from services.verification.domain.officers import OfficerAccount, Role
from services.verification.domain.reasons import CANNED_REASONS
from services.verification.domain.request import (
    FINAL_STATES,
    MAX_REASON_LENGTH,
    OPEN_STATES,
    State,
)
from services.verification.handlers import HistoryEntry, KecamatanBacklog, RequestDetail
from shared.documents import DocType, document

INLINE_TYPES: Final = frozenset({"image/jpeg", "image/png", "application/pdf"})


def request_url(ticket: str) -> str:
    return f"/console/requests/{quote(ticket, safe='')}"


def officer_names(officer: OfficerAccount, history: Sequence[HistoryEntry]) -> dict[str, str]:
    names = {BOOTSTRAP_OFFICER.id: BOOTSTRAP_OFFICER.name, officer.id: officer.name}
    for entry in history:
        if entry.type == "RequestClaimed":
            names[str(entry.data.get("officer_id"))] = str(entry.data.get("officer_name"))
    return names


def fields(detail: RequestDetail) -> list[tuple[str, str, str]]:
    """(key, label, value) of the applicant's typed fields that this document has."""
    if detail.personal_data_erased:
        return [("erased", "Data pemohon", ERASED)]
    applicant = detail.request.applicant
    doc_type = detail.request.doc_type
    labels = dict(FIELD_LABELS)
    if doc_type == DocType.KK:
        labels["nama"] = "Nama kepala keluarga"
    elif doc_type == DocType.AKTA_KEMATIAN:
        labels["nik"], labels["nama"] = "NIK almarhum", "Nama almarhum"
    rows = []
    for key, label in labels.items():
        value = applicant.get(key)
        if value is None or value == "":
            continue
        if key == "kecamatan_name":
            value = f"{value} ({applicant.get('kecamatan_code') or '-'})"
        elif key == "reason":
            value = KTP_REASONS.get(str(value), str(value))
        rows.append((key, label, str(value)))
    shown = set(labels) | {"kecamatan_code"}
    rows += [
        (key, key.replace("_", " ").capitalize(), str(value))
        for key, value in applicant.items()
        if key not in shown and value not in {None, ""}
    ]
    return rows


def attachments(detail: RequestDetail) -> list[dict[str, Any]]:
    ticket = detail.request.ticket
    shown: list[dict[str, Any]] = []
    for attachment in detail.request.attachments:
        content_type = attachment.content_type
        kind = (
            "image"
            if content_type in {"image/jpeg", "image/png"}
            else "pdf"
            if content_type == "application/pdf"
            else "other"
        )
        shown.append(
            {
                "url": f"{request_url(ticket)}/attachments/{attachment.sha256}",
                "kind": kind,
                "name": attachment.filename or f"Berkas {len(shown) + 1}",
                "content_type": content_type,
                "size_kb": max(1, round(attachment.size / 1024)),
            }
        )
    return shown


def request_context(
    detail: RequestDetail,
    officer: OfficerAccount,
    assignable: list[OfficerAccount],
    form: FormData | None,
) -> dict[str, Any]:
    """The request page: the request, its files and history, and what this officer may do."""
    state = detail.request.state
    mine = state == State.CLAIMED and detail.request.claimed_by == officer.id
    names = officer_names(officer, detail.history)
    decided_by = None
    if state in {State.VERIFIED, State.REJECTED} and detail.request.decided_by:
        decided_by = names.get(detail.request.decided_by, detail.request.decided_by)
    return {
        "detail": detail,
        "item": detail.item,
        "req": detail.request,
        "doc_name": detail.item.doc_name,
        "fields": fields(detail),
        "attachments": attachments(detail),
        "history": [
            {
                "type": entry.type,
                "label": EVENT_LABELS.get(entry.type, entry.type),
                "at": entry.at,
                "actor": history_actor(entry, names),
                "note": history_note(entry),
            }
            for entry in reversed(detail.history)
        ],
        "url": request_url(detail.request.ticket),
        "decided_by": decided_by,
        "can_claim": state == State.IN_QUEUE,
        "can_collect": state in {State.ISSUED, State.READY},
        "can_release": mine,
        "can_decide": mine,
        "assignable": assignable,
        "canned_reasons": CANNED_REASONS,
        "chosen_reasons": texts(form, "reasons") if form else [],
        "other_reason": text(form, "other") if form else "",
        "reject_reason": text(form, "reason") if form else "",
        "max_reason": MAX_REASON_LENGTH,
    }


def queue_filters(
    kecamatan_names: Mapping[str, str],
    status: str | None,
    kecamatan: str | None,
    doc_type: str | None,
) -> tuple[str | None, str | None, str | None]:
    """The queue's filters that name something real; anything else shows everything."""
    states = {state.value for state in State} - {State.NEW.value}
    chosen_state = status if status in states else None
    chosen_kecamatan = kecamatan if kecamatan in kecamatan_names else None
    chosen_doc = doc_type.upper() if doc_type and doc_type.upper() in set(DocType) else None
    return chosen_state, chosen_kecamatan, chosen_doc


def queue_context(
    kecamatan_names: Mapping[str, str],
    officer: OfficerAccount,
    chosen: tuple[str | None, str | None, str | None],
) -> dict[str, Any]:
    """The queue page's filter form (the items are added by the route)."""
    chosen_state, chosen_kecamatan, chosen_doc = chosen
    own = (
        kecamatan_names
        if officer.office_wide
        else {code: kecamatan_names.get(code, code) for code in officer.kecamatan}
    )
    return {
        "filters": {
            "status": chosen_state or "",
            "kecamatan": chosen_kecamatan or "",
            "doc_type": chosen_doc or "",
        },
        "state_options": [
            (state.value, STATE_LABELS[state])
            for state in State
            if state in OPEN_STATES or state in FINAL_STATES
        ],
        "kecamatan_options": sorted(own.items(), key=lambda pair: pair[1]),
        "doc_options": [(doc.value, document(doc).name) for doc in DocType],
    }


def supervisor_context(
    kecamatan_names: Mapping[str, str],
    officer: OfficerAccount,
    backlog: list[KecamatanBacklog],
    officers: list[OfficerAccount],
) -> dict[str, Any]:
    """The supervisor page: the backlog per kecamatan and the officers' accounts."""
    return {
        "backlog": backlog,
        "officers": officers,
        "active_officers": [account for account in officers if not account.disabled],
        "is_admin": officer.role == Role.ADMIN,
        "roles": [(role.value, ROLE_LABELS[role]) for role in Role],
        "all_kecamatan": sorted(kecamatan_names.items(), key=lambda pair: pair[1]),
    }
