"""Public events: what integrators (other agencies) are told, without personal data.

The contract between the office and its integrators: the versioned public event types and
their envelope (:mod:`shared.public.models`) and how a public event is derived from an
internal one, with keyed pseudonyms instead of identity numbers
(:mod:`shared.public.derive`). Public events are published on ``adminduk.public.<Type>`` and
to webhooks by :mod:`services.integrations`, which reads them in position order through
``services.integrations.log.PublicLog``; ``python -m adminduk.docs`` writes
``docs/asyncapi.yaml`` and ``docs/EVENTS.md`` from the models here.
"""

from shared.public.derive import (
    DERIVED_FROM,
    REQUEST_CATEGORY,
    SUBJECT_PURPOSE,
    TicketFacts,
    facts_of,
    has_public_form,
    kecamatan_code,
    public_event,
    subject_pseudonym,
)
from shared.public.models import (
    PUBLIC_TYPES,
    REQUIRED_TYPES,
    PublicData,
    PublicEvent,
    public_subject,
    typed_envelope,
)

__all__ = [
    "DERIVED_FROM",
    "PUBLIC_TYPES",
    "REQUEST_CATEGORY",
    "REQUIRED_TYPES",
    "SUBJECT_PURPOSE",
    "PublicData",
    "PublicEvent",
    "TicketFacts",
    "facts_of",
    "has_public_form",
    "kecamatan_code",
    "public_event",
    "public_subject",
    "subject_pseudonym",
    "typed_envelope",
]
