"""The request aggregate of verification: every decision in every state, and folding events.

Decisions are pure: they return the events they cause (or raise) and never change the
request; only ``apply`` does. The tests therefore "decide, then apply" the way the service
does, with the store's versions and clock played by :func:`commit`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.verification.domain.request import (
    FINAL_STATES,
    MAX_REASON_LENGTH,
    MAX_REASONS,
    ClaimedByAnotherError,
    InvalidDecisionError,
    InvalidTransitionError,
    Officer,
    Request,
    State,
)
from shared.contracts import (
    Attachment,
    AttachmentAdded,
    ChangesRequested,
    CheckResult,
    ClaimReleased,
    Delivery,
    DocumentCollected,
    DocumentIssued,
    DocumentReady,
    HandedToSiak,
    IssuanceFailed,
    IssuanceScheduled,
    RequestAmended,
    RequestCancelled,
    RequestChecked,
    RequestClaimed,
    RequestReceived,
    RequestRejected,
    RequestVerified,
)
from shared.eventstore.envelope import Event, Metadata, RecordedEvent
from tests.builders import recorded as build_recorded
from tests.support import decode_all, decoded

TICKET = "AB12CD"
STREAM = f"request-{TICKET}"
PHONE = "6281234567890"
DOC_TYPE = "KTP"
T0 = datetime(2025, 11, 3, 2, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

ANI = Officer(id="officer-ani", name="Ani")
BUDI = Officer(id="officer-budi", name="Budi")
SUPERVISOR = Officer(id="officer-sri", name="Sri")
SYSTEM = Officer(id="system:router", name="Pembagi otomatis")

APPLICANT: dict[str, Any] = {
    "nik": "3603015708990001",
    "no_kk": "3603012001180003",
    "nama": "SITI AMINAH",
    "desa": "SENTUL",
    "kecamatan_code": "360301",
    "kecamatan_name": "Balaraja",
    "reason": "PEMULA",
}
REASONS = ("Foto Kartu Keluarga buram, kirim ulang yang jelas",)
REJECTION = "NIK tidak terdaftar di Kabupaten Tangerang"
PASSED = (CheckResult(check="papers", passed=True), CheckResult(check="duplicate", passed=True))


def attachment(n: int) -> Attachment:
    return Attachment(
        sha256=f"{n:064x}",
        content_type="image/jpeg",
        size=100_000 + n,
        filename=f"foto-{n}.jpg",
        message_id=f"wamid.file{n}",
    )


FILE_1, FILE_2, FILE_3 = attachment(1), attachment(2), attachment(3)


# -- recording and applying events ----------------------------------------------------------


def recorded(event: Event, version: int, at: datetime, *, stream_id: str = STREAM) -> RecordedEvent:
    """``event`` as the store gives it back: serialised the way it is appended."""
    return build_recorded(
        event, version=version, position=1000 + version, stream_id=stream_id, at=at
    )


def history(*events: Event, start: datetime = T0) -> list[RecordedEvent]:
    """A stream of ``events``, versions 1, 2, ..., recorded a minute apart from ``start``."""
    return [recorded(event, i, start + (i - 1) * MINUTE) for i, event in enumerate(events, 1)]


def state_of(request: Request) -> State:
    """The state, read through a call so that mypy does not keep an earlier assert's
    narrowing of ``request.state`` across the applies in between."""
    return request.state


def commit(request: Request, events: Sequence[Event], at: datetime | None = None) -> Request:
    """Append ``events`` after the request's version (a minute after its last event, unless
    ``at`` is given) and apply them, as the service does after a decision."""
    when = at or (request.last_event_at or T0) + MINUTE
    for event in events:
        request.apply(*decoded(recorded(event, request.version + 1, when)))
    return request


# -- events of a request --------------------------------------------------------------------


def received(*files: Attachment) -> RequestReceived:
    return RequestReceived(
        ticket=TICKET,
        doc_type=DOC_TYPE,
        citizen="citizen-3f9a",
        phone=PHONE,
        kecamatan_code="360301",
        applicant=dict(APPLICANT),
        attachments=files,
        message_id="wamid.request",
        received_at=T0 - timedelta(seconds=20),
    )


def checked(
    round_: int = 1,
    results: tuple[CheckResult, ...] = PASSED,
    outcome: Literal["passed", "flagged", "changes_needed", "duplicate"] = "passed",
) -> RequestChecked:
    return RequestChecked(ticket=TICKET, round=round_, results=results, outcome=outcome)


def claimed(officer: Officer, by: Officer | None = None) -> RequestClaimed:
    return RequestClaimed(
        ticket=TICKET, officer_id=officer.id, officer_name=officer.name, by=(by or officer).id
    )


def released(officer: Officer, reason: Literal["released", "expired"]) -> ClaimReleased:
    return ClaimReleased(ticket=TICKET, officer_id=officer.id, reason=reason)


def changes(officer: Officer | None, reasons: tuple[str, ...] = REASONS) -> ChangesRequested:
    return ChangesRequested(
        ticket=TICKET,
        reasons=reasons,
        officer_id=None if officer is None else officer.id,
        phone=PHONE,
        doc_type=DOC_TYPE,
    )


def amended(*files: Attachment, message_id: str = "wamid.fix") -> RequestAmended:
    return RequestAmended(ticket=TICKET, message_id=message_id, attachments=files, phone=PHONE)


def verified(officer: Officer) -> RequestVerified:
    return RequestVerified(ticket=TICKET, officer_id=officer.id, phone=PHONE, doc_type=DOC_TYPE)


def rejected(officer: Officer, reason: str = REJECTION) -> RequestRejected:
    return RequestRejected(
        ticket=TICKET, officer_id=officer.id, reason=reason, phone=PHONE, doc_type=DOC_TYPE
    )


def cancelled(
    reason: Literal["citizen", "duplicate"] = "citizen", duplicate_of: str | None = None
) -> RequestCancelled:
    return RequestCancelled(
        ticket=TICKET, reason=reason, duplicate_of=duplicate_of, phone=PHONE, doc_type=DOC_TYPE
    )


OFFICE = Delivery(channel="office", place="loket", bring=("KK asli",))
CHAT = Delivery(channel="whatsapp")
PROMISED = date(2025, 11, 4)


def scheduled(delivery: Delivery = OFFICE) -> IssuanceScheduled:
    return IssuanceScheduled(
        ticket=TICKET,
        doc_type=DOC_TYPE,
        phone=PHONE,
        promised_on=PROMISED,
        working_days=1,
        delivery=delivery,
    )


def handed() -> HandedToSiak:
    return HandedToSiak(ticket=TICKET, idempotency_key=f"adminduk-3603-{TICKET}")


def issued(delivery: Delivery = OFFICE) -> DocumentIssued:
    return DocumentIssued(
        ticket=TICKET,
        doc_type=DOC_TYPE,
        phone=PHONE,
        document_number="KTP/3603/03112025/0001",
        issued_at=T0,
        ready_on=PROMISED,
        delivery=delivery,
    )


def ready() -> DocumentReady:
    return DocumentReady(
        ticket=TICKET,
        doc_type=DOC_TYPE,
        phone=PHONE,
        document_number="KTP/3603/03112025/0001",
        ready_on=PROMISED,
        delivery=OFFICE,
    )


def collected(officer: Officer) -> DocumentCollected:
    return DocumentCollected(ticket=TICKET, doc_type=DOC_TYPE, phone=PHONE, officer_id=officer.id)


# -- the transition table -------------------------------------------------------------------

# How to bring a request into each state. The acting officer of the table is always Ani.
STATE_HISTORIES: dict[str, tuple[Event, ...]] = {
    "new": (),
    "received": (received(FILE_1),),
    "in_queue": (received(FILE_1), checked()),
    "claimed_by_self": (received(FILE_1), checked(), claimed(ANI)),
    "claimed_by_another": (received(FILE_1), checked(), claimed(BUDI)),
    "changes_requested": (received(FILE_1), checked(), claimed(ANI), changes(ANI)),
    "amended": (received(FILE_1), checked(), changes(ANI), amended(FILE_2)),
    "verified": (received(FILE_1), checked(), claimed(ANI), verified(ANI)),
    "rejected": (received(FILE_1), checked(), rejected(ANI)),
    "cancelled": (received(FILE_1), cancelled()),
    "scheduled": (received(FILE_1), checked(), verified(ANI), scheduled()),
    "with_siak": (received(FILE_1), checked(), verified(ANI), scheduled(), handed()),
    "issuance_failed": (
        received(FILE_1),
        checked(),
        verified(ANI),
        scheduled(),
        handed(),
        IssuanceFailed(ticket=TICKET, status=422, message="NIK tidak dikenal SIAK"),
    ),
    "issued": (received(FILE_1), checked(), verified(ANI), scheduled(), handed(), issued()),
    "ready": (
        received(FILE_1),
        checked(),
        verified(ANI),
        scheduled(),
        handed(),
        issued(),
        ready(),
    ),
    "completed": (
        received(FILE_1),
        checked(),
        verified(ANI),
        scheduled(CHAT),
        handed(),
        issued(CHAT),
    ),
}
STATE_OF: dict[str, State] = {
    "new": State.NEW,
    "received": State.RECEIVED,
    "in_queue": State.IN_QUEUE,
    "claimed_by_self": State.CLAIMED,
    "claimed_by_another": State.CLAIMED,
    "changes_requested": State.CHANGES_REQUESTED,
    "amended": State.AMENDED,
    "verified": State.VERIFIED,
    "rejected": State.REJECTED,
    "cancelled": State.CANCELLED,
    "scheduled": State.SCHEDULED,
    "with_siak": State.WITH_SIAK,
    "issuance_failed": State.ISSUANCE_FAILED,
    "issued": State.ISSUED,
    "ready": State.READY,
    "completed": State.COMPLETED,
}


def request_in(state: str) -> Request:
    return Request.fold(decode_all(history(*STATE_HISTORIES[state])))


ACTIONS: dict[str, Callable[[Request], list[Event]]] = {
    "record_checks": lambda r: r.record_checks(PASSED),
    "claim": lambda r: r.claim(ANI),
    "assign": lambda r: r.claim(ANI, by=SUPERVISOR),
    "release": lambda r: r.release(ANI),
    "expire": lambda r: r.release(ANI, expired=True),
    "approve": lambda r: r.approve(ANI),
    "request_changes": lambda r: r.request_changes(ANI, REASONS),
    "reject": lambda r: r.reject(ANI, REJECTION),
    "amend": lambda r: r.amend("wamid.fix2", [FILE_3]),
    "cancel": lambda r: r.cancel(),
    "collect": lambda r: r.collect(ANI),
}
# The action's name in InvalidTransitionError.
ACTION_NAMES = {
    "record_checks": "record checks",
    "claim": "claim",
    "assign": "claim",
    "release": "release",
    "expire": "release",
    "approve": "approve",
    "request_changes": "request changes",
    "reject": "reject",
    "amend": "amend",
    "cancel": "cancel",
    "collect": "record collection",
}

_CANCEL: tuple[list[Event], State] = ([cancelled()], State.CANCELLED)
_OFFICER_DECIDES: dict[str, tuple[list[Event], State]] = {
    "approve": ([verified(ANI)], State.VERIFIED),
    "request_changes": ([changes(ANI)], State.CHANGES_REQUESTED),
    "reject": ([rejected(ANI)], State.REJECTED),
    "cancel": _CANCEL,
}
# Every legal (state, action): the events it returns and the state they lead to. Every pair
# not listed must raise InvalidTransitionError (ClaimedByAnotherError if in CLAIMED_BY_ANOTHER).
LEGAL: dict[tuple[str, str], tuple[list[Event], State]] = {
    ("received", "record_checks"): ([checked(round_=1)], State.IN_QUEUE),
    ("received", "cancel"): _CANCEL,
    ("in_queue", "claim"): ([claimed(ANI)], State.CLAIMED),
    ("in_queue", "assign"): ([claimed(ANI, by=SUPERVISOR)], State.CLAIMED),
    **{("in_queue", action): result for action, result in _OFFICER_DECIDES.items()},
    ("claimed_by_self", "claim"): ([], State.CLAIMED),
    ("claimed_by_self", "assign"): ([], State.CLAIMED),
    ("claimed_by_self", "release"): ([released(ANI, "released")], State.IN_QUEUE),
    ("claimed_by_self", "expire"): ([released(ANI, "expired")], State.IN_QUEUE),
    **{("claimed_by_self", action): result for action, result in _OFFICER_DECIDES.items()},
    ("claimed_by_another", "assign"): ([claimed(ANI, by=SUPERVISOR)], State.CLAIMED),
    # The holder's claim expires, whoever the sweeper names.
    ("claimed_by_another", "expire"): ([released(BUDI, "expired")], State.IN_QUEUE),
    ("claimed_by_another", "cancel"): _CANCEL,
    ("changes_requested", "amend"): ([amended(FILE_3, message_id="wamid.fix2")], State.AMENDED),
    ("changes_requested", "cancel"): _CANCEL,
    ("amended", "record_checks"): ([checked(round_=2)], State.IN_QUEUE),
    ("amended", "cancel"): _CANCEL,
    # Until the hand-off to SIAK, the citizen may still withdraw.
    ("verified", "cancel"): _CANCEL,
    ("scheduled", "cancel"): _CANCEL,
    ("issued", "collect"): ([collected(ANI)], State.COMPLETED),
    ("ready", "collect"): ([collected(ANI)], State.COMPLETED),
}
CLAIMED_BY_ANOTHER = {
    ("claimed_by_another", action)
    for action in ("claim", "release", "approve", "request_changes", "reject")
}
ALL_PAIRS = [(state, action) for state in STATE_HISTORIES for action in ACTIONS]


def test_the_table_names_only_known_states_and_actions() -> None:
    assert set(LEGAL) <= set(ALL_PAIRS)
    assert CLAIMED_BY_ANOTHER.isdisjoint(LEGAL)
    assert len(ALL_PAIRS) == 16 * 11


@pytest.mark.parametrize("state", list(STATE_HISTORIES))
def test_each_state_is_reached_by_its_history(state: str) -> None:
    request = request_in(state)
    assert request.state == STATE_OF[state]
    assert request.version == len(STATE_HISTORIES[state])
    if state == "claimed_by_self":
        assert request.claimed_by == ANI.id
    if state == "claimed_by_another":
        assert (request.claimed_by, request.claimed_by_name) == (BUDI.id, "Budi")


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=[f"{s}-{a}" for s, a in ALL_PAIRS])
def test_transition(state: str, action: str) -> None:
    request = request_in(state)
    before = copy.deepcopy(request)
    legal = LEGAL.get((state, action))
    if legal is None:
        expected = (
            ClaimedByAnotherError
            if (state, action) in CLAIMED_BY_ANOTHER
            else InvalidTransitionError
        )
        with pytest.raises(InvalidTransitionError) as raised:
            ACTIONS[action](request)
        assert type(raised.value) is expected
        assert raised.value.state == request.state
        assert raised.value.ticket == request.ticket
        assert raised.value.action == ACTION_NAMES[action]
        assert request == before, "a refused decision must not change the request"
        return

    expected_events, next_state = legal
    events = ACTIONS[action](request)
    assert events == expected_events
    assert request == before, "a decision returns events, it does not change the request"
    commit(request, events)
    assert request.state == next_state
    assert request.version == before.version + len(events)
    if next_state == State.CLAIMED:
        assert request.claimed_by == ANI.id


# -- claims ---------------------------------------------------------------------------------


def test_claiming_ones_own_claim_changes_nothing() -> None:
    request = request_in("claimed_by_self")
    claimed_at = request.claimed_at
    assert request.claim(ANI) == []
    assert request.claim(ANI, by=SUPERVISOR) == []
    assert request.claimed_at == claimed_at


def test_a_claim_held_by_another_is_refused_with_the_holders_name() -> None:
    request = request_in("claimed_by_another")
    with pytest.raises(ClaimedByAnotherError) as raised:
        request.claim(ANI)
    assert raised.value.holder == "Budi"
    assert raised.value.state == State.CLAIMED
    assert "claimed by Budi" in str(raised.value)
    assert TICKET in str(raised.value)


def test_claim_records_the_officer_and_the_time() -> None:
    request = request_in("in_queue")
    at = T0 + 10 * MINUTE
    commit(request, request.claim(ANI), at=at)
    assert (request.claimed_by, request.claimed_by_name, request.claimed_at) == (ANI.id, "Ani", at)


def test_a_supervisor_reassigns_a_request_claimed_by_another_officer() -> None:
    request = request_in("claimed_by_another")
    events = request.claim(ANI, by=SUPERVISOR)
    assert events == [
        RequestClaimed(ticket=TICKET, officer_id=ANI.id, officer_name="Ani", by=SUPERVISOR.id)
    ]
    at = T0 + 30 * MINUTE
    commit(request, events, at=at)
    assert request.state == State.CLAIMED
    assert (request.claimed_by, request.claimed_by_name, request.claimed_at) == (ANI.id, "Ani", at)
    # The claim now belongs to Ani: Budi may no longer decide, Ani may.
    with pytest.raises(ClaimedByAnotherError):
        request.approve(BUDI)
    assert request.approve(ANI) == [verified(ANI)]


def test_a_supervisor_may_take_a_claimed_request_themselves() -> None:
    request = request_in("claimed_by_another")
    events = request.claim(SUPERVISOR, by=SUPERVISOR)
    assert events == [claimed(SUPERVISOR)]
    assert commit(request, events).claimed_by == SUPERVISOR.id


def test_release_by_someone_other_than_the_holder_is_refused() -> None:
    request = request_in("claimed_by_another")
    with pytest.raises(ClaimedByAnotherError) as raised:
        request.release(ANI)
    assert raised.value.holder == "Budi"
    assert raised.value.action == "release"


def test_release_returns_the_request_to_the_queue_and_forgets_the_claim() -> None:
    request = request_in("claimed_by_self")
    events = request.release(ANI)
    assert events == [released(ANI, "released")]
    commit(request, events)
    assert request.state == State.IN_QUEUE
    assert (request.claimed_by, request.claimed_by_name, request.claimed_at) == (None, None, None)


def test_an_expired_claim_is_released_in_the_holders_name() -> None:
    request = request_in("claimed_by_another")
    # The sweeper passes the holder it read; even another name releases the holder's claim.
    for sweeper_officer in (BUDI, ANI):
        assert request.release(sweeper_officer, expired=True) == [released(BUDI, "expired")]
    commit(request, request.release(BUDI, expired=True))
    assert request.state == State.IN_QUEUE
    assert request.claimed_by is None
    assert request.claim(ANI) == [claimed(ANI)]


@pytest.mark.parametrize("state", ["received", "in_queue", "changes_requested", "verified"])
def test_only_a_claimed_request_can_be_released_or_expire(state: str) -> None:
    request = request_in(state)
    for expired in (False, True):
        with pytest.raises(InvalidTransitionError) as raised:
            request.release(ANI, expired=expired)
        assert type(raised.value) is InvalidTransitionError


# -- reasons --------------------------------------------------------------------------------


def test_reasons_are_trimmed_and_blank_ones_dropped() -> None:
    request = request_in("claimed_by_self")
    events = request.request_changes(
        ANI, ["  Foto  KK\n buram  ", "", "   ", "\tNama ibu\tbelum   diisi "]
    )
    assert events == [changes(ANI, ("Foto KK buram", "Nama ibu belum diisi"))]
    commit(request, events)
    assert request.reasons == ("Foto KK buram", "Nama ibu belum diisi")


def test_the_limits_on_reasons_are_inclusive() -> None:
    request = request_in("in_queue")
    many = [f"Alasan {i}" for i in range(MAX_REASONS)]
    (event,) = request.request_changes(ANI, many)
    assert isinstance(event, ChangesRequested)
    assert event.reasons == tuple(many)
    longest = "x" * MAX_REASON_LENGTH
    (event,) = request.request_changes(ANI, [f"  {longest}  "])
    assert isinstance(event, ChangesRequested)
    assert event.reasons == (longest,)
    # Blank reasons do not count towards the limit.
    (event,) = request.request_changes(ANI, [*many, "   "])
    assert isinstance(event, ChangesRequested)
    assert len(event.reasons) == MAX_REASONS


@pytest.mark.parametrize(
    "reasons",
    [
        [],
        [""],
        ["   ", "\n\t "],
        [f"Alasan {i}" for i in range(MAX_REASONS + 1)],
        ["x" * (MAX_REASON_LENGTH + 1)],
        ["Foto buram", "y" * (MAX_REASON_LENGTH + 1)],
    ],
    ids=["none", "empty", "blank", "too-many", "too-long", "one-too-long"],
)
def test_unusable_reasons_for_changes_are_refused(reasons: list[str]) -> None:
    request = request_in("claimed_by_self")
    before = copy.deepcopy(request)
    with pytest.raises(InvalidDecisionError) as raised:
        request.request_changes(ANI, reasons)
    assert not isinstance(raised.value, InvalidTransitionError)
    assert request == before


@pytest.mark.parametrize(
    "reason", ["", "   \n", "x" * (MAX_REASON_LENGTH + 1)], ids=["empty", "blank", "too-long"]
)
def test_unusable_rejection_reasons_are_refused(reason: str) -> None:
    request = request_in("claimed_by_self")
    with pytest.raises(InvalidDecisionError):
        request.reject(ANI, reason)


def test_rejection_records_the_trimmed_reason_and_who_decided() -> None:
    request = request_in("claimed_by_self")
    events = request.reject(ANI, "  NIK   tidak\nterdaftar  ")
    assert events == [rejected(ANI, "NIK tidak terdaftar")]
    at = T0 + 45 * MINUTE
    commit(request, events, at=at)
    assert request.state == State.REJECTED
    assert request.reasons == ("NIK tidak terdaftar",)
    assert (request.decided_by, request.decided_at) == (ANI.id, at)
    assert not request.is_open


def test_approval_records_who_decided_and_when() -> None:
    request = request_in("in_queue")
    at = T0 + 50 * MINUTE
    commit(request, request.approve(BUDI), at=at)
    assert request.state == State.VERIFIED
    assert (request.decided_by, request.decided_at) == (BUDI.id, at)
    assert not request.is_open


# -- automatic checks -----------------------------------------------------------------------

FLAG = CheckResult(
    check="nik_region", passed=False, reason="NIK diterbitkan di luar Kab. Tangerang."
)
MISSING_PAPERS = CheckResult(
    check="papers", passed=False, fixable=True, reason="Belum ada foto atau PDF persyaratan."
)
DUPLICATE = CheckResult(
    check="duplicate",
    passed=False,
    reason="Permohonan yang sama masih diproses dengan tiket XY98ZW.",
    related_ticket="XY98ZW",
)


def test_checks_that_pass_put_the_request_in_the_queue() -> None:
    request = request_in("received")
    events = request.record_checks(PASSED)
    assert events == [checked(round_=1, results=PASSED, outcome="passed")]
    commit(request, events)
    assert request.state == State.IN_QUEUE
    assert request.check_round == 1
    assert request.flags == ()


def test_checks_an_officer_must_judge_flag_the_request_in_the_queue() -> None:
    request = request_in("received")
    results = (CheckResult(check="papers", passed=True), FLAG, PASSED[1])
    events = request.record_checks(results)
    assert events == [checked(round_=1, results=results, outcome="flagged")]
    commit(request, events)
    assert request.state == State.IN_QUEUE
    assert request.flags == (FLAG,)


def test_what_the_citizen_can_fix_becomes_a_correction_request_from_the_system() -> None:
    request = Request.fold(decode_all(history(received())))
    second_fixable = CheckResult(
        check="age", passed=False, fixable=True, reason="Tanggal lahir tidak sesuai."
    )
    results = (MISSING_PAPERS, FLAG, second_fixable, PASSED[1])
    events = request.record_checks(results)
    assert events == [
        checked(round_=1, results=results, outcome="changes_needed"),
        changes(None, (MISSING_PAPERS.reason, second_fixable.reason)),
    ]
    commit(request, events)
    assert request.state == State.CHANGES_REQUESTED
    assert request.reasons == (MISSING_PAPERS.reason, second_fixable.reason)
    assert request.flags == (MISSING_PAPERS, FLAG, second_fixable)
    assert request.returned_to is None
    assert request.first_officer_action_at is None


def test_a_duplicate_is_cancelled_in_favour_of_the_open_request() -> None:
    request = Request.fold(decode_all(history(received())))
    # The duplicate wins over anything else: no correction is asked of a duplicate.
    results = (MISSING_PAPERS, FLAG, DUPLICATE)
    events = request.record_checks(results)
    assert events == [
        checked(round_=1, results=results, outcome="duplicate"),
        cancelled("duplicate", duplicate_of="XY98ZW"),
    ]
    commit(request, events)
    assert request.state == State.CANCELLED
    assert request.duplicate_of == "XY98ZW"
    assert not request.is_open


def test_an_amended_request_goes_back_to_the_officer_who_asked_for_changes() -> None:
    request = request_in("in_queue")
    commit(request, request.claim(BUDI))
    commit(request, request.request_changes(BUDI, ["Foto KK buram"]))
    assert state_of(request) == State.CHANGES_REQUESTED
    assert request.returned_to == BUDI.id
    assert request.claimed_by is None
    assert request.reasons == ("Foto KK buram",)

    at = T0 + 2 * 60 * MINUTE
    commit(request, request.amend("wamid.fix", [FILE_2]), at=at)
    assert state_of(request) == State.AMENDED
    assert request.amended_at == at

    commit(request, request.record_checks(PASSED))
    assert state_of(request) == State.IN_QUEUE
    assert request.check_round == 2
    assert request.returned_to == BUDI.id


def test_a_later_automatic_correction_keeps_the_officer_to_return_to() -> None:
    request = Request.fold(
        decode_all(
            history(received(FILE_1), checked(), changes(ANI), amended(FILE_2), changes(None))
        )
    )
    assert request.state == State.CHANGES_REQUESTED
    assert request.returned_to == ANI.id


# -- first officer action, versions, attachments --------------------------------------------


def test_first_officer_action_is_set_by_the_first_officer_event_only() -> None:
    request = Request.fold(decode_all(history(received())))
    commit(request, request.record_checks((MISSING_PAPERS, PASSED[1])))
    commit(request, request.amend("wamid.fix", [FILE_1]))
    commit(request, request.record_checks(PASSED))
    # A system that assigns the request, and the claim's expiry, are no officer's action.
    commit(request, request.claim(ANI, by=SYSTEM))
    assert request.claimed_by == ANI.id
    commit(request, request.release(ANI, expired=True))
    assert request.state == State.IN_QUEUE
    assert request.first_officer_action_at is None

    first = T0 + 3 * 60 * MINUTE
    commit(request, request.claim(BUDI), at=first)
    assert request.first_officer_action_at == first
    commit(request, request.release(BUDI), at=first + MINUTE)
    commit(request, request.approve(ANI), at=first + 2 * MINUTE)
    assert request.first_officer_action_at == first
    assert request.decided_at == first + 2 * MINUTE


@pytest.mark.parametrize(
    "event",
    [
        claimed(ANI, by=SUPERVISOR),
        changes(ANI),
        verified(ANI),
        rejected(ANI),
    ],
    ids=["assigned", "changes", "verified", "rejected"],
)
def test_each_officer_event_counts_as_the_first_officer_action(event: Event) -> None:
    request = request_in("in_queue")
    at = T0 + 20 * MINUTE
    commit(request, [event], at=at)
    assert request.first_officer_action_at == at


def test_system_officer_ids_do_not_count_as_an_officer_action() -> None:
    system_changes = ChangesRequested(
        ticket=TICKET,
        reasons=REASONS,
        officer_id="system:checks",
        phone=PHONE,
        doc_type=DOC_TYPE,
    )
    request = Request.fold(decode_all(history(received(FILE_1), checked(), system_changes)))
    assert request.first_officer_action_at is None


def test_the_version_follows_each_applied_event() -> None:
    events = history(
        received(FILE_1), checked(), claimed(ANI), released(ANI, "released"), verified(BUDI)
    )
    request = Request()
    assert (request.version, request.state, request.is_open) == (0, State.NEW, False)
    for expected_version, event in enumerate(events, 1):
        request.apply(*decoded(event))
        assert request.version == expected_version
        assert request.last_event_at == event.recorded_at
    assert Request.fold(decode_all(events)) == request
    assert Request.fold(decode_all([])) == Request()


class DocumentPrinted(Event):
    """An event of another kind that this aggregate does not know (not registered)."""

    ticket: str


def test_events_of_later_stages_move_the_version_but_not_the_state() -> None:
    request = request_in("verified")
    at = T0 + 99 * MINUTE
    request.apply(
        RecordedEvent(
            event_id=recorded(verified(ANI), 1, at).event_id,
            event_type="DocumentPrinted",
            stream_id=STREAM,
            stream_version=request.version + 1,
            position=9999,
            schema_version=1,
            data={"ticket": TICKET},
            metadata=Metadata(actor="system:issuance"),
            occurred_at=at,
            recorded_at=at,
        ),
        DocumentPrinted(ticket=TICKET),
    )
    assert request.state == State.VERIFIED
    assert request.version == len(STATE_HISTORIES["verified"]) + 1
    assert request.last_event_at == at


def test_receipt_sets_what_the_request_is_and_when_the_store_recorded_it() -> None:
    request = Request.fold(decode_all(history(received(FILE_1, FILE_2))))
    assert request.ticket == TICKET
    assert request.state == State.RECEIVED
    assert request.is_open
    assert (request.doc_type, request.kecamatan_code) == (DOC_TYPE, "360301")
    assert (request.citizen, request.phone) == ("citizen-3f9a", PHONE)
    assert request.applicant == APPLICANT
    assert request.attachments == [FILE_1, FILE_2]
    # The store's clock, not the WhatsApp send time carried in the event.
    assert request.received_at == T0
    assert request.check_round == 0


def test_files_added_or_sent_with_a_correction_are_added_once() -> None:
    added = AttachmentAdded(ticket=TICKET, attachment=FILE_2)
    again = AttachmentAdded(ticket=TICKET, attachment=FILE_1)
    request = Request.fold(decode_all(history(received(FILE_1), added, again, added)))
    assert request.attachments == [FILE_1, FILE_2]
    commit(request, [checked(), changes(ANI), amended(FILE_2, FILE_3, FILE_1)])
    assert request.attachments == [FILE_1, FILE_2, FILE_3]
    # A file can be added in any open state, without changing it.
    commit(request, [AttachmentAdded(ticket=TICKET, attachment=attachment(4))])
    assert request.state == State.AMENDED
    assert [a.sha256 for a in request.attachments] == [f"{n:064x}" for n in (1, 2, 3, 4)]


def test_a_correction_sending_the_same_file_twice_adds_it_once() -> None:
    # Intake can send the same photo twice in one correction (sent just before
    # "#LENGKAPI#" and again with it); the papers check must count it once.
    request = request_in("changes_requested")
    commit(request, request.amend("wamid.fix", [FILE_2, FILE_2]))
    assert request.attachments == [FILE_1, FILE_2]


def test_a_request_received_with_the_same_file_twice_holds_it_once() -> None:
    # The caption's file and the same file sent just before: one paper, not two.
    request = Request.fold(decode_all(history(received(FILE_1, FILE_1))))
    assert request.attachments == [FILE_1]


def test_a_claim_is_forgotten_when_an_officer_asks_for_changes() -> None:
    request = request_in("claimed_by_self")
    commit(request, request.request_changes(ANI, REASONS))
    assert (request.claimed_by, request.claimed_by_name, request.claimed_at) == (None, None, None)


# -- any sequence of decisions --------------------------------------------------------------

CHECK_RESULTS: dict[str, tuple[CheckResult, ...]] = {
    "passed": PASSED,
    "flagged": (PASSED[0], FLAG, PASSED[1]),
    "changes_needed": (MISSING_PAPERS, PASSED[1]),
    "duplicate": (PASSED[0], DUPLICATE),
}
# Decisions that belong to the officer holding the claim.
OFFICER_DECISIONS = frozenset({"claim", "release", "approve", "request_changes", "reject"})

Step = tuple[str, Officer | None, str | None]


SYSTEM_STEPS: dict[str, Callable[[Request, str | None], list[Event]]] = {
    "record_checks": lambda r, variant: r.record_checks(CHECK_RESULTS[variant or "passed"]),
    "amend": lambda r, _: r.amend("wamid.fix", [FILE_2]),
    "cancel": lambda r, _: r.cancel(),
}
OFFICER_STEPS: dict[str, Callable[[Request, Officer], list[Event]]] = {
    "claim": lambda r, officer: r.claim(officer),
    "assign": lambda r, officer: r.claim(officer, by=SUPERVISOR),
    "release": lambda r, officer: r.release(officer),
    "expire": lambda r, officer: r.release(officer, expired=True),
    "approve": lambda r, officer: r.approve(officer),
    "request_changes": lambda r, officer: r.request_changes(officer, REASONS),
    "reject": lambda r, officer: r.reject(officer, REJECTION),
}


def perform(request: Request, step: Step) -> list[Event]:
    name, officer, variant = step
    if officer is None:
        return SYSTEM_STEPS[name](request, variant)
    return OFFICER_STEPS[name](request, officer)


ALL_STEPS: list[Step] = [
    *(("record_checks", None, variant) for variant in sorted(CHECK_RESULTS)),
    ("amend", None, None),
    ("cancel", None, None),
    *((name, officer, None) for name in sorted(OFFICER_STEPS) for officer in (ANI, BUDI)),
]
steps = st.sampled_from(ALL_STEPS)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(STATE_HISTORIES)), st.lists(steps, max_size=40))
def test_no_sequence_of_decisions_leaves_a_final_state_or_overrides_a_claim(
    start: str, sequence: list[Step]
) -> None:
    request = request_in(start)
    for step in sequence:
        name, officer, _ = step
        before = copy.deepcopy(request)
        holder = request.claimed_by if request.state == State.CLAIMED else None
        claimed_by_another = (
            name in OFFICER_DECISIONS
            and holder is not None
            and officer is not None
            and officer.id != holder
        )
        try:
            events = perform(request, step)
        except InvalidTransitionError as error:
            assert request == before
            if claimed_by_another:
                assert isinstance(error, ClaimedByAnotherError)
            continue
        assert request == before
        # The one exception: the citizen may still withdraw until the hand-off to SIAK.
        still_cancellable = name == "cancel" and before.state in {State.VERIFIED, State.SCHEDULED}
        assert before.state not in FINAL_STATES or still_cancellable, (
            f"{name} succeeded on a {before.state} request"
        )
        assert not claimed_by_another, f"{name} by {officer} succeeded on {holder}'s claim"
        commit(request, events)
        assert request.version == before.version + len(events)
        if request.state == State.CLAIMED:
            assert request.claimed_by is not None
        else:
            assert request.claimed_by is None or request.state in FINAL_STATES
        assert request.state != State.NEW
