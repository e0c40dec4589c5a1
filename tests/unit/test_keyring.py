"""Sealing and opening personal data (crypto-shredding), without a database: keys are made
here, as the keyring would unwrap them."""

from __future__ import annotations

import base64
import json
import os
import types
import uuid
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

from shared.contracts import (
    Attachment,
    RequestChecked,
    RequestReceived,
    RequestRejected,
    RequestSubmitted,
    WhatsAppMessageReceived,
    citizen_stream,
    registry,
)
from shared.eventstore.envelope import Event, NewEvent, RecordedEvent
from shared.keyring import (
    SEALED,
    DataKey,
    Keyring,
    PersonalFields,
    Sealer,
    UnreadableEventError,
    key_encryption_key,
)

SECRET = b"office-secret-key-for-tests"
PHONE = "6281234567890"
CITIZEN = citizen_stream(PHONE, SECRET)
PERSONAL_CLASSES = [cls for cls in registry.classes() if cls.personal]


def new_key(citizen: str = CITIZEN) -> DataKey:
    return DataKey(uuid.uuid4(), citizen, AESGCM(os.urandom(32)))


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(Keyring(SECRET), SECRET, registry.classes())


def stored(
    event: NewEvent, data: dict[str, Any], stream_id: str = "request-KTP-AB12CD"
) -> RecordedEvent:
    """``event`` as the store would give it back before opening (its stored data)."""
    now = datetime.now(UTC)
    return RecordedEvent(
        event_id=event.event_id,
        event_type=event.event_type,
        stream_id=stream_id,
        stream_version=1,
        position=1,
        schema_version=event.schema_version,
        data=json.loads(json.dumps(data)),
        metadata=event.metadata,
        occurred_at=event.occurred_at,
        recorded_at=now,
    )


def request_received() -> RequestReceived:
    return RequestReceived(
        ticket="KTP-AB12CD",
        doc_type="KTP",
        citizen=CITIZEN,
        phone=PHONE,
        kecamatan_code="360301",
        applicant={
            "nik": "3603015708990001",
            "no_kk": "3603012001180003",
            "nama": "SITI AMINAH",
            "desa": "SENTUL",
        },
        attachments=(
            Attachment(
                sha256="ab" * 32,
                content_type="image/jpeg",
                size=1234,
                filename="KK SITI AMINAH.jpg",
                message_id="wamid.1",
            ),
        ),
        message_id="wamid.2",
        received_at=datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
    )


# -- an example of any event, with a recognisable value in every field ------------------------


def example(annotation: Any, name: str) -> Any:  # noqa: PLR0911 - one case per kind of type
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return example(next(arg for arg in args if arg is not type(None)), name)
    if origin is Literal:
        return args[0]
    if origin in (tuple, list):
        return (example(args[0], name),)
    if annotation is dict or origin is dict:
        return {"nik": f"value-of-{name}"}
    if annotation is str:
        return f"value-of-{name}"
    if annotation is bool:
        return True
    if annotation is int:
        return 1
    if annotation is datetime:
        return datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    if annotation is date:
        return date(2026, 11, 23)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return build(annotation)
    raise AssertionError(f"no example for {annotation!r} ({name})")


def build(model: type[BaseModel]) -> Any:
    return model(
        **{
            name: example(field.annotation, name)
            for name, field in model.model_fields.items()
            if name != "schema_version"
        }
    )


def stream_of(event_class: type[Event]) -> str:
    return CITIZEN if event_class.citizen_field is None else "request-KTP-AB12CD"


# -- round trip ------------------------------------------------------------------------------


def test_sealed_data_holds_no_personal_value_and_opens_to_the_original(sealer: Sealer) -> None:
    event = request_received().to_new_event()
    key = new_key()
    data = sealer.seal_event(event, key)
    assert data is not None
    text = json.dumps(data)
    for personal in ("3603015708990001", "3603012001180003", "SITI AMINAH", PHONE, "KK SITI"):
        assert personal not in text
    # The facts stay in clear, for statistics and for erasing files.
    assert data["ticket"] == "KTP-AB12CD"
    assert data["kecamatan_code"] == "360301"
    assert data["citizen"] == CITIZEN
    assert data["attachments"][0]["sha256"] == "ab" * 32
    assert data[SEALED]["key"] == str(key.key_id)

    opened = sealer.open_event(stored(event, data), {key.key_id: key})
    assert not opened.erased
    assert RequestReceived.model_validate(opened.data) == request_received()


@pytest.mark.parametrize("event_class", PERSONAL_CLASSES, ids=lambda c: c.__name__)
def test_every_personal_event_round_trips_and_hides_its_personal_fields(
    sealer: Sealer, event_class: type[Event]
) -> None:
    original = build(event_class)
    event = original.to_new_event()
    key = new_key()
    data = sealer.seal_event(event, key)
    assert data is not None
    text = json.dumps(data)
    for path in event_class.personal:
        assert f'"value-of-{path.rsplit(".", 1)[-1]}"' not in text, path
    opened = sealer.open_event(stored(event, data, stream_of(event_class)), {key.key_id: key})
    assert event_class.model_validate(opened.data) == original


@pytest.mark.parametrize("event_class", PERSONAL_CLASSES, ids=lambda c: c.__name__)
def test_an_erased_event_reads_as_placeholders_that_still_validate(
    sealer: Sealer, event_class: type[Event]
) -> None:
    original = build(event_class)
    event = original.to_new_event()
    key = new_key()
    data = sealer.seal_event(event, key)
    assert data is not None
    for keys in ({key.key_id: None}, {}):  # erased, or a key the table does not have
        opened = sealer.open_event(stored(event, data, stream_of(event_class)), keys)
        assert opened.erased
        erased = event_class.model_validate(opened.data)
        for path in event_class.personal:
            assert f'"value-of-{path.rsplit(".", 1)[-1]}"' not in json.dumps(opened.data), path
        # What is not personal is what it was.
        clear = set(event_class.model_fields) - {
            p.split(".")[0].removesuffix("[]") for p in event_class.personal
        }
        for name in clear:
            assert getattr(erased, name) == getattr(original, name), name


def test_events_without_personal_fields_are_stored_as_they_are(sealer: Sealer) -> None:
    checked = RequestChecked(ticket="KTP-AB12CD", round=1, results=(), outcome="passed")
    assert sealer.seal_event(checked.to_new_event(), new_key()) is None
    assert sealer.personal_fields("RequestChecked") is None


# -- refusals ----------------------------------------------------------------------------------


def test_a_box_opened_with_another_key_is_refused_not_erased(sealer: Sealer) -> None:
    event = request_received().to_new_event()
    key = new_key()
    data = sealer.seal_event(event, key)
    assert data is not None
    impostor = DataKey(key.key_id, CITIZEN, AESGCM(os.urandom(32)))
    with pytest.raises(UnreadableEventError):
        sealer.open_event(stored(event, data), {key.key_id: impostor})


def test_a_tampered_box_is_refused(sealer: Sealer) -> None:
    event = request_received().to_new_event()
    key = new_key()
    data = sealer.seal_event(event, key)
    assert data is not None
    box = bytearray(base64.b64decode(data[SEALED]["box"]))
    box[-1] ^= 1
    tampered = {**data, SEALED: {**data[SEALED], "box": base64.b64encode(bytes(box)).decode()}}
    with pytest.raises(UnreadableEventError):
        sealer.open_event(stored(event, tampered), {key.key_id: key})
    garbage = {**data, SEALED: {**data[SEALED], "box": "not base64!"}}
    with pytest.raises(UnreadableEventError):
        sealer.open_event(stored(event, garbage), {key.key_id: key})


def test_a_box_moved_to_another_event_is_refused(sealer: Sealer) -> None:
    key = new_key()
    first = request_received().to_new_event()
    second = request_received().to_new_event()
    data = sealer.seal_event(first, key)
    assert data is not None
    with pytest.raises(UnreadableEventError):
        sealer.open_event(stored(second, data), {key.key_id: key})


# -- whose data it is ------------------------------------------------------------------------


def test_the_citizen_is_the_pseudonym_of_the_number_or_the_citizen_stream(sealer: Sealer) -> None:
    data = request_received().to_new_event().data
    assert sealer.citizen_of("request-KTP-AB12CD", "RequestReceived", data) == CITIZEN
    submitted = RequestSubmitted(
        ticket="KTP-AB12CD", doc_type="KTP", message_id="m", subject_key="s"
    )
    assert sealer.citizen_of(CITIZEN, "RequestSubmitted", submitted.to_new_event().data) == CITIZEN
    with pytest.raises(ValueError, match="not a citizen stream"):
        sealer.citizen_of("request-KTP-AB12CD", "RequestSubmitted", {})
    assert sealer.citizen_of("request-KTP-AB12CD", "RequestReceived", {**data, "phone": ""}) is None


def test_an_event_derived_from_erased_data_is_stored_erased_never_in_clear(sealer: Sealer) -> None:
    # An officer rejects a request whose applicant was erased: its number is a placeholder.
    rejected = RequestRejected(
        ticket="KTP-AB12CD",
        officer_id="o1",
        reason="KK SITI AMINAH palsu",
        phone="",
        doc_type="KTP",
    ).to_new_event()
    data = sealer.seal_event(rejected, None)
    assert data is not None
    assert "SITI" not in json.dumps(data)
    opened = sealer.open_event(stored(rejected, data), {})
    assert opened.erased
    assert RequestRejected.model_validate(opened.data).reason == ""
    # Nothing personal left at all: stored as it is.
    verified = RequestRejected(
        ticket="KTP-AB12CD", officer_id="o1", reason="", phone="", doc_type="KTP"
    ).to_new_event()
    assert sealer.seal_event(verified, None) is None


def test_declarations_are_checked() -> None:
    class Unknown(Event):
        personal: ClassVar[frozenset[str]] = frozenset({"nope"})
        phone: str

    class NumberInClear(Event):
        personal: ClassVar[frozenset[str]] = frozenset({"name"})
        citizen_field: ClassVar[str | None] = "phone"
        phone: str
        name: str

    class NoPlaceholder(Event):
        personal: ClassVar[frozenset[str]] = frozenset({"age"})
        age: int

    for event_class in (Unknown, NumberInClear, NoPlaceholder):
        with pytest.raises(TypeError):
            PersonalFields.of(event_class)


def test_nested_personal_leaves_are_taken_and_put_back(sealer: Sealer) -> None:
    message = WhatsAppMessageReceived.model_validate(
        {
            "message_id": "wamid.1",
            "phone": PHONE,
            "profile_name": "Siti",
            "sent_at": datetime(2026, 11, 23, tzinfo=UTC),
            "message_type": "document",
            "media": {"media_id": "m1", "kind": "document", "filename": "KK 3603012001180003.pdf"},
            "phone_number_id": "1",
        }
    )
    event = message.to_new_event()
    key = new_key()
    data = sealer.seal_event(event, key)
    assert data is not None
    assert data["media"] == {
        "media_id": "m1",
        "kind": "document",
        "mime_type": None,
        "sha256": None,
    }
    assert (
        WhatsAppMessageReceived.model_validate(
            sealer.open_event(stored(event, data, CITIZEN), {key.key_id: key}).data
        )
        == message
    )
    erased = sealer.open_event(stored(event, data, CITIZEN), {key.key_id: None})
    assert message.media is not None
    without_name = message.media.model_copy(update={"filename": None})
    assert WhatsAppMessageReceived.model_validate(erased.data).media == without_name


# -- keys --------------------------------------------------------------------------------------


def test_data_keys_are_stored_wrapped_under_a_key_derived_from_the_secret() -> None:
    keyring = Keyring(SECRET)
    key_id, raw = uuid.uuid4(), os.urandom(32)
    wrapped = keyring.wrap(key_id, CITIZEN, raw)
    assert raw not in wrapped and len(wrapped) == 12 + 32 + 16
    assert key_encryption_key(SECRET) != SECRET[:32]
    assert key_encryption_key(SECRET) != key_encryption_key(b"another office")
    unwrapped = keyring.unwrap(key_id, CITIZEN, wrapped)
    nonce = os.urandom(12)
    assert AESGCM(raw).decrypt(nonce, unwrapped.cipher.encrypt(nonce, b"x", None), None) == b"x"
    with pytest.raises(UnreadableEventError):
        Keyring(b"another office").unwrap(key_id, CITIZEN, wrapped)
    with pytest.raises(UnreadableEventError):  # moved to another citizen's row
        keyring.unwrap(key_id, "citizen-wa_someone-else", wrapped)
    with pytest.raises(UnreadableEventError):  # under another key id
        keyring.unwrap(uuid.uuid4(), CITIZEN, wrapped)
