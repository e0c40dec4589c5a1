"""Where signed webhooks may go: public internet addresses, and the networks the office
names in ``ADMINDUK_WEBHOOK_ALLOWED_NETWORKS``.

An admin registers a webhook's URL, and the integrations process POSTs to it from inside
the office's network, where the database, NATS, the officer API and a cloud's metadata
service answer on loopback, private and link-local addresses. So every address a URL's
host resolves to is checked twice: when the URL is registered (a refusal the admin sees at
once), and when a delivery connects (:class:`GuardedBackend`, on the very address the
socket connects to, so a name that resolves elsewhere later, or differently the second
time, reaches nothing internal either).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Final

import httpcore

from shared.config import Settings

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

SETTING: Final = "ADMINDUK_WEBHOOK_ALLOWED_NETWORKS"


class RefusedDestinationError(httpcore.ConnectError):
    """A delivery would connect to an address webhooks may not reach (httpx reports it as
    a ``ConnectError``: the attempt fails and is retried like a refused connection)."""


def _kind(address: Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    return "non-public"


@dataclass(frozen=True)
class Destinations:
    """The addresses webhooks may reach: public ones, and ``allowed`` networks."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Destinations:
        return cls(tuple(settings.webhook_allowed_networks))

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached (``None``: it may), in words without it."""
        ip = ip_address(address.split("%", 1)[0])
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed):
            return None
        if ip.is_global and not ip.is_multicast:
            return None
        return (
            f"a {_kind(ip)} address; webhooks go to public addresses only, unless {SETTING} "
            "names its network"
        )

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to (an address stays itself)."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def first_refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                return f"{host} resolves to {why}"
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses :class:`Destinations`
    allows: the host is resolved here, every address checked, and the socket connected to
    a checked address (TLS still verifies the certificate for the host's name)."""

    def __init__(
        self, destinations: Destinations, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._destinations = destinations
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._destinations.resolve(host, port)
        except (OSError, TimeoutError) as error:
            raise httpcore.ConnectError(f"{host} does not resolve ({error})") from error
        why = self._destinations.first_refusal(host, addresses)
        if why is not None:
            raise RefusedDestinationError(why)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedDestinationError("webhooks are not delivered over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
