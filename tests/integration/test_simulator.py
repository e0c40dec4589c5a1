"""The WhatsApp simulator over real HTTP, with a fake intake that checks every signature."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from services.notify.domain.templates import TemplateSpec
from services.simulator.app import create_app, simulator_of
from services.simulator.main import run
from services.simulator.state import Simulator
from shared.config import Settings, load_settings
from shared.runtime.processes import free_port
from shared.runtime.service import serve_http

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
TOKEN = "test-access-token"
SECRET = "test-app-secret"
PHONE_NUMBER_ID = "109876543210"
CITIZEN = "6281234567890"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\r\n--x\r\n\xff\xd9"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
DAY = 24 * 3600

# Approved templates as the notify catalogue describes them, by approved name (an office
# may have registered a catalogue entry under another name).
STATUS_TEMPLATE = TemplateSpec(
    key="request-status",
    name="status_permohonan",
    body="Tiket {{1}} berstatus {{2}}. Balas #STATUS#{{1}} untuk rinciannya.",
    parameters=("tiket", "status"),
)
LETTER_TEMPLATE = TemplateSpec(
    key="letter",
    name="surat_siap",
    body="Surat untuk tiket {{1}} terlampir.",
    parameters=("tiket",),
    document_header=True,
)
TEMPLATES = {"status_permohonan": STATUS_TEMPLATE, "surat_pindah_v2": LETTER_TEMPLATE}


class Clock:
    """A clock the test moves forward; the simulator reads it for timestamps and expiry."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class FakeIntake:
    """Records webhooks; answers 401 to a bad signature, else ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.rejected = 0
        self.status = 200
        self.app = FastAPI()

        @self.app.post("/webhook/whatsapp")
        async def webhook(request: Request) -> Response:
            raw = await request.body()
            expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            given = request.headers.get("x-hub-signature-256", "")
            if not hmac.compare_digest(given, expected):
                self.rejected += 1
                return Response(status_code=401)
            self.raw.append(raw)
            self.bodies.append(json.loads(raw))
            return Response(status_code=self.status)

        @self.app.get("/healthz")
        async def health() -> Response:
            return Response("ok")

    def values(self) -> list[dict[str, Any]]:
        return [
            change["value"]
            for body in self.bodies
            for entry in body["entry"]
            for change in entry["changes"]
        ]

    def messages(self) -> list[dict[str, Any]]:
        return [message for value in self.values() for message in value.get("messages", [])]

    def statuses(self, message_id: str | None = None) -> list[dict[str, Any]]:
        return [
            item
            for value in self.values()
            for item in value.get("statuses", [])
            if message_id is None or item["id"] == message_id
        ]

    async def wait_for_statuses(self, message_id: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 5
        while len(self.statuses(message_id)) < count:
            assert time.monotonic() < deadline, self.statuses(message_id)
            await asyncio.sleep(0.02)
        return self.statuses(message_id)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_http(app, HOST, port, stop))
    base = f"http://{HOST}:{port}"
    await wait_until_up(base)
    try:
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def wait_until_up(base: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(250):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.02)
    raise AssertionError(f"{base} did not come up")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "host": HOST,
        "data_dir": tmp_path,
        "whatsapp_access_token": TOKEN,
        "whatsapp_app_secret": SECRET,
        "whatsapp_phone_number_id": PHONE_NUMBER_ID,
    }
    return load_settings(**(values | overrides))


@dataclass
class Harness:
    client: httpx.AsyncClient
    base: str
    intake: FakeIntake
    simulator: Simulator
    clock: Clock
    settings: Settings

    async def send(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.client.post(f"/v21.0/{PHONE_NUMBER_ID}/messages", json=body, **kwargs)

    async def citizen_text(self, text: str, phone: str = CITIZEN) -> dict[str, Any]:
        response = await self.client.post(
            "/simulator/api/messages", json={"from": phone, "text": text, "name": "Warga"}
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def conversation(self, phone: str = CITIZEN) -> list[dict[str, Any]]:
        return list((await self.chat(phone))["messages"])

    async def chat(self, phone: str = CITIZEN) -> dict[str, Any]:
        response = await self.client.get(f"/simulator/api/conversations/{phone}")
        assert response.status_code == 200
        chat: dict[str, Any] = response.json()
        return chat

    async def sent(self, body: dict[str, Any]) -> str:
        """Send ``body`` (must be accepted); its wamid."""
        response = await self.send(body, headers=AUTH)
        assert response.status_code == 200, response.text
        wamid: str = response.json()["messages"][0]["id"]
        return wamid

    async def upload_pdf(self, data: bytes = PDF, filename: str = "surat.pdf") -> str:
        response = await self.client.post(
            f"/v21.0/{PHONE_NUMBER_ID}/media",
            headers=AUTH,
            data={"messaging_product": "whatsapp", "type": "application/pdf"},
            files={"file": (filename, data, "application/pdf")},
        )
        assert response.status_code == 200, response.text
        media_id: str = response.json()["id"]
        return media_id


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, *, intake_url: str | None = None, **options: Any
) -> AsyncIterator[Harness]:
    intake = FakeIntake()
    clock = Clock()
    options.setdefault("status_delay", 0.05)
    async with serving(intake.app) as intake_base:
        settings = make_settings(tmp_path)
        app = create_app(
            settings,
            intake_webhook_url=intake_url or f"{intake_base}/webhook/whatsapp",
            clock=clock,
            **options,
        )
        try:
            async with (
                serving(app) as base,
                httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as client,
            ):
                yield Harness(client, base, intake, simulator_of(app), clock, settings)
        finally:
            await simulator_of(app).aclose()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as h:
        yield h


def text_message(body: str, to: str = CITIZEN) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": body},
    }


def buttons_message(titles: list[str]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": CITIZEN,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Konfirmasi"},
            "body": {"text": "Apakah data ini benar?"},
            "footer": {"text": "Disdukcapil"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{i}", "title": title}}
                    for i, title in enumerate(titles)
                ]
            },
        },
    }


def list_message(rows: int) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": CITIZEN,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Pilih layanan"},
            "action": {
                "button": "Layanan",
                "sections": [
                    {
                        "title": "Dokumen",
                        "rows": [
                            {"id": f"svc:{i}", "title": f"Layanan {i}", "description": "d"}
                            for i in range(rows)
                        ],
                    }
                ],
            },
        },
    }


def template_message(
    name: str = "status_permohonan",
    parameters: tuple[str, ...] = ("KTP-7Q2M9X", "SIAP DIAMBIL"),
    *,
    language: str = "id",
    header: dict[str, Any] | None = None,
) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    if header is not None:
        components.append({"type": "header", "parameters": [header]})
    if parameters:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        )
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "to": CITIZEN,
        "type": "template",
        "template": template,
    }


def letter_message(document: dict[str, Any] | None) -> dict[str, Any]:
    header = {"type": "document", "document": document} if document is not None else None
    return template_message("surat_pindah_v2", ("SKPWNI-4K7P2Q",), header=header)


def assert_cloud_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and isinstance(error["fbtrace_id"], str)
    return error


# --- citizen to office --------------------------------------------------------------------


async def test_citizen_text_becomes_a_signed_cloud_api_webhook(sim: Harness) -> None:
    text = "#KTP#3603015708990001#Ibu Süti 😀"
    before = int(time.time())
    response = await sim.client.post(
        "/simulator/api/messages", json={"from": CITIZEN, "text": text, "name": "Siti"}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["webhook_status"] == 200
    assert sim.intake.rejected == 0
    assert len(sim.intake.bodies) == 1
    # Non-ASCII is escaped, as Meta does: only the raw bytes verify.
    assert b"\\u00fc" in sim.intake.raw[0]

    body = sim.intake.bodies[0]
    assert body["object"] == "whatsapp_business_account"
    (entry,) = body["entry"]
    assert isinstance(entry["id"], str) and entry["id"]
    (change,) = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert value["metadata"]["display_phone_number"].isdigit()
    assert value["contacts"] == [{"profile": {"name": "Siti"}, "wa_id": CITIZEN}]
    (message,) = value["messages"]
    assert message["from"] == CITIZEN
    assert message["id"] == answer["message_id"]
    assert message["id"].startswith("wamid.")
    assert message["timestamp"].isdigit()
    assert before <= int(message["timestamp"]) <= time.time() + 1
    assert message["type"] == "text"
    assert message["text"] == {"body": text}

    (item,) = await sim.conversation()
    assert item["direction"] == "in"
    assert item["type"] == "text"
    assert item["text"] == text
    assert item["id"] == message["id"]
    assert item["webhook_status"] == 200

    second = await sim.citizen_text("lagi")
    assert second["message_id"] != answer["message_id"]


async def test_citizen_message_validation(sim: Harness) -> None:
    bad = [
        {"from": "12ab", "text": "halo"},
        {"from": CITIZEN, "text": ""},
        {"from": CITIZEN, "text": "x" * 4097},
    ]
    for body in bad:
        response = await sim.client.post("/simulator/api/messages", json=body)
        assert response.status_code == 422, body
    response = await sim.client.post(
        "/simulator/api/messages",
        data={"from": CITIZEN},
        files={"file": ("notes.txt", b"just text", "text/plain")},
    )
    assert response.status_code == 415
    assert sim.intake.bodies == []
    assert await sim.conversation() == []


async def test_image_with_caption_and_two_step_media_download(sim: Harness) -> None:
    caption = "#KIA#3603011205180002#3603012001180003#RAFI PRATAMA#SENTUL#BALARAJA"
    response = await sim.client.post(
        "/simulator/api/messages",
        data={"from": CITIZEN, "caption": caption, "name": "Warga"},
        files={"file": ("akta.jpg", JPEG, "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["webhook_status"] == 200
    (message,) = sim.intake.messages()
    assert message["type"] == "image"
    image = message["image"]
    digest = hashlib.sha256(JPEG).hexdigest()
    assert image["caption"] == caption
    assert image["mime_type"] == "image/jpeg"
    assert image["sha256"] == digest
    media_id = image["id"]
    assert media_id == response.json()["media_id"]

    lookup = await sim.client.get(f"/v21.0/{media_id}", headers=AUTH)
    assert lookup.status_code == 200
    meta = lookup.json()
    assert meta["messaging_product"] == "whatsapp"
    assert meta["id"] == media_id
    assert meta["mime_type"] == "image/jpeg"
    assert meta["sha256"] == digest
    assert int(meta["file_size"]) == len(JPEG)
    assert meta["url"].startswith(sim.base + "/")

    # The URL is absolute: fetched with a client that has no base URL.
    async with httpx.AsyncClient(trust_env=False) as plain:
        download = await plain.get(meta["url"], headers=AUTH)
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/jpeg"
        assert download.content == JPEG
        assert hashlib.sha256(download.content).hexdigest() == meta["sha256"]

        wrong = {"Authorization": "Bearer nope"}
        assert_cloud_error(await plain.get(meta["url"], headers=wrong), 401, 190)
        assert_cloud_error(await plain.get(meta["url"]), 401, 190)
        assert (await plain.get(meta["url"] + "x", headers=AUTH)).status_code == 404

        # Valid for five minutes only.
        sim.clock.offset += 301
        assert (await plain.get(meta["url"], headers=AUTH)).status_code == 404
    fresh = (await sim.client.get(f"/v21.0/{media_id}", headers=AUTH)).json()
    assert fresh["url"] != meta["url"]
    assert (await sim.client.get(fresh["url"], headers=AUTH)).content == JPEG

    assert_cloud_error(
        await sim.client.get(f"/v21.0/{media_id}", headers={"Authorization": "Bearer x"}),
        401,
        190,
    )
    assert_cloud_error(await sim.client.get(f"/v21.0/{media_id}"), 401, 190)
    assert (await sim.client.get("/v21.0/999999", headers=AUTH)).status_code == 404
    assert (await sim.client.get(f"/v19.0/{media_id}", headers=AUTH)).status_code == 200

    (item,) = await sim.conversation()
    assert item["type"] == "image"
    assert item["text"] == caption
    assert item["media"]["id"] == media_id
    page_copy = await sim.client.get(item["media"]["url"])
    assert page_copy.content == JPEG


async def test_pdf_document_from_the_citizen(sim: Harness) -> None:
    response = await sim.client.post(
        "/simulator/api/messages",
        data={"from": CITIZEN},
        files={"file": ("kk.pdf", PDF, "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    (message,) = sim.intake.messages()
    assert message["type"] == "document"
    document = message["document"]
    assert document["filename"] == "kk.pdf"
    assert document["mime_type"] == "application/pdf"
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert "caption" not in document
    meta = (await sim.client.get(f"/v21.0/{document['id']}", headers=AUTH)).json()
    download = await sim.client.get(meta["url"], headers=AUTH)
    assert download.headers["content-type"] == "application/pdf"
    assert download.content == PDF


# --- office to citizen --------------------------------------------------------------------


async def test_send_requires_the_token_and_a_known_number(sim: Harness) -> None:
    body = text_message("halo")
    assert_cloud_error(await sim.send(body), 401, 190)
    error = assert_cloud_error(
        await sim.send(body, headers={"Authorization": "Bearer wrong"}), 401, 190
    )
    assert error["type"] == "OAuthException"
    assert_cloud_error(
        await sim.client.post("/v21.0/555/messages", json=body, headers=AUTH), 400, 100
    )
    response = await sim.client.post(f"/latest/{PHONE_NUMBER_ID}/messages", json=body, headers=AUTH)
    assert response.status_code == 400
    assert (await sim.client.get("/simulator/api/outbox")).json() == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (buttons_message(["Ya", "Tidak", "Nanti", "Batal"]), "buttons"),
        (buttons_message(["Ya, data saya sudah benar"]), "title"),
        (buttons_message(["Sama", "Sama"]), "unique"),
        (list_message(11), "rows"),
        (text_message(""), "text['body']"),
        (text_message("x" * 4097), "text['body']"),
        (text_message("halo") | {"messaging_product": "sms"}, "messaging_product"),
        (text_message("halo") | {"type": "sticker"}, "type"),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, "to"),
        (
            {"messaging_product": "whatsapp", "to": CITIZEN, "type": "template"}
            | {"template": {"name": "status_permohonan"}},
            "language",
        ),
        (
            {"messaging_product": "whatsapp", "to": CITIZEN, "type": "document"}
            | {"document": {"id": "424242"}},
            "document['id']",
        ),
    ],
)
async def test_send_validates_like_the_cloud_api(
    sim: Harness, body: dict[str, Any], fragment: str
) -> None:
    error = assert_cloud_error(await sim.send(body, headers=AUTH), 400, 100)
    assert fragment in error["error_data"]["details"]
    assert (await sim.client.get("/simulator/api/outbox")).json() == []


async def test_media_upload_validates_like_the_cloud_api(sim: Harness) -> None:
    url = f"/v21.0/{PHONE_NUMBER_ID}/media"
    fields = {"messaging_product": "whatsapp", "type": "application/pdf"}
    pdf = {"file": ("surat.pdf", PDF, "application/pdf")}
    bad: list[dict[str, Any]] = [
        {"json": fields},  # not multipart
        {"data": {"type": "application/pdf"}, "files": pdf},  # no messaging_product
        {"data": fields},  # no file
        {"data": {"messaging_product": "whatsapp"}, "files": {"file": ("x", b"x", "")}},
        {  # no boundary
            "content": b"--b\r\n\r\n--b--\r\n",
            "headers": {"Content-Type": "multipart/form-data"},
        },
        {  # a part without a name
            "content": b'--b\r\nContent-Disposition: form-data; filename="a"\r\n\r\nx\r\n--b--\r\n',
            "headers": {"Content-Type": "multipart/form-data; boundary=b"},
        },
    ]
    for request in bad:
        request["headers"] = AUTH | request.get("headers", {})
        assert_cloud_error(await sim.client.post(url, **request), 400, 100)
    malformed = await sim.client.post(
        "/simulator/api/messages",
        content=b"--b\r\n\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert malformed.status_code == 400
    assert sim.intake.bodies == []


async def test_sent_messages_are_recorded_in_conversation_and_outbox(sim: Harness) -> None:
    letter = b"%PDF-1.7\nsurat keterangan\n%%EOF\n"
    upload = await sim.client.post(
        f"/v21.0/{PHONE_NUMBER_ID}/media",
        headers=AUTH,
        data={"messaging_product": "whatsapp", "type": "application/pdf"},
        files={"file": ("surat.pdf", letter, "application/pdf")},
    )
    assert upload.status_code == 200, upload.text
    letter_id = upload.json()["id"]
    document = {
        "messaging_product": "whatsapp",
        "to": CITIZEN,
        "type": "document",
        "document": {"id": letter_id, "filename": "SKPWNI.pdf", "caption": "Surat Anda"},
    }
    bodies = [
        text_message("Nomor tiket: KTP-7Q2M9X"),
        buttons_message(["Ya, benar", "Ubah"]),
        list_message(10),
        document,
        template_message(),
    ]
    ids = []
    for body in bodies:
        response = await sim.send(body, headers=AUTH)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["messaging_product"] == "whatsapp"
        assert answer["contacts"] == [{"input": CITIZEN, "wa_id": CITIZEN}]
        (sent,) = answer["messages"]
        assert sent["id"].startswith("wamid.")
        ids.append(sent["id"])
    assert len(set(ids)) == len(ids)

    conversation = await sim.conversation()
    assert [item["id"] for item in conversation] == ids
    assert all(item["direction"] == "out" for item in conversation)
    assert [item["type"] for item in conversation] == [
        "text",
        "interactive",
        "interactive",
        "document",
        "template",
    ]
    assert [item["payload"] for item in conversation] == bodies
    assert conversation[0]["text"] == "Nomor tiket: KTP-7Q2M9X"
    assert conversation[1]["text"] == "Apakah data ini benar?"
    assert conversation[3]["text"] == "Surat Anda"
    assert conversation[3]["media"]["filename"] == "SKPWNI.pdf"
    assert (await sim.client.get(conversation[3]["media"]["url"])).content == letter
    assert "KTP-7Q2M9X" in conversation[4]["text"]
    assert "status_permohonan" in conversation[4]["text"]

    outbox = (await sim.client.get("/simulator/api/outbox")).json()
    assert [item["id"] for item in outbox] == ids
    assert all(item["phone"] == CITIZEN for item in outbox)

    # "+62 ..." is the same citizen; the contact echoes the input.
    response = await sim.send(text_message("hai", to="+62 812-3456-7890"), headers=AUTH)
    assert response.json()["contacts"] == [{"input": "+62 812-3456-7890", "wa_id": CITIZEN}]
    assert len(await sim.conversation()) == 6

    assert (await sim.client.delete("/simulator/api/conversations")).status_code == 204
    assert await sim.conversation() == []
    assert (await sim.client.get("/simulator/api/outbox")).json() == []


async def test_button_and_list_replies_become_interactive_webhooks(sim: Harness) -> None:
    buttons = (await sim.send(buttons_message(["Ya, benar", "Ubah"]), headers=AUTH)).json()
    button_context = buttons["messages"][0]["id"]
    listing = (await sim.send(list_message(3), headers=AUTH)).json()
    list_context = listing["messages"][0]["id"]

    response = await sim.client.post(
        "/simulator/api/replies",
        json={
            "from": CITIZEN,
            "context_message_id": button_context,
            "button_reply": {"id": "b0", "title": "Ya, benar"},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["webhook_status"] == 200
    response = await sim.client.post(
        "/simulator/api/replies",
        json={
            "from": CITIZEN,
            "context_message_id": list_context,
            "list_reply": {"id": "svc:1", "title": "Layanan 1", "description": "d"},
        },
    )
    assert response.status_code == 200, response.text

    button, row = sim.intake.messages()
    assert button["type"] == "interactive"
    assert button["context"]["id"] == button_context
    assert button["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "b0", "title": "Ya, benar"},
    }
    assert row["context"]["id"] == list_context
    assert row["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "svc:1", "title": "Layanan 1", "description": "d"},
    }
    replies = [item for item in await sim.conversation() if item["direction"] == "in"]
    assert [item["text"] for item in replies] == ["Ya, benar", "Layanan 1"]
    assert [item["context_message_id"] for item in replies] == [button_context, list_context]

    both = {
        "from": CITIZEN,
        "context_message_id": list_context,
        "button_reply": {"id": "b0", "title": "Ya"},
        "list_reply": {"id": "svc:1", "title": "Layanan 1"},
    }
    assert (await sim.client.post("/simulator/api/replies", json=both)).status_code == 422


async def test_status_webhooks_follow_a_send_signed_and_in_order(tmp_path: Path) -> None:
    async with harness(tmp_path, status_delay=0.3) as sim:
        started = time.monotonic()
        response = await sim.send(text_message("Permohonan Anda kami terima."), headers=AUTH)
        assert response.status_code == 200
        assert time.monotonic() - started < 0.3  # the send does not wait for the statuses
        message_id = response.json()["messages"][0]["id"]
        assert sim.intake.statuses() == []
        statuses = await sim.intake.wait_for_statuses(message_id, 3)
        assert [item["status"] for item in statuses] == ["sent", "delivered", "read"]
        assert all(item["recipient_id"] == CITIZEN for item in statuses)
        assert all(item["timestamp"].isdigit() for item in statuses)
        assert sim.intake.rejected == 0
        for body in sim.intake.bodies:
            value = body["entry"][0]["changes"][0]["value"]
            assert body["object"] == "whatsapp_business_account"
            assert value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
            assert "messages" not in value
        (item,) = await sim.conversation()
        assert item["status"] == "read"
        assert [s["status"] for s in item["statuses"]] == ["sent", "delivered", "read"]
        assert all(s["webhook_status"] == 200 for s in item["statuses"])


async def test_statuses_can_be_switched_off(tmp_path: Path) -> None:
    async with harness(tmp_path, send_statuses=False) as sim:
        response = await sim.send(text_message("halo"), headers=AUTH)
        assert response.status_code == 200
        await asyncio.sleep(0.3)
        assert sim.intake.bodies == []
        (item,) = await sim.conversation()
        assert item["status"] == "accepted"


async def test_intake_down_or_failing_is_reported_not_fatal(tmp_path: Path) -> None:
    closed = f"http://{HOST}:{free_port()}/webhook/whatsapp"
    async with harness(tmp_path, intake_url=closed) as sim:
        answer = await sim.citizen_text("halo")
        assert answer["webhook_status"] is None
        response = await sim.send(text_message("balasan"), headers=AUTH)
        assert response.status_code == 200
        deadline = time.monotonic() + 5
        while (await sim.conversation())[-1]["status"] != "read":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        first, second = await sim.conversation()
        assert first["webhook_status"] is None
        assert [s["webhook_status"] for s in second["statuses"]] == [None, None, None]
        assert (await sim.client.get("/healthz")).status_code == 200

    async with harness(tmp_path) as sim:
        sim.intake.status = 500
        assert (await sim.citizen_text("halo"))["webhook_status"] == 500


async def test_callback_data_is_echoed_in_every_status_of_its_message(sim: Harness) -> None:
    tagged = await sim.sent(text_message("halo") | {"biz_opaque_callback_data": "notification:n1"})
    plain = await sim.sent(text_message("hai"))
    statuses = await sim.intake.wait_for_statuses(tagged, 3)
    assert [item["status"] for item in statuses] == ["sent", "delivered", "read"]
    assert all(item["biz_opaque_callback_data"] == "notification:n1" for item in statuses)
    plain_statuses = await sim.intake.wait_for_statuses(plain, 3)
    assert all("biz_opaque_callback_data" not in item for item in plain_statuses)
    first, second = await sim.conversation()
    assert first["biz_opaque_callback_data"] == "notification:n1"
    assert second["biz_opaque_callback_data"] is None

    longest = "x" * 512
    assert await sim.sent(text_message("a") | {"biz_opaque_callback_data": longest})
    for bad in ("x" * 513, 42):
        error = assert_cloud_error(
            await sim.send(text_message("b") | {"biz_opaque_callback_data": bad}, headers=AUTH),
            400,
            100,
        )
        assert "biz_opaque_callback_data" in error["error_data"]["details"]
    assert len(await sim.conversation()) == 3


@pytest.fixture
async def approved(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path, templates=TEMPLATES) as h:
        yield h


async def test_an_approved_template_is_recorded_as_the_citizen_reads_it(approved: Harness) -> None:
    sim = approved
    wamid = await sim.sent(template_message() | {"biz_opaque_callback_data": "notification:t"})
    letter_id = await sim.upload_pdf()
    letter = await sim.sent(letter_message({"id": letter_id, "filename": "SKPWNI.pdf"}))
    linked = await sim.sent(letter_message({"link": "https://example.org/surat.pdf"}))

    status, uploaded, by_link = await sim.conversation()
    assert status["id"] == wamid
    assert status["type"] == "template"
    assert status["template"] == "status_permohonan"
    assert status["text"] == (
        "Tiket KTP-7Q2M9X berstatus SIAP DIAMBIL. Balas #STATUS#KTP-7Q2M9X untuk rinciannya."
    )
    assert status["media"] is None
    assert status["biz_opaque_callback_data"] == "notification:t"
    statuses = await sim.intake.wait_for_statuses(wamid, 3)
    assert [item["status"] for item in statuses] == ["sent", "delivered", "read"]
    assert statuses[0]["pricing"]["category"] == "utility"
    assert all(item["biz_opaque_callback_data"] == "notification:t" for item in statuses)

    assert uploaded["id"] == letter
    assert uploaded["template"] == "surat_pindah_v2"
    assert uploaded["text"] == "Surat untuk tiket SKPWNI-4K7P2Q terlampir."
    assert uploaded["media"]["id"] == letter_id
    assert uploaded["media"]["filename"] == "SKPWNI.pdf"
    assert (await sim.client.get(uploaded["media"]["url"])).content == PDF
    assert by_link["id"] == linked
    assert by_link["media"]["url"] == "https://example.org/surat.pdf"


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (template_message("status_pengajuan"), 132001, "status_pengajuan"),
        (template_message(language="en"), 132001, "does not exist in en"),
        # The catalogue's key is not the approved name.
        (template_message("letter", ("SKPWNI-4K7P2Q",)), 132001, "letter"),
        (template_message(parameters=("KTP-7Q2M9X",)), 132000, "(1)"),
        (template_message(parameters=()), 132000, "(0)"),
        (template_message(parameters=("a", "b", "c")), 132000, "(3)"),
        (
            template_message(header={"type": "document", "document": {"link": "https://x.org/a"}}),
            132000,
            "header",
        ),
        (letter_message(None), 132012, "expected DOCUMENT"),
        (
            template_message(
                "surat_pindah_v2",
                ("SKPWNI-4K7P2Q",),
                header={"type": "image", "image": {"link": "https://example.org/a.jpg"}},
            ),
            132012,
            "received IMAGE",
        ),
        (letter_message({"filename": "surat.pdf"}), 132012, "DOCUMENT"),
        (letter_message({"id": "424242"}), 100, "media id"),
        (template_message(parameters=("KTP-7Q2M9X", "SIAP\nDIAMBIL")), 132018, "new-line"),
        (template_message(parameters=("KTP-7Q2M9X", "x" * 1000)), 132005, "at most 1024"),
    ],
)
async def test_templates_are_refused_as_meta_refuses_them(
    approved: Harness, body: dict[str, Any], code: int, fragment: str
) -> None:
    error = assert_cloud_error(await approved.send(body, headers=AUTH), 400, code)
    assert f"(#{code})" in error["message"]
    assert fragment in error["error_data"]["details"]
    assert await approved.conversation() == []
    await asyncio.sleep(0.1)
    assert approved.intake.bodies == []


async def test_the_window_refuses_free_form_after_24_hours_never_a_template(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, enforce_service_window=True, templates=TEMPLATES) as sim:
        # Never wrote: the window is shut.
        stale = await sim.sent(text_message("halo") | {"biz_opaque_callback_data": "n:0"})
        (failed,) = await sim.intake.wait_for_statuses(stale, 1)
        assert failed["status"] == "failed"
        assert failed["errors"][0]["code"] == 131047
        assert failed["biz_opaque_callback_data"] == "n:0"

        await sim.citizen_text("#MENU")
        assert (await sim.chat())["service_window_open"] is True
        fresh = await sim.sent(text_message("Menu"))
        assert (await sim.intake.wait_for_statuses(fresh, 1))[0]["status"] == "sent"

        # A minute short of 24 hours (timestamps are whole seconds): still open.
        sim.clock.offset += DAY - 60
        assert (await sim.chat())["service_window_open"] is True
        late = await sim.sent(text_message("masih boleh"))
        assert (await sim.intake.wait_for_statuses(late, 1))[0]["status"] == "sent"

        sim.clock.offset += 120
        assert (await sim.chat())["service_window_open"] is False
        letter_id = await sim.upload_pdf()
        free_form = [
            text_message("Status tiket"),
            buttons_message(["Ya, benar", "Ubah"]),
            list_message(3),
            {
                "messaging_product": "whatsapp",
                "to": CITIZEN,
                "type": "document",
                "document": {"id": letter_id, "filename": "surat.pdf", "caption": "Surat"},
            },
        ]
        for index, body in enumerate(free_form):
            tagged = body | {"biz_opaque_callback_data": f"n:{index + 1}"}
            wamid = await sim.sent(tagged)  # accepted, as on Meta...
            (failed,) = await sim.intake.wait_for_statuses(wamid, 1)  # ...then failed
            assert failed["status"] == "failed", body["type"]
            assert failed["errors"][0]["code"] == 131047
            assert failed["biz_opaque_callback_data"] == f"n:{index + 1}"
        template = await sim.sent(template_message())
        statuses = await sim.intake.wait_for_statuses(template, 3)
        assert [item["status"] for item in statuses] == ["sent", "delivered", "read"]
        letter = await sim.sent(letter_message({"id": letter_id, "filename": "surat.pdf"}))
        assert (await sim.intake.wait_for_statuses(letter, 1))[0]["status"] == "sent"

        outbound = [item for item in await sim.conversation() if item["direction"] == "out"]
        assert [item["status"] for item in outbound][-6:-2] == ["failed"] * 4
        assert [item["type"] for item in outbound][-2:] == ["template", "template"]
        assert all(len(item["statuses"]) == 1 for item in outbound[-6:-2])

        # The citizen writes again: the window reopens.
        await sim.citizen_text("halo lagi")
        again = await sim.sent(text_message("Silakan"))
        assert (await sim.intake.wait_for_statuses(again, 1))[0]["status"] == "sent"


async def test_a_backdated_message_opens_the_window_at_its_own_time(tmp_path: Path) -> None:
    async with harness(tmp_path, enforce_service_window=True) as sim:
        now = int(sim.clock())
        three_days_ago = now - 3 * DAY
        response = await sim.client.post(
            "/simulator/api/messages",
            json={"from": CITIZEN, "text": "#KTP#...", "sent_at": three_days_ago},
        )
        assert response.status_code == 200, response.text
        (message,) = sim.intake.messages()
        assert message["timestamp"] == str(three_days_ago)
        chat = await sim.chat()
        assert chat["last_inbound_at"] == three_days_ago
        assert chat["service_window_open"] is False
        assert chat["messages"][0]["timestamp"] == three_days_ago
        wamid = await sim.sent(text_message("Permohonan diterima"))
        assert (await sim.intake.wait_for_statuses(wamid, 1))[0]["status"] == "failed"
        template = await sim.sent(template_message())
        assert (await sim.intake.wait_for_statuses(template, 1))[0]["status"] == "sent"

        # A photo 23 hours old (multipart, sent_at as a form field) reopens it...
        response = await sim.client.post(
            "/simulator/api/messages",
            data={"from": CITIZEN, "sent_at": str(now - 23 * 3600)},
            files={"file": ("ktp.jpg", JPEG, "image/jpeg")},
        )
        assert response.status_code == 200, response.text
        assert sim.intake.messages()[-1]["timestamp"] == str(now - 23 * 3600)
        assert (await sim.chat())["last_inbound_at"] == now - 23 * 3600
        # ...and an older message arriving after it does not shorten it.
        listing = await sim.sent(list_message(2))
        reply = await sim.client.post(
            "/simulator/api/replies",
            json={
                "from": CITIZEN,
                "context_message_id": listing,
                "list_reply": {"id": "svc:0", "title": "Layanan 0"},
                "sent_at": now - 2 * DAY,
            },
        )
        assert reply.status_code == 200, reply.text
        assert sim.intake.messages()[-1]["timestamp"] == str(now - 2 * DAY)
        assert (await sim.chat())["last_inbound_at"] == now - 23 * 3600
        ok = await sim.sent(text_message("Terima kasih"))
        assert (await sim.intake.wait_for_statuses(ok, 1))[0]["status"] == "sent"

        delivered = len(sim.intake.messages())
        now = int(sim.clock())
        for sent_at in (now + 60, now - 7 * DAY - 60, "kemarin", 1.5, True):
            response = await sim.client.post(
                "/simulator/api/messages", json={"from": CITIZEN, "text": "x", "sent_at": sent_at}
            )
            assert response.status_code == 422, sent_at
        response = await sim.client.post(
            "/simulator/api/replies",
            json={
                "from": CITIZEN,
                "context_message_id": listing,
                "button_reply": {"id": "b0", "title": "Ya"},
                "sent_at": now + 60,
            },
        )
        assert response.status_code == 422
        assert len(sim.intake.messages()) == delivered
        # Seven days back is still a message Meta would deliver.
        week = await sim.client.post(
            "/simulator/api/messages",
            json={"from": CITIZEN, "text": "x", "sent_at": now - 7 * DAY + 5},
        )
        assert week.status_code == 200

        # Documented for both bodies the endpoint takes.
        spec = (await sim.client.get("/openapi.json")).json()
        content = spec["paths"]["/simulator/api/messages"]["post"]["requestBody"]["content"]
        for media_type in ("application/json", "multipart/form-data"):
            assert "sent_at" in content[media_type]["schema"]["properties"]


async def test_the_window_can_be_set_for_tests_that_post_their_own_webhooks(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, enforce_service_window=True) as sim:
        now = int(sim.clock())
        url = f"/simulator/api/conversations/{CITIZEN}/window"
        response = await sim.client.put(url, json={"last_inbound_at": now - 60})
        assert response.status_code == 200
        assert response.json()["service_window_open"] is True
        wamid = await sim.sent(text_message("Nomor tiket: KTP-7Q2M9X"))
        assert (await sim.intake.wait_for_statuses(wamid, 1))[0]["status"] == "sent"
        assert sim.intake.messages() == []

        assert (await sim.client.put(url, json={"last_inbound_at": None})).status_code == 200
        assert (await sim.chat())["service_window_open"] is False
        shut = await sim.sent(text_message("halo"))
        assert (await sim.intake.wait_for_statuses(shut, 1))[0]["status"] == "failed"
        future = await sim.client.put(url, json={"last_inbound_at": now + 3600})
        assert future.status_code == 422
        bad = "/simulator/api/conversations/12ab/window"
        assert (await sim.client.put(bad, json={"last_inbound_at": now})).status_code == 422


async def test_failure_injection_fails_the_next_sends_then_recovers(sim: Harness) -> None:
    response = await sim.client.post(
        "/simulator/api/failures", json={"count": 2, "status": 429, "code": 130429}
    )
    assert response.json() == {"pending": 2}
    for _ in range(2):
        error = assert_cloud_error(await sim.send(text_message("halo"), headers=AUTH), 429, 130429)
        assert "130429" in error["message"]
    assert (await sim.send(text_message("halo"), headers=AUTH)).status_code == 200

    await sim.client.post(
        "/simulator/api/failures", json={"count": 1, "status": 500, "code": 131000}
    )
    await sim.client.post(
        "/simulator/api/failures",
        json={"count": 1, "status": 400, "code": 131056, "message": "pair rate limit"},
    )
    assert (await sim.client.get("/simulator/api/failures")).json() == {"pending": 2}
    assert_cloud_error(await sim.send(text_message("a"), headers=AUTH), 500, 131000)
    error = assert_cloud_error(await sim.send(text_message("b"), headers=AUTH), 400, 131056)
    assert "pair rate limit" in error["message"]
    assert (await sim.send(text_message("c"), headers=AUTH)).status_code == 200
    assert (await sim.client.get("/simulator/api/failures")).json() == {"pending": 0}

    # An unauthenticated call does not use up an injected failure.
    await sim.client.post("/simulator/api/failures", json={"count": 1, "status": 503, "code": 2})
    assert_cloud_error(await sim.send(text_message("d")), 401, 190)
    assert_cloud_error(await sim.send(text_message("e"), headers=AUTH), 503, 2)
    assert len((await sim.client.get("/simulator/api/outbox")).json()) == 2

    bad = await sim.client.post("/simulator/api/failures", json={"count": 1, "status": 200})
    assert bad.status_code == 422


async def test_throttling_then_server_errors_fail_sends_only_and_record_nothing(
    sim: Harness,
) -> None:
    await sim.citizen_text("#MENU")
    for plan, pending in (
        ({"count": 50, "status": 429, "code": 130429}, 50),
        ({"count": 20, "status": 500, "code": 131000}, 70),
    ):
        response = await sim.client.post("/simulator/api/failures", json=plan)
        assert response.json() == {"pending": pending}

    # Media uploads and lookups are not sends: they work and use up nothing.
    media_id = await sim.upload_pdf()
    assert (await sim.client.get(f"/v21.0/{media_id}", headers=AUTH)).status_code == 200
    assert (await sim.client.get("/simulator/api/failures")).json() == {"pending": 70}

    callback = {"biz_opaque_callback_data": "notification:retry"}
    for _ in range(50):
        assert_cloud_error(await sim.send(text_message("a") | callback, headers=AUTH), 429, 130429)
    for _ in range(20):
        assert_cloud_error(await sim.send(template_message() | callback, headers=AUTH), 500, 131000)
    assert (await sim.client.get("/simulator/api/failures")).json() == {"pending": 0}
    wamid = await sim.sent(text_message("akhirnya") | callback)

    # A refused send got no wamid, no entry and no status: Meta sends nothing for it.
    inbound, outbound = await sim.conversation()
    assert inbound["direction"] == "in"
    assert outbound["id"] == wamid
    assert [item["id"] for item in (await sim.client.get("/simulator/api/outbox")).json()] == [
        wamid
    ]
    await sim.intake.wait_for_statuses(wamid, 3)
    await asyncio.sleep(0.2)
    assert {item["id"] for item in sim.intake.statuses()} == {wamid}


# --- the chat page ------------------------------------------------------------------------


async def test_chat_page_is_served_self_contained_with_test_hooks(sim: Harness) -> None:
    response = await sim.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for hook in (
        "phone",
        "name",
        "message-input",
        "send",
        "attach",
        "file-input",
        "messages",
        "message-in",
        "message-out",
        "reply-button",
        "list-row",
        "document-link",
        "ticks",
        "template",
        "template-name",
    ):
        assert f'"{hook}"' in page, hook
    assert 'value="6281234567890"' in page
    for label in ("Kirim", "Lampirkan", "Nomor WhatsApp"):
        assert label in page
    assert '<html lang="id">' in page
    # Offline: nothing loaded from elsewhere.
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)
    assert "@import" not in page

    # Rendering never parses message content as HTML...
    script = "".join(re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "textContent" in script and "createTextNode" in script
    # ...and the page's policy runs only its own inline script, so injected markup cannot.
    policy = response.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]


async def test_markup_in_messages_is_kept_as_text(sim: Harness) -> None:
    markup = '<img src=x onerror="alert(1)"><script>alert(2)</script>&amp;'
    await sim.citizen_text(markup)
    await sim.send(text_message(markup), headers=AUTH)
    inbound, outbound = await sim.conversation()
    assert inbound["text"] == markup
    assert outbound["text"] == markup
    assert outbound["payload"]["text"]["body"] == markup
    assert sim.intake.messages()[0]["text"]["body"] == markup


# --- the service process --------------------------------------------------------------------


def test_default_webhook_url_is_the_local_intake(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "0.0.0.0"):
        app = create_app(make_settings(tmp_path, host=host, intake_port=9123))
        assert simulator_of(app).intake_webhook_url == "http://127.0.0.1:9123/webhook/whatsapp"


async def test_run_serves_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, simulator_port=port, intake_port=free_port())
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop, templates={}))
    base = f"http://{HOST}:{port}"
    await wait_until_up(base)
    async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
        # Intake is not running: the message is kept and the failed webhook reported.
        response = await client.post(
            "/simulator/api/messages", json={"from": CITIZEN, "text": "halo"}
        )
        assert response.json()["webhook_status"] is None
        response = await client.post(
            f"/v21.0/{PHONE_NUMBER_ID}/messages", json=text_message("hai"), headers=AUTH
        )
        assert response.status_code == 200
        # The runtime's simulator is strict: only approved templates...
        unknown = template_message("no_such_template")
        response = await client.post(
            f"/v21.0/{PHONE_NUMBER_ID}/messages", json=unknown, headers=AUTH
        )
        assert_cloud_error(response, 400, 132001)
        # ...and free-form only inside the window: a citizen who never wrote gets nothing.
        stranger = "6281299990000"
        response = await client.post(
            f"/v21.0/{PHONE_NUMBER_ID}/messages", json=text_message("hai", stranger), headers=AUTH
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while True:
            chat = (await client.get(f"/simulator/api/conversations/{stranger}")).json()
            if chat["messages"][0]["status"] != "accepted":
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert chat["messages"][0]["status"] == "failed"
        assert chat["service_window_open"] is False
        assert (await client.get(f"/simulator/api/conversations/{CITIZEN}")).json()[
            "service_window_open"
        ]
    stop.set()
    await asyncio.wait_for(task, 10)
