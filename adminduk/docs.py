"""The generated documents: ``python -m adminduk.docs`` writes them, ``--check`` says
which are stale (the tests check that the committed ones are current).

* ``docs/asyncapi.yaml``: the AsyncAPI 3.0 document of the public events
  (:mod:`shared.public`), made by FastStream;
* ``docs/EVENTS.md``: the event catalogue, every public type with an example and every
  internal event type (:mod:`shared.contracts`);
* ``docs/TEMPLATES.md``: the WhatsApp templates as they must be registered with Meta
  (:func:`services.notify.domain.templates.markdown`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml
from faststream.nats import NatsBroker
from faststream.nats.security import NatsUserPassword
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from services.notify.domain import templates
from shared import contracts as internal
from shared.eventstore.envelope import Event, RecordedEvent, deterministic_event_id
from shared.public import (
    DERIVED_FROM,
    PUBLIC_TYPES,
    REQUIRED_TYPES,
    PublicEvent,
    TicketFacts,
    facts_of,
    public_event,
    public_subject,
    typed_envelope,
)

DOCS_COMMAND: Final = "python -m adminduk.docs"
ASYNCAPI_FILE: Final = "docs/asyncapi.yaml"
CATALOGUE_FILE: Final = "docs/EVENTS.md"
TEMPLATES_FILE: Final = "docs/TEMPLATES.md"
REPO: Final = Path(__file__).resolve().parents[1]

_EXAMPLE_KEY: Final = b"example-office-key"
_EXAMPLE_TICKET: Final = "KTP-7Q2M9XAB"

_STREAMS: Final[dict[str, tuple[str, str]]] = {
    # The internal event types by stream category, with a meaning for those whose class
    # has no docstring (the class's docstring wins where there is one).
    **{
        name: ("citizen", meaning)
        for name, meaning in {
            "WhatsAppMessageReceived": "",
            "AttachmentStored": "A file the citizen sent was downloaded and stored.",
            "AttachmentRejected": "A file the citizen sent could not be taken.",
            "AttachmentHeld": "",
            "AttachmentLinked": "",
            "RequestSubmitted": "",
            "DuplicateRequestReceived": "",
            "InvalidRequestReceived": "A message that is not a valid request, with its problems.",
            "StatusReported": "",
            "InfoRequested": "The citizen asked for a document's requirements.",
            "MenuRequested": "The citizen was shown the list of services.",
            "UnsupportedCommandReceived": "A command the office does not offer.",
            "CorrectionSubmitted": "",
            "CorrectionRefused": "",
            "CancellationRequested": "",
            "CancellationRefused": "",
            "ComplaintSubmitted": "The citizen's side of a new complaint.",
            "GuidedStepAsked": "",
            "GuidedEnded": "",
        }.items()
    },
    **{
        name: ("request", meaning)
        for name, meaning in {
            "RequestReceived": "",
            "AttachmentAdded": "A file sent after the request was added to it.",
            "RequestChecked": "",
            "RequestClaimed": "",
            "ClaimReleased": "An officer gave the request back, or the claim expired.",
            "ChangesRequested": "",
            "RequestAmended": "",
            "RequestVerified": "An officer approved the request.",
            "RequestRejected": "An officer refused the request, with a reason.",
            "RequestCancelled": "",
            "IssuanceScheduled": "",
            "HandedToSiak": "",
            "IssuanceDelayed": "",
            "IssuanceFailed": "",
            "DocumentIssued": "",
            "DocumentReady": "",
            "DocumentCollected": "",
            "SurveyAnswered": "",
        }.items()
    },
    "ComplaintReceived": ("complaint", "A complaint with its ticket and text."),
    "ComplaintAnswered": ("complaint", ""),
    "DeliveryStatusReceived": ("delivery", ""),
    "NotificationQueued": ("notification", ""),
    "NotificationSent": ("notification", ""),
    "NotificationFailed": ("notification", ""),
    "NotificationStatusChanged": ("notification", ""),
    "CitizenErased": ("erasure", ""),
}


_SENTENCE_END: Final = re.compile(r"[.:]\s+(?=[A-Z`])")


def _first_sentence(text: str | None) -> str:
    flat = " ".join((text or "").split())
    end = _SENTENCE_END.search(flat)
    return flat if end is None else flat[: end.start() + 1]


def _example_events() -> list[Event]:
    """A KTP request's life with made-up personal data, one event per public type."""
    ticket, phone, day = _EXAMPLE_TICKET, "6281234567890", date(2026, 12, 9)
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    office = internal.Delivery(channel="office", place="Loket 3")
    return [
        internal.RequestReceived(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            citizen="citizen-wa_0f2c",
            kecamatan_code="360301",
            applicant={"nik": "3603015708990001", "nama": "Siti Aminah", "reason": "RUSAK"},
            message_id="wamid.1",
            received_at=at,
        ),
        internal.RequestChecked(
            ticket=ticket,
            round=1,
            results=(
                internal.CheckResult(check="nik_region", passed=True),
                internal.CheckResult(check="papers", passed=True),
            ),
            outcome="passed",
        ),
        internal.RequestClaimed(
            ticket=ticket, officer_id="officer-17", officer_name="Bambang", by="officer-17"
        ),
        internal.ClaimReleased(ticket=ticket, officer_id="officer-17", reason="released"),
        internal.ChangesRequested(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            reasons=("Foto KK buram.",),
            officer_id="officer-17",
        ),
        internal.RequestAmended(ticket=ticket, phone=phone, message_id="wamid.2", attachments=()),
        internal.RequestVerified(
            ticket=ticket, phone=phone, doc_type="KTP", officer_id="officer-17"
        ),
        internal.RequestRejected(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            officer_id="officer-17",
            reason="Data tidak sesuai.",
        ),
        internal.RequestCancelled(ticket=ticket, phone=phone, doc_type="KTP", reason="citizen"),
        internal.IssuanceScheduled(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            promised_on=day,
            working_days=2,
            delivery=office,
        ),
        internal.HandedToSiak(ticket=ticket, idempotency_key=f"siak-{ticket}"),
        internal.IssuanceDelayed(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            previous_date=day,
            promised_on=date(2026, 12, 11),
            reason="siak_unavailable",
        ),
        internal.IssuanceFailed(ticket=ticket, status=422, message="NIK tidak ditemukan"),
        internal.DocumentIssued(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            document_number="3603015708990001",
            issued_at=at,
            ready_on=day,
            delivery=office,
        ),
        internal.DocumentReady(
            ticket=ticket,
            phone=phone,
            doc_type="KTP",
            document_number="3603015708990001",
            ready_on=day,
            delivery=office,
        ),
        internal.DocumentCollected(
            ticket=ticket, phone=phone, doc_type="KTP", officer_id="officer-17"
        ),
        internal.SurveyAnswered(ticket=ticket, phone=phone, message_id="wamid.3", score=4),
    ]


def examples() -> dict[str, PublicEvent]:
    """One public event of each type, derived from :func:`_example_events` as the
    publisher derives them."""
    found: dict[str, PublicEvent] = {}
    facts: TicketFacts | None = None
    for position, event in enumerate(_example_events(), start=1):
        new = event.to_new_event(
            event_id=deterministic_event_id("example", event.event_type),
            occurred_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC) + timedelta(minutes=position),
        )
        recorded = RecordedEvent(
            **new.model_dump(),
            stream_id=internal.request_stream(_EXAMPLE_TICKET),
            stream_version=position,
            position=position,
            recorded_at=new.occurred_at,
        )
        facts = facts_of(recorded) or facts
        public = public_event(recorded, facts, _EXAMPLE_KEY)
        if public is not None:
            found[public.type] = public
    return found


_ASYNCAPI_DESCRIPTION: Final = """\
Public events of the adminduk civil-registry front office, for integrators (other
agencies). Every event of a document request is published, in the order it happened, on
`adminduk.public.<Type>` (JetStream stream `ADMINDUK_PUBLIC`, kept for
`ADMINDUK_PUBLIC_STREAM_MAX_AGE`). Connect as NATS user `integrator` with
`ADMINDUK_INTEGRATOR_PASSWORD`; the embedded server writes its URL to
`$ADMINDUK_DATA_DIR/nats.url`. A plain subscription receives events live; to read the
stored stream from a position, use a pull consumer on `ADMINDUK_PUBLIC` through JetStream
domain `adminduk` (the stream lives in the services' account: `nc.jetstream(domain=
"adminduk")` in Python, `nats --js-domain adminduk` on the command line). Integrators who
cannot speak NATS register a signed HTTP webhook instead (docs/WEBHOOKS.md).

No event carries a NIK, a No. KK, a name or a phone number in clear: a request's subject
is a keyed pseudonym, officers' free text is published only as counts.

Headers: `Nats-Msg-Id` (= the envelope's `id`; deduplicate on it), `Adminduk-Position`
(= `position`, for replay from a position), `Adminduk-Event-Type` (= `type`), and the W3C
trace context (`traceparent`) of the request's trace.

Versioning: each type's `schema_version` changes when the meaning of its `data` changes;
new optional fields may be added within a version. The catalogue with examples is
docs/EVENTS.md. Generated by `python -m adminduk.docs`.
"""


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the public events, made by FastStream from a broker
    that declares one publisher per public type with its typed envelope as schema."""
    broker = NatsBroker(
        "nats://localhost:4222",
        description="The office's NATS server (embedded: the URL is in "
        "$ADMINDUK_DATA_DIR/nats.url).",
        security=NatsUserPassword("integrator", "ADMINDUK_INTEGRATOR_PASSWORD"),
    )
    for public_type, data in PUBLIC_TYPES.items():
        broker.publisher(
            public_subject(public_type),
            title=public_type,
            description=_first_sentence(data.__doc__),
            schema=typed_envelope(public_type),
        )
    specification = AsyncAPI(
        broker,
        title="adminduk public events",
        version="1.0.0",
        description=_ASYNCAPI_DESCRIPTION,
        identifier="urn:adminduk:public-events",
    ).to_specification()
    document: dict[str, Any] = json.loads(specification.to_json())
    # FastStream keeps publishers in a set: sort, so that the committed file is stable.
    for section in (document, document["components"]):
        for name in ("channels", "operations", "messages", "schemas"):
            if name in section:
                section[name] = dict(sorted(section[name].items()))
    return document


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, writing multi-line texts as literal blocks (``|``)."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(value: object) -> str:
    """Block-style YAML of a JSON value, keys in their order (PyYAML's safe dumper)."""
    return yaml.dump(
        value,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def asyncapi_yaml() -> str:
    header = f"# Generated by `{DOCS_COMMAND}` from shared/public/: do not edit.\n"
    return header + to_yaml(asyncapi())


def _schema_type(schema: dict[str, Any]) -> str:
    """A field's JSON schema as a short type for the catalogue's tables."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_type(option) for option in schema["anyOf"])
    if "enum" in schema or "const" in schema:
        options = schema.get("enum", [schema.get("const")])
        return " / ".join(f"`{json.dumps(option)}`" for option in options)
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _field_table(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, field_schema in schema.get("properties", {}).items():
        meaning = field_schema.get("description") or ""
        kind = _schema_type(field_schema)
        rows.append(f"| `{name}` | {kind} | {meaning.replace('|', '/')} |")
    if len(rows) == 2:
        rows.append("| | | (no fields) |")
    for name, definition in definitions.items():
        rows.append("")
        rows.append(f"`{name}`: {_first_sentence(definition.get('description'))}")
        rows.append("")
        rows.append("| field | type | meaning |")
        rows.append("|---|---|---|")
        for field, field_schema in definition.get("properties", {}).items():
            meaning = field_schema.get("description") or ""
            kind = _schema_type(field_schema)
            rows.append(f"| `{field}` | {kind} | {meaning.replace('|', '/')} |")
    return rows


def catalogue() -> str:
    """docs/EVENTS.md: every public type (subject, version, fields, example) and every
    internal event type with its stream and meaning."""
    samples = examples()
    lines = [
        "# Event catalogue",
        "",
        f"Generated by `{DOCS_COMMAND}` from `shared/public/` and `shared/contracts.py`;",
        "do not edit by hand. The same schemas, machine-readable: [asyncapi.yaml](asyncapi.yaml).",
        "",
        "## Public events (for integrators)",
        "",
        *_ASYNCAPI_DESCRIPTION.replace("docs/EVENTS.md", "this page").splitlines(),
        "",
        "### The envelope",
        "",
        "Every public event is this JSON object; `data` depends on `type`.",
        "",
        *_field_table(PublicEvent),
        "",
        "| type | subject | version | derived from |",
        "|---|---|---|---|",
    ]
    for public_type, data in PUBLIC_TYPES.items():
        lines.append(
            f"| [{public_type}](#{public_type.lower()}) | `{public_subject(public_type)}` | "
            f"{data.schema_version} | `{DERIVED_FROM[public_type]}` |"
        )
    for public_type, data in PUBLIC_TYPES.items():
        example = samples[public_type].model_dump(mode="json")
        lines += [
            "",
            f"### {public_type}",
            "",
            " ".join((data.__doc__ or "").split()),
            "",
            f"Subject `{public_subject(public_type)}`, schema version {data.schema_version}, "
            f"derived from the internal `{DERIVED_FROM[public_type]}`."
            + (
                " A core type (a step every integration needs)."
                if public_type in REQUIRED_TYPES
                else ""
            ),
            "",
            "`data`:",
            "",
            *_field_table(data),
            "",
            "```json",
            json.dumps(example, indent=2, ensure_ascii=False),
            "```",
        ]
    lines += [
        "",
        "## Internal events (for the project's own services)",
        "",
        "On JetStream stream `ADMINDUK_EVENTS`, subject `adminduk.events.<category>.<Type>`.",
        "They carry personal data and are never given to integrators as they are.",
        "",
        "| type | stream category | public form | meaning |",
        "|---|---|---|---|",
    ]
    for event_class in sorted(internal.registry.classes(), key=_internal_order):
        name = event_class.event_type
        category, fallback = _STREAMS.get(name, ("?", ""))
        public = next((t for t, source in DERIVED_FROM.items() if source == name), None)
        meaning = _first_sentence(event_class.__doc__) or fallback
        lines.append(
            f"| `{name}` | `{category}` | {f'`{public}`' if public else '-'} | "
            f"{meaning.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def _internal_order(event_class: type[Event]) -> int:
    """By stream category; within one, in the order of shared/contracts.py (stable sort)."""
    order = ["citizen", "request", "complaint", "delivery", "notification", "erasure"]
    category = _STREAMS.get(event_class.event_type, ("?", ""))[0]
    return order.index(category) if category in order else len(order)


def template_sheet() -> str:
    """docs/TEMPLATES.md: the WhatsApp templates to register with Meta."""
    return templates.markdown()


GENERATED: Final[dict[str, Callable[[], str]]] = {
    ASYNCAPI_FILE: asyncapi_yaml,
    CATALOGUE_FILE: catalogue,
    TEMPLATES_FILE: template_sheet,
}
"""Every generated document, by its path under the repository, with its generator."""


def stale(root: Path = REPO) -> list[str]:
    """The generated documents under ``root`` that differ from what they should be."""
    return [
        relative
        for relative, generate in GENERATED.items()
        if not (root / relative).is_file()
        or (root / relative).read_text(encoding="utf-8") != generate()
    ]


def write_docs(root: Path = REPO) -> list[Path]:
    """Write every generated document under ``root``; returns the paths."""
    written = []
    for relative, generate in GENERATED.items():
        path = root / relative
        path.write_text(generate(), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=DOCS_COMMAND, description="Write (or check) the generated documents under docs/."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and name the documents that are stale",
    )
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for relative in outdated:
            print(f"{relative} is stale: run {DOCS_COMMAND}", file=sys.stderr)
        return 1 if outdated else 0
    for path in write_docs():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
