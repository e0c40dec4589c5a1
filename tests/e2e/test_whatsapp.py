"""A citizen's WhatsApp conversation with the whole running system, from outside.

With ``WHATSAPP_API_BASE_URL`` pointed at a fake Cloud API (the simulator, run as a
separate process), the test signs webhooks itself and reads what the office sent; without
it, the runtime's own simulator carries the conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.runtime.processes import free_port, wait_for_port
from shared.whatsapp.webhook import signature
from tests.e2e.harness import PROJECT, Runtime, embedded_dsn
from tests.support import text_webhook

pytestmark = pytest.mark.e2e

APP_SECRET = "e2e-app-secret"
PHONE = "6281234567890"
KTP = "#KTP#3603015708990001#3603012001180003#SITI AMINAH#SENTUL#BALARAJA#PEMULA#"
TICKET = re.compile(r"Nomor tiket: ([A-Z0-9-]{6,24})")
# A tiny real JPEG header is enough for the type check; the bytes are what count.
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8


def webhook(text: str, message_id: str, phone: str = PHONE) -> dict[str, Any]:
    return text_webhook(phone, message_id, text)


class FakeCloudApi:
    """The simulator as an external process: the Cloud API the runtime talks to."""

    def __init__(self, tmp_path: Path, intake_port: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ADMINDUK_DATA_DIR": str(tmp_path / "fake-cloud"),
            "ADMINDUK_SIMULATOR_PORT": str(self.port),
            "ADMINDUK_INTAKE_PORT": str(intake_port),
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "OTEL_TRACES_EXPORTER": "none",
            # The tests post their webhooks to intake themselves: the fake never sees the
            # citizens write, so it cannot know their 24-hour windows.
            "ADMINDUK_SIMULATOR_SERVICE_WINDOW": "false",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adminduk", "serve", "simulator"],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port, 30)

    def outbox(self, phone: str = PHONE) -> list[str]:
        """Texts the office sent to ``phone``, oldest first."""
        answer = httpx.get(f"{self.base}/simulator/api/conversations/{phone}", timeout=5)
        answer.raise_for_status()
        return [
            item.get("text") or ""
            for item in answer.json()["messages"]
            if item.get("direction") == "out"
        ]

    def wait_for_reply(self, predicate: Any, timeout: float = 30.0, phone: str = PHONE) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.outbox(phone):
                if predicate(text):
                    return text
            time.sleep(0.05)
        raise AssertionError(f"no such reply; the office sent: {self.outbox(phone)}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[Runtime, FakeCloudApi]]:
    intake_port = free_port()
    fake = FakeCloudApi(tmp_path, intake_port)
    runtime = Runtime(
        tmp_path / "data",
        {
            "WHATSAPP_API_BASE_URL": f"{fake.base}/v21.0",
            "WHATSAPP_APP_SECRET": APP_SECRET,
        },
    )
    runtime.intake_port = intake_port
    runtime.env["ADMINDUK_INTAKE_PORT"] = str(intake_port)
    runtime.start()
    try:
        runtime.wait_until_serving()
        yield runtime, fake
    finally:
        if runtime.process is not None and runtime.process.poll() is None:
            runtime.stop()
        fake.stop()


def post(runtime: Runtime, body: bytes, secret: str = APP_SECRET) -> int:
    answer = httpx.post(
        f"http://127.0.0.1:{runtime.intake_port}/webhook/whatsapp",
        content=body,
        headers={"X-Hub-Signature-256": signature(body, secret)},
        timeout=10,
    )
    return answer.status_code


def test_a_request_gets_one_ticket_its_status_and_mistakes_an_explanation(
    system: tuple[Runtime, FakeCloudApi],
) -> None:
    runtime, fake = system
    body = json.dumps(webhook(KTP, "wamid.E2E-KTP-1")).encode()

    started = time.monotonic()
    assert post(runtime, body) == 200
    reply = fake.wait_for_reply(lambda text: "Nomor tiket:" in text)
    print(f"acknowledgement after {time.monotonic() - started:.2f}s")
    match = TICKET.search(reply)
    assert match is not None
    ticket = match[1]
    assert ticket.startswith("KTP-")

    # Delivered twice more (Meta retries): still one acknowledgement.
    assert post(runtime, body) == 200
    assert post(runtime, body) == 200
    # A wrong signature is refused and changes nothing.
    forged = json.dumps(webhook(KTP, "wamid.E2E-KTP-FORGED")).encode()
    assert post(runtime, forged, secret="not-the-app-secret") == 401

    assert post(runtime, json.dumps(webhook(f"#STATUS#{ticket}", "wamid.E2E-ST")).encode()) == 200
    status = fake.wait_for_reply(lambda text: f"Status tiket {ticket}: DITERIMA" in text)
    assert "DITERIMA" in status

    short_nik = KTP.replace("3603015708990001", "36030157089900")
    assert post(runtime, json.dumps(webhook(short_nik, "wamid.E2E-BAD")).encode()) == 200
    explanation = fake.wait_for_reply(lambda text: "16 angka" in text)
    assert "#KTP#NIK#NO_KK#NAMA#DESA#KECAMATAN#PEMULA/HILANG/RUSAK#" in explanation
    assert "Nomor tiket" not in explanation

    acknowledgements = [text for text in fake.outbox() if "Nomor tiket:" in text]
    assert len(acknowledgements) == 1, acknowledgements


def test_a_photo_with_the_request_as_caption_is_downloaded_and_linked(
    system: tuple[Runtime, FakeCloudApi],
) -> None:
    runtime, fake = system
    sent = httpx.post(
        f"{fake.base}/simulator/api/messages",
        data={"from": PHONE, "caption": KTP.replace("SITI AMINAH", "SITI RAHMA")},
        files={"file": ("ktp.jpg", PHOTO, "image/jpeg")},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["webhook_status"] == 200
    reply = fake.wait_for_reply(lambda text: "Nomor tiket:" in text)
    assert "Berkas yang sudah kami terima: 1." in reply
    match = TICKET.search(reply)
    assert match is not None

    digest = hashlib.sha256(PHOTO).hexdigest()
    stored = runtime.data_dir / "media" / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == PHOTO
    dsn = embedded_dsn(runtime.data_dir)

    async def attachments() -> list[str]:
        connection = await asyncpg.connect(dsn)
        try:
            data = await connection.fetchval(
                "SELECT data FROM events WHERE stream_id = $1 AND event_type = 'RequestReceived'",
                f"request-{match[1]}",
            )
        finally:
            await connection.close()
        return [item["sha256"] for item in json.loads(data)["attachments"]]

    assert asyncio.run(attachments()) == [digest]


def test_without_a_cloud_api_the_built_in_simulator_carries_the_conversation(
    tmp_path: Path,
) -> None:
    runtime = Runtime(tmp_path / "data")
    runtime.start()
    try:
        runtime.wait_until_serving()
        simulator = f"http://127.0.0.1:{runtime.env['ADMINDUK_SIMULATOR_PORT']}"
        assert httpx.get(simulator + "/", timeout=5).status_code == 200
        sent = httpx.post(
            f"{simulator}/simulator/api/messages", json={"from": PHONE, "text": KTP}, timeout=10
        )
        assert sent.json()["webhook_status"] == 200
        deadline = time.monotonic() + 30
        texts: list[str] = []
        while time.monotonic() < deadline:
            conversation = httpx.get(
                f"{simulator}/simulator/api/conversations/{PHONE}", timeout=5
            ).json()
            texts = [
                m.get("text") or "" for m in conversation["messages"] if m["direction"] == "out"
            ]
            if any("Nomor tiket:" in text for text in texts):
                break
            time.sleep(0.1)
        assert any("Nomor tiket:" in text for text in texts), texts
    finally:
        runtime.stop()
