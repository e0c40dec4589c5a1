"""The webhook benchmark's pure parts: the fake Cloud API's wire format, how the outbox is
counted (one acknowledgement per citizen, "doubled" only for two accepted sends), the
capacity search's next rate."""

from __future__ import annotations

import hashlib
import hmac

import orjson

from benchmarks.fake_cloud import signature, status_payload, text_of
from benchmarks.webhook import refined_rate
from benchmarks.webhook_figures import StepRun
from benchmarks.webhook_traffic import Clock, CloudWatcher, Message, OutboxItem

ACK = "Permohonan KTP-el Anda kami terima.\nNomor tiket: KTP-7Q2M9XAB\nCek status: ..."


def test_a_status_webhook_has_meta_s_shape_and_echoes_the_callback_data() -> None:
    body = status_payload(
        wamid="wamid.X",
        status="sent",
        phone="6281234567890",
        kind="text",
        callback="notification:1",
        at=1_763_880_005,
        phone_number_id="109876543210",
    )
    value = body["entry"][0]["changes"][0]["value"]
    status = value["statuses"][0]
    assert body["object"] == "whatsapp_business_account"
    assert value["metadata"]["phone_number_id"] == "109876543210"
    assert status["id"] == "wamid.X"
    assert status["timestamp"] == "1763880005"
    assert status["recipient_id"] == "6281234567890"
    assert status["biz_opaque_callback_data"] == "notification:1"
    assert status["pricing"]["category"] == "service"
    assert "conversation" in status


def test_read_carries_no_pricing_and_no_callback_when_none_was_sent() -> None:
    body = status_payload(
        wamid="wamid.X",
        status="read",
        phone="62812",
        kind="text",
        callback=None,
        at=1,
        phone_number_id="1",
    )
    status = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert "pricing" not in status
    assert "biz_opaque_callback_data" not in status


def test_the_signature_is_the_hmac_of_the_raw_body() -> None:
    raw = orjson.dumps({"a": 1})
    expected = hmac.new(b"secret", raw, hashlib.sha256).hexdigest()
    assert signature(b"secret", raw) == f"sha256={expected}"


def test_text_of_reads_texts_and_template_parameters() -> None:
    assert text_of({"type": "text", "text": {"body": ACK}}) == ACK
    template = {
        "type": "template",
        "template": {
            "name": "adminduk_request_received",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "KTP-1"}]}],
        },
    }
    assert text_of(template) == "template adminduk_request_received: KTP-1"


def _watcher(message: Message) -> CloudWatcher:
    return CloudWatcher("http://127.0.0.1:1", Clock(), {message.phone: message})


def test_one_acknowledgement_per_phone_is_not_doubled() -> None:
    message = Message(0, 1, "62890", "wamid.in", b"", "")
    watcher = _watcher(message)
    watcher.note(OutboxItem(1, "62890", "wamid.a", "text", ACK, 10.0))
    watcher.note(OutboxItem(2, "62891", "wamid.b", "text", ACK, 11.0))
    assert message.acknowledgements == 1
    assert message.acknowledged_ticket == "KTP-7Q2M9XAB"
    assert message.seen == 10.0
    assert watcher.strangers == 1


def test_two_accepted_acknowledgements_are_a_double_and_the_first_counts_for_latency() -> None:
    message = Message(0, 1, "62890", "wamid.in", b"", "")
    watcher = _watcher(message)
    watcher.note(OutboxItem(2, "62890", "wamid.b", "text", ACK, 12.0))
    watcher.note(OutboxItem(1, "62890", "wamid.a", "template", ACK, 11.0))
    watcher.note(OutboxItem(3, "62890", "wamid.c", "text", "Berkas diterima.", 13.0))
    assert message.acknowledgements == 2
    assert message.seen == 11.0
    assert message.other_replies == 1


def _run(rate: float, cut: bool) -> StepRun:
    return StepRun(1, rate, 10, [], cut_reason="cut" if cut else None)


def test_the_capacity_search_tries_between_the_best_kept_up_and_the_lowest_cut_rate() -> None:
    assert refined_rate([_run(50, False), _run(200, True)]) == 100
    assert refined_rate([_run(100, False), _run(120, True)]) is None
    assert refined_rate([_run(100, True)]) is None
