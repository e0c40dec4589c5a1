"""Webhook signatures, secrets, URLs and backoff, without a database or a network.

The signature is checked twice: with the Standard Webhooks library (what an integrator
uses) and by hand from the scheme's definition, so a change in either side shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from services.integrations.subscriptions import (
    InvalidSubscriptionError,
    UnknownEventTypesError,
    check_event_types,
    check_secret,
    check_url,
    new_secret,
)
from services.integrations.webhooks import RetryPolicy, signed_request
from shared.public import PUBLIC_TYPES, PublicEvent

EVENT = PublicEvent(
    id="5f0d6c3e-8d7b-4a43-9a38-3f3c1d6f2b11",
    type="RequestVerified",
    schema_version=1,
    position=42,
    occurred_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
    ticket="KTP-7Q2M9XAB",
    doc_type="KTP",
    kecamatan="360301",
    data={"officer_id": "off_1234"},
)


def test_a_signed_event_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    request = signed_request(EVENT, secret, datetime.now(UTC))

    payload = Webhook(secret).verify(request.body, request.headers)

    assert PublicEvent.model_validate(payload) == EVENT
    assert request.headers["webhook-id"] == EVENT.id
    assert request.headers["Adminduk-Event-Type"] == "RequestVerified"
    assert request.headers["Adminduk-Position"] == "42"
    assert request.headers["content-type"] == "application/json"


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    secret = new_secret()
    at = datetime(2026, 12, 7, 3, 0, 5, 700_000, tzinfo=UTC)
    request = signed_request(EVENT, secret, at)

    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{EVENT.id}.{int(at.timestamp())}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert request.headers["webhook-signature"] == f"v1,{expected}"
    assert json.loads(request.body)["position"] == 42


def test_a_tampered_body_or_another_secret_does_not_verify() -> None:
    secret = new_secret()
    request = signed_request(EVENT, secret, datetime.now(UTC))
    tampered = request.body.replace(b"KTP-7Q2M9XAB", b"KTP-7Q2M9XAC")

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body, {**request.headers, "webhook-id": "another"})


def test_an_old_signature_is_refused_as_a_replay() -> None:
    secret = new_secret()
    request = signed_request(EVENT, secret, datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request.body, request.headers)


def test_generated_secrets_are_standard_and_new_each_time() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert check_secret(first) == first
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("hunter2", "must look like whsec_"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
    ],
)
def test_unusable_secrets_are_refused_in_words(secret: str, problem: str) -> None:
    with pytest.raises(InvalidSubscriptionError, match=problem):
        check_secret(secret)


@pytest.mark.parametrize(
    "url",
    [
        "https://dukcapil.example.go.id/hooks/adminduk",
        "http://10.0.0.7:8080/events?agency=bpjs",
    ],
)
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://files.example.org/in", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("dukcapil.example.go.id/hooks", "must start with http"),
        ("https:///no-host", "must name a host"),
        ("https://example.org/a b", "one http"),
        ("http://example.org:port/", "not a usable URL"),
        ("", "one http"),
    ],
)
def test_other_urls_are_refused_in_words(url: str, problem: str) -> None:
    with pytest.raises(InvalidSubscriptionError, match=problem):
        check_url(url)


def test_event_types_are_checked_against_the_public_ones() -> None:
    assert check_event_types([" RequestVerified", "RequestVerified", ""], PUBLIC_TYPES) == (
        "RequestVerified",
    )
    assert check_event_types([], PUBLIC_TYPES) == ()
    with pytest.raises(UnknownEventTypesError) as refused:
        check_event_types(["RequestVerified", "WhatsAppMessageReceived"], PUBLIC_TYPES)
    assert refused.value.unknown == ("WhatsAppMessageReceived",)
    assert "DocumentCollected" in refused.value.known
    assert "known public event types: " in str(refused.value)


POLICY = RetryPolicy(
    base=timedelta(seconds=2), max=timedelta(minutes=10), dead_letter_after=timedelta(hours=24)
)


@given(failures=st.integers(min_value=1, max_value=10_000), seed=st.integers())
def test_backoff_is_full_jitter_under_an_exponential_ceiling(failures: int, seed: int) -> None:
    wait = POLICY.backoff(failures, random.Random(seed))
    ceiling = min(POLICY.max, POLICY.base * 2 ** min(failures - 1, 32))
    assert timedelta(0) <= wait <= ceiling


def test_backoff_spreads_retries_and_grows() -> None:
    rng = random.Random(7)
    early = [POLICY.backoff(1, rng) for _ in range(200)]
    late = [POLICY.backoff(12, rng) for _ in range(200)]
    assert len(set(early)) > 100
    assert max(early) <= timedelta(seconds=2) < max(late) <= timedelta(minutes=10)


def test_a_subscriber_is_parked_once_it_has_failed_for_the_dead_letter_time() -> None:
    since = datetime(2026, 12, 7, tzinfo=UTC)
    assert not POLICY.parks(since, since + timedelta(hours=23, minutes=59))
    assert POLICY.parks(since, since + timedelta(hours=24))
