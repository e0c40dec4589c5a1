"""An operator follows one WhatsApp request through the running system with
`adminduk traces TICKET`, from the span files the embedded default writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import SITI
from tests.e2e.harness import Runtime, serving
from tests.e2e.test_notify import Chat
from tests.e2e.test_verification import TICKET, wait

pytestmark = pytest.mark.e2e

PHONE = "6281377770001"
NIK = SITI.nik
KTP = f"#KTP#{NIK}#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    # The harness turns tracing off; here it is the embedded default (span files), with
    # spans written within a fraction of a second instead of every 5 s.
    runtime = Runtime(tmp_path / "data", {"OTEL_BSP_SCHEDULE_DELAY": "200"})
    del runtime.env["OTEL_TRACES_EXPORTER"]
    runtime.env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    with serving(runtime):
        yield runtime


def _spans(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _spans(node["children"])


def test_a_request_is_one_trace_from_the_webhook_to_verification_and_notify(
    runtime: Runtime,
) -> None:
    chat = Chat(runtime, PHONE)
    chat.write(KTP)
    ack = chat.next_message(0, lambda m: "Nomor tiket:" in (m["text"] or ""))
    match = TICKET.search(ack["text"])
    assert match is not None
    ticket = match[1]

    def traced() -> dict[str, Any] | None:
        done = runtime.cli("traces", ticket, "--json")
        if done.returncode != 0:
            return None  # spans not written yet
        document: dict[str, Any] = json.loads(done.stdout)
        consumers = {s["name"] for t in document["traces"] for s in _spans(t["roots"])}
        wanted = {
            "verification-checks RequestReceived",
            "notify-replies RequestReceived",
            "whatsapp send",
        }
        return document if wanted <= consumers else None

    document = wait(traced, timeout=60)
    # The trace the request arrived in: the webhook's span (under the HTTP server's own),
    # the intake consumer that gave the ticket, and the consumers of RequestReceived below.
    [webhook] = [
        span
        for t in document["traces"]
        for span in _spans(t["roots"])
        if span["name"] == "whatsapp webhook"
        and any(c["name"] == "intake-messages WhatsAppMessageReceived" for c in span["children"])
    ]
    assert webhook["service"] == "intake"
    [intake] = [c for c in webhook["children"] if c["name"].startswith("intake-messages")]
    assert intake["attributes"]["adminduk.ticket"] == ticket
    assert {"event_type": "RequestReceived", "stream": "request", "version": 1} in intake["wrote"]
    below = {child["name"]: child["service"] for child in intake["children"]}
    assert below["verification-checks RequestReceived"] == "verification"
    assert below["notify-replies RequestReceived"] == "notify"
    # Notify's worker sends the acknowledgement later, in the same trace.
    [notify] = [c for c in intake["children"] if c["name"] == "notify-replies RequestReceived"]
    [send] = [c for c in notify["children"] if c["name"] == "whatsapp send"]
    assert send["service"] == "notify" and send["attributes"]["adminduk.ticket"] == ticket
    assert any(w["event_type"] == "NotificationSent" for w in send["wrote"]), send["wrote"]

    text = runtime.cli("traces", ticket)
    assert text.returncode == 0, text.stderr
    assert "whatsapp webhook" in text.stdout and "notify-replies RequestReceived" in text.stdout
    for personal in (PHONE, NIK, "SITI AMINAH"):
        assert personal not in text.stdout and personal not in json.dumps(document)
