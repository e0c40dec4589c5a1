"""The webhook benchmark's pure parts: the fake Cloud API's wire format, how the outbox is
counted (one acknowledgement per citizen, "doubled" only for two accepted sends), the
capacity search's next rate."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools

import orjson
import pytest

from benchmarks.fake_cloud import (
    STATUSES,
    Connection,
    StatusPostError,
    signature,
    status_body,
    status_payload,
    text_of,
)
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


def test_the_fast_status_body_is_the_serialised_status_payload_byte_for_byte() -> None:
    for status, kind, callback in itertools.product(
        STATUSES, ("text", "template"), (None, "notification:1")
    ):
        fast = status_body(
            wamid="wamid.HBgNABC",
            status=status,
            phone="6281234567890",
            kind=kind,
            callback=callback,
            at=1_763_880_005,
            phone_number_id="109876543210",
        )
        slow = status_payload(
            wamid="wamid.HBgNABC",
            status=status,
            phone="6281234567890",
            kind=kind,
            callback=callback,
            at=1_763_880_005,
            phone_number_id="109876543210",
        )
        assert fast == orjson.dumps(slow)


async def _serve(answers: list[bytes]) -> tuple[asyncio.Server, int, list[bytes]]:
    """A server answering each request it reads with the next of ``answers`` (b"" closes)."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed it
            while answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                requests.append(head + await reader.readexactly(length))
                answer = answers.pop(0)
                if not answer:
                    break
                writer.write(answer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], requests


async def test_the_status_connection_reads_answers_by_length_chunks_and_close() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n" + b'{"status":"received"}',
        b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n4;x\r\nabcd\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"HTTP/1.1 401 X\r\nContent-Length: 0\r\n\r\n",
        b"",  # the kept-alive connection dropped unanswered: once more on a new one
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ]
    server, port, requests = await _serve(answers)
    connection = Connection("127.0.0.1", port)
    request = b"POST /webhook/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    assert [await connection.post(request) for _ in range(5)] == [200, 503, 200, 401, 200]
    assert len(requests) == 6
    connection.close()
    server.close()
    with pytest.raises(StatusPostError):
        await Connection("127.0.0.1", port).post(request)


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
