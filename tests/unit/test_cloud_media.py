"""The Cloud API client's media steps refuse what an attacker could steer: a media id that is
not Meta's (a path into another API of the same host) and a download URL on a host that is
neither Meta's media host nor the configured Cloud API (the bearer token would go there).
The Cloud API itself is faked (it is outside the system)."""

from __future__ import annotations

import httpx
import pytest

from shared.config import Environment, Settings
from shared.whatsapp.client import (
    META_MEDIA_HOSTS,
    CloudApiClient,
    CloudApiError,
    MediaRefusedError,
)

TOKEN = "office-access-token"
MEDIA_ID = "1037543291543636"


class FakeCloud:
    """Answers every request with a tiny body and remembers what was asked."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith(f"/{MEDIA_ID}"):
            return httpx.Response(200, json={"url": "https://lookaside.fbsbx.com/x?mid=1"})
        return httpx.Response(200, content=b"bytes")


def client(cloud: FakeCloud, base: str, *, https_only: bool = False) -> CloudApiClient:
    return CloudApiClient(
        base, TOKEN, "109876543210", transport=httpx.MockTransport(cloud), https_only=https_only
    )


@pytest.mark.parametrize(
    "media_id",
    [
        "../simulator/api/conversations",
        "..%2Fsimulator%2Fapi%2Fconversations",
        "123/../../v21.0/109876543210/messages",
        "123?fields=x",
        "123#x",
        "",
        "1" * 40,
        "١٢٣",  # Arabic-Indic digits: ``str.isdigit`` says yes, Meta's ids are ASCII
        "123\n",
        "12 3",
    ],
)
async def test_a_media_id_outside_metas_alphabet_is_refused_before_any_request(
    media_id: str,
) -> None:
    cloud = FakeCloud()
    async with client(cloud, "https://graph.facebook.com/v21.0") as api:
        with pytest.raises(MediaRefusedError) as refused:
            await api.media_info(media_id)
    assert cloud.requests == []
    assert not refused.value.retryable
    assert media_id not in str(refused.value) or media_id == ""


async def test_a_media_id_of_digits_is_looked_up_on_the_cloud_api() -> None:
    cloud = FakeCloud()
    async with client(cloud, "https://graph.facebook.com/v21.0") as api:
        info = await api.media_info(MEDIA_ID)
    assert info.url.startswith("https://lookaside.fbsbx.com/")
    assert [str(r.url) for r in cloud.requests] == [f"https://graph.facebook.com/v21.0/{MEDIA_ID}"]


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/steal",
        "https://lookaside.fbsbx.com.attacker.example/x",
        "https://attacker.example/lookaside.fbsbx.com/x",
        "https://user@attacker.example/x",
        "https://graph.facebook.com:8443/x",  # the Cloud API's host, another port
        "http://127.0.0.1:8002/simulator/media/t",  # the simulator, not configured here
        "file:///etc/passwd",
        "not a url",
    ],
)
async def test_a_download_url_on_another_host_never_gets_the_token(url: str) -> None:
    cloud = FakeCloud()
    async with client(cloud, "https://graph.facebook.com/v21.0") as api:
        with pytest.raises(MediaRefusedError) as refused:
            await api.download(url, max_bytes=100)
    assert cloud.requests == []
    assert not refused.value.retryable


async def test_downloads_come_from_metas_media_host_or_the_configured_cloud_api() -> None:
    cloud = FakeCloud()
    async with client(cloud, "http://127.0.0.1:8002/v21.0") as api:  # the simulator
        for host in META_MEDIA_HOSTS:
            assert await api.download(f"https://{host}/whatsapp_business/a/?mid=1", max_bytes=9)
        assert await api.download("http://127.0.0.1:8002/simulator/media/t", max_bytes=9)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in cloud.requests)
    assert len(cloud.requests) == len(META_MEDIA_HOSTS) + 1


async def test_https_only_refuses_plain_http_even_on_an_allowed_host() -> None:
    cloud = FakeCloud()
    async with client(cloud, "http://127.0.0.1:8002/v21.0", https_only=True) as api:
        with pytest.raises(MediaRefusedError):
            await api.download("http://127.0.0.1:8002/simulator/media/t", max_bytes=9)
        with pytest.raises(MediaRefusedError):
            await api.download("http://lookaside.fbsbx.com/x?mid=1", max_bytes=9)
        assert await api.download("https://lookaside.fbsbx.com/x?mid=1", max_bytes=9)
    assert [r.url.host for r in cloud.requests] == ["lookaside.fbsbx.com"]


@pytest.mark.parametrize(
    ("environment", "https_only"),
    [(Environment.PRODUCTION, True), (Environment.DEVELOPMENT, False)],
)
async def test_production_fetches_media_over_https_only(
    environment: Environment, https_only: bool
) -> None:
    # Constructed without validation: what production refuses besides is not this test's.
    settings = Settings.model_construct(
        environment=environment, whatsapp_api_base_url="http://127.0.0.1:9/v21.0"
    )
    async with CloudApiClient.from_settings(settings) as api:
        refused = False
        try:
            await api.download("http://127.0.0.1:9/simulator/media/t", max_bytes=9)
        except MediaRefusedError:
            refused = True
        except CloudApiError:  # allowed, and then nobody answers on port 9
            refused = False
    assert refused is https_only
