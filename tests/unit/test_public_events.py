"""Public events: derived from internal events without personal data, typed and versioned,
documented by the generated docs/asyncapi.yaml and docs/EVENTS.md (adminduk.docs)."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from adminduk import docs
from shared import contracts as c
from shared.eventstore.envelope import Event
from shared.privacy import pseudonym
from shared.public import (
    DERIVED_FROM,
    PUBLIC_TYPES,
    REQUIRED_TYPES,
    PublicEvent,
    TicketFacts,
    public_event,
    subject_pseudonym,
    typed_envelope,
)
from tests.builders import recorded

KEY = b"office-key-one"
OTHER_KEY = b"office-key-two"
REPO = Path(__file__).resolve().parents[2]
CLASSES: dict[str, type[Event]] = {cls.event_type: cls for cls in c.registry.classes()}
FORMS = sorted(DERIVED_FROM.values())

# -- personal data to plant ---------------------------------------------------------------

NIKS = st.from_regex(r"[1-9][0-9]{15}", fullmatch=True)
PHONES = st.from_regex(r"628[1-9][0-9]{7,10}", fullmatch=True)
NAMES = st.builds(
    "{} {}".format,
    st.sampled_from(["Siti", "Budi", "Agus", "Dewi", "Wayan", "Ahmad", "Rina"]),
    st.from_regex(r"[A-Z][a-z]{4,9}", fullmatch=True),
)
FREE_TEXTS = st.builds(
    "Atas nama {}, NIK {}, HP {}: {}".format,
    NAMES,
    NIKS,
    PHONES,
    st.text(st.characters(codec="utf-8"), max_size=30),
)
PERSONAL = st.one_of(NIKS, PHONES, NAMES, FREE_TEXTS)
APPLICANTS = st.fixed_dictionaries(
    {"nik": NIKS, "no_kk": NIKS, "nama": NAMES},
    optional={"nama_anak": NAMES, "nama_ayah": NAMES, "alamat": FREE_TEXTS, "hp": PHONES},
)

# Fields that are not personal and are published as they are, with realistic values.
TICKETS = st.from_regex(r"(KTP|KK|KIA|AKTA)-[0-9A-HJKMNP-TV-Z]{8}", fullmatch=True)
OFFICERS = st.uuids().map(lambda u: f"officer-{u.hex[:12]}")
SAFE: dict[str, st.SearchStrategy[Any]] = {
    "ticket": TICKETS,
    "doc_type": st.sampled_from(["KTP", "KK", "KIA", "AKTA"]),
    "officer_id": OFFICERS,
    "by": OFFICERS,
    "kecamatan_code": st.one_of(st.none(), st.from_regex(r"3603[0-9]{2}", fullmatch=True)),
    "duplicate_of": st.one_of(st.none(), TICKETS),
    "related_ticket": st.one_of(st.none(), TICKETS),
    "score": st.integers(1, 4),
}


def value_of(name: str, annotation: Any) -> st.SearchStrategy[Any]:
    """A strategy for one field: safe fields get realistic values, every other text gets
    planted personal data (so a new text field is treated as personal until published on
    purpose)."""
    origin = get_origin(annotation)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: PERSONAL,
        bool: st.booleans(),
        int: st.integers(0, 600),
        datetime: st.datetimes(timezones=st.just(UTC)),
    }
    if name in SAFE:
        strategy = SAFE[name]
    elif origin is Literal:
        strategy = st.sampled_from(get_args(annotation))
    elif origin in (Union, types.UnionType):
        strategy = st.one_of(
            *(st.none() if a is type(None) else value_of(name, a) for a in get_args(annotation))
        )
    elif origin is tuple:
        strategy = st.lists(value_of(name, get_args(annotation)[0]), max_size=3).map(tuple)
    elif origin is dict:
        strategy = APPLICANTS
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        strategy = model_of(annotation)
    else:
        strategy = simple[annotation] if annotation in simple else st.from_type(annotation)
    return strategy


def model_of(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    fields = {
        name: value_of(name, info.annotation)
        for name, info in model.model_fields.items()
        if name != "schema_version"
    }
    return st.fixed_dictionaries(fields).map(lambda values: model(**values))


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


_PLANTED_SHAPE = re.compile(r"\d{16}|628\d+|.* .*", re.DOTALL)


def planted(event: Event) -> set[str]:
    """The personal values in an event: every text shaped like what the strategies plant
    (safe values and literals never have a space or a long number)."""
    found = set()
    for text in strings(event.model_dump(mode="json")):
        if _PLANTED_SHAPE.fullmatch(text):
            found.add(text)
            found.update(re.findall(r"\d{10,}", text))
            found.update(re.findall(r"[A-Z][a-z]+ [A-Z][a-z]+", text))
    return found


def events_of(event_type: str) -> st.SearchStrategy[Any]:
    return model_of(CLASSES[event_type])


FACTS = st.builds(TicketFacts, doc_type=SAFE["doc_type"], kecamatan=SAFE["kecamatan_code"])


# -- no personal data, for every type with a public form ---------------------------------


@pytest.mark.parametrize("event_type", FORMS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_public_event_carries_personal_data(event_type: str, data: st.DataObject) -> None:
    event = data.draw(events_of(event_type))
    facts = data.draw(st.one_of(st.none(), FACTS))
    derived = public_event(recorded(event), facts, KEY)

    assert derived is not None, "every event of a type with a public form has one"
    text = derived.model_dump_json()
    for value in planted(event):
        assert value not in text, f"{event_type} published {value!r}"
    if isinstance(event, c.RequestReceived):
        internal_key = c.subject_key(event.doc_type, event.applicant, KEY)
        assert internal_key is None or internal_key not in text


@pytest.mark.parametrize("event_type", FORMS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_each_public_event_is_valid_against_its_typed_schema(
    event_type: str, data: st.DataObject
) -> None:
    event = data.draw(events_of(event_type))
    derived = public_event(recorded(event), None, KEY)
    assert derived is not None
    typed = typed_envelope(derived.type).model_validate_json(derived.model_dump_json())
    assert typed.model_dump(mode="json") == derived.model_dump(mode="json")
    assert derived.schema_version == PUBLIC_TYPES[derived.type].schema_version
    assert derived.subject == f"adminduk.public.{derived.type}"


def test_the_core_types_are_public() -> None:
    promised = ["RequestReceived", "RequestVerified", "ChangesRequested", "RequestRejected"]
    promised += ["DocumentIssued", "DocumentCollected"]
    assert set(promised) == REQUIRED_TYPES
    assert set(PUBLIC_TYPES) >= REQUIRED_TYPES
    assert set(DERIVED_FROM) == set(PUBLIC_TYPES), "every public type is derived"
    assert set(DERIVED_FROM.values()) <= set(CLASSES)


# -- the envelope ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(event=events_of("RequestClaimed"), facts=FACTS)
def test_an_event_without_its_own_facts_takes_the_requests(
    event: c.RequestClaimed, facts: TicketFacts
) -> None:
    derived = public_event(recorded(event, position=12), facts, KEY)
    assert derived is not None
    assert (derived.ticket, derived.doc_type, derived.kecamatan) == (
        event.ticket,
        facts.doc_type,
        facts.kecamatan,
    )
    assert derived.position == 12
    assert derived.data == {"officer_id": event.officer_id, "assigned_by": event.by}


@settings(max_examples=30, deadline=None)
@given(event=events_of("RequestReceived"))
def test_a_received_request_carries_its_own_facts(event: c.RequestReceived) -> None:
    other = TicketFacts(doc_type="KK", kecamatan="367101")
    derived = public_event(recorded(event), other, KEY)
    assert derived is not None
    assert (derived.ticket, derived.doc_type, derived.kecamatan) == (
        event.ticket,
        event.doc_type,
        event.kecamatan_code,
    )
    assert derived.occurred_at is not None and derived.id


def test_an_event_with_its_own_document_type_keeps_it_and_missing_facts_are_null() -> None:
    verified = c.RequestVerified(ticket="KIA-7Q2M9XAB", officer_id="o-1", phone="", doc_type="KIA")
    derived = public_event(recorded(verified), None, KEY)
    assert derived is not None
    assert (derived.doc_type, derived.kecamatan) == ("KIA", None)
    claimed = c.RequestClaimed(ticket="KIA-7Q2M9XAB", officer_id="o", officer_name="N", by="o")
    bare = public_event(recorded(claimed), None, KEY)
    assert bare is not None and (bare.doc_type, bare.kecamatan) == (None, None)


def test_a_kecamatan_that_is_not_a_six_digit_code_is_not_published() -> None:
    received = c.RequestReceived(
        ticket="KTP-7Q2M9XAB",
        doc_type="KTP",
        citizen="citizen-x",
        phone="6281234567890",
        kecamatan_code="Kec. Tigaraksa 6281234567890",
        applicant={},
        message_id="m",
        received_at=datetime(2026, 12, 7, tzinfo=UTC),
    )
    derived = public_event(recorded(received), None, KEY)
    assert derived is not None and derived.kecamatan is None


def test_events_without_a_public_form_give_none() -> None:
    menu = c.MenuRequested(phone="6281234567890", message_id="m", understood=True)
    assert public_event(recorded(menu, stream_id="citizen-wa_1"), None, KEY) is None
    complaint = c.ComplaintReceived(
        ticket="ADUAN-7Q2M9XAB",
        citizen="citizen-wa_1",
        phone="6281234567890",
        text="Petugas Budi Santoso lambat",
        message_id="m",
        received_at=datetime(2026, 12, 7, tzinfo=UTC),
    )
    assert (
        public_event(recorded(complaint, stream_id="complaint-ADUAN-7Q2M9XAB"), None, KEY) is None
    )
    # A type with a public form, but not on a request stream: not a request's fact.
    verified = c.RequestVerified(ticket="KTP-7Q2M9XAB", officer_id="o", phone="", doc_type="KTP")
    assert public_event(recorded(verified, stream_id="citizen-wa_1"), None, KEY) is None


def test_a_reference_to_another_request_must_be_shaped_as_a_ticket() -> None:
    cancelled = c.RequestCancelled(
        ticket="KTP-7Q2M9XAB",
        reason="duplicate",
        duplicate_of="3603015708990001",
        phone="6281234567890",
        doc_type="KTP",
    )
    assert public_event(recorded(cancelled), None, KEY) is None
    kept = cancelled.model_copy(update={"duplicate_of": "KTP-KEPT0001"})
    derived = public_event(recorded(kept), None, KEY)
    assert derived is not None and derived.data["duplicate_of"] == "KTP-KEPT0001"


def test_a_malformed_event_is_skipped_not_raised() -> None:
    verified = c.RequestVerified(ticket="KTP-7Q2M9XAB", officer_id="o", phone="", doc_type="KTP")
    assert public_event(recorded(verified, data={"n": 1}), None, KEY) is None


# -- the subject's pseudonym ------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(applicant=APPLICANTS, other_nik=NIKS)
def test_the_subject_is_a_stable_keyed_pseudonym(applicant: dict[str, Any], other_nik: str) -> None:
    subject = subject_pseudonym("KTP", applicant, KEY)
    assert subject is not None
    assert subject == subject_pseudonym("KTP", dict(applicant), KEY)
    assert subject == pseudonym(f"KTP:{applicant['nik']}", KEY, purpose="public-subject")
    assert subject != subject_pseudonym("KTP", applicant, OTHER_KEY)
    assert subject != subject_pseudonym("KK", applicant, KEY)
    assert subject != c.subject_key("KTP", applicant, KEY), "joinable with internal ids"
    if other_nik != applicant["nik"]:
        assert subject != subject_pseudonym("KTP", {**applicant, "nik": other_nik}, KEY)
    assert applicant["nik"] not in subject


def test_no_subject_without_an_identity_number() -> None:
    assert subject_pseudonym("KTP", {"nama": "Siti Aminah"}, KEY) is None
    assert subject_pseudonym("KTP", {}, KEY) is None
    assert subject_pseudonym("KTP", None, KEY) is None
    assert subject_pseudonym("KTP", {"nik": "", "no_kk": None}, KEY) is None


# -- after a citizen's erasure -----------------------------------------------------------------


def erased(value: object, placeholder: str | None) -> object:
    """The data as the store reads it back after erasure: personal texts as placeholders,
    the applicant as an empty object."""
    if isinstance(value, dict):
        return {
            key: {} if key == "applicant" else erased(item, placeholder)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [erased(item, placeholder) for item in value]
    if isinstance(value, str) and _PLANTED_SHAPE.fullmatch(value):
        return placeholder
    return value


@pytest.mark.parametrize("event_type", FORMS)
@pytest.mark.parametrize("placeholder", ["", None])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_erased_personal_fields_do_not_stop_the_derivation(
    event_type: str, placeholder: str | None, data: st.DataObject
) -> None:
    event = data.draw(events_of(event_type))
    original = recorded(event)
    shredded = recorded(event, data=erased(original.data, placeholder))  # type: ignore[arg-type]
    derived = public_event(shredded, None, KEY)
    assert derived is not None
    assert derived.type == DERIVED_FROM_PUBLIC[event_type]
    if event_type == "RequestReceived":
        assert derived.data["subject"] is None
    else:
        unshredded = public_event(original, None, KEY)
        assert unshredded is not None and unshredded.data == derived.data


DERIVED_FROM_PUBLIC = {source: public_type for public_type, source in DERIVED_FROM.items()}


# -- generated documents ---------------------------------------------------------------------


def test_the_committed_asyncapi_document_is_the_generated_one() -> None:
    committed = (REPO / docs.ASYNCAPI_FILE).read_text(encoding="utf-8")
    assert committed == docs.asyncapi_yaml(), (
        f"{docs.ASYNCAPI_FILE} is stale: run .venv/bin/{docs.DOCS_COMMAND}"
    )
    assert yaml.safe_load(committed) == docs.asyncapi()


def test_the_committed_event_catalogue_is_the_generated_one() -> None:
    committed = (REPO / docs.CATALOGUE_FILE).read_text(encoding="utf-8")
    assert committed == docs.catalogue(), (
        f"{docs.CATALOGUE_FILE} is stale: run .venv/bin/{docs.DOCS_COMMAND}"
    )


def test_the_docs_command_checks_and_writes_every_generated_document(tmp_path: Path) -> None:
    assert set(docs.GENERATED) == {"docs/asyncapi.yaml", "docs/EVENTS.md", "docs/TEMPLATES.md"}
    (tmp_path / "docs").mkdir()
    assert docs.stale(tmp_path) == list(docs.GENERATED)
    written = docs.write_docs(tmp_path)
    assert written == [tmp_path / relative for relative in docs.GENERATED]
    assert docs.stale(tmp_path) == []
    assert docs.stale() == [], f"stale documents: run .venv/bin/{docs.DOCS_COMMAND}"


def test_the_asyncapi_document_has_a_channel_and_schema_per_public_type() -> None:
    document = docs.asyncapi()
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    assert {channel["address"] for channel in channels.values()} == {
        f"adminduk.public.{name}" for name in PUBLIC_TYPES
    }
    schemas = document["components"]["schemas"]
    for name, data in PUBLIC_TYPES.items():
        envelope = schemas[f"{name}Event"]
        assert set(envelope["required"]) >= {"id", "type", "ticket", "occurred_at", "data"}
        assert envelope["properties"]["type"]["const"] == name
        assert envelope["properties"]["schema_version"]["const"] == data.schema_version
        assert envelope["properties"]["data"]["$ref"] == f"#/components/schemas/{name}Data"


def test_the_catalogue_shows_every_type_with_an_example_free_of_personal_data() -> None:
    sheet = docs.catalogue()
    examples = docs.examples()
    assert set(examples) == set(PUBLIC_TYPES)
    for name, example in examples.items():
        assert f"### {name}" in sheet
        assert f"`adminduk.public.{name}`" in sheet
        assert json.dumps(example.model_dump(mode="json"), indent=2) in sheet
    for event_class in c.registry.classes():
        assert f"| `{event_class.event_type}` |" in sheet
    for personal in ("3603015708990001", "6281234567890", "Siti Aminah", "Bambang"):
        assert personal not in docs.asyncapi_yaml()
        examples_text = "".join(e.model_dump_json() for e in examples.values())
        assert personal not in examples_text


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": None, "c": True, "e": {}, "l": []},
        {"x:y": "1", "$ref": "#/a", "n": "3.0", "t": "true"},
        {"s": 'say "hi"\tnow', "u": "Kabupaten Tangerang \u00e9"},
        {"t": "two\nlines\n", "u": "two\n\nlines", "v": " lead\nx", "w": "trail \nx"},
        {"l": [{"a": 1, "b": [1, 2]}, "x"]},
    ],
)
def test_the_yaml_reads_back_as_the_value(value: object) -> None:
    assert yaml.safe_load(docs.to_yaml(value)) == value


def test_multi_line_texts_are_literal_blocks() -> None:
    assert docs.to_yaml({"t": "two\nlines\n"}).splitlines() == ["t: |", "  two", "  lines"]


def test_a_public_event_round_trips_through_json() -> None:
    event = next(iter(docs.examples().values()))
    assert PublicEvent.model_validate_json(event.model_dump_json()) == event
