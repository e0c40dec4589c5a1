"""Who may do what on NATS: two accounts, their users, and what crosses between them.

The services and both streams live in the account ``ADMINDUK`` (user ``adminduk``, no
restrictions). Integrators live in the account ``INTEGRATORS`` (user ``integrator``), which
holds nothing of its own and sees only what ``ADMINDUK`` exports to it:

* the live public subjects ``adminduk.public.>`` (a plain subscription receives them);
* the JetStream API calls that read ``ADMINDUK_PUBLIC`` with the integrator's own pull
  consumers (create, info, delete, next message, acknowledgement, get a message), which the
  integrator reaches under the API prefix ``$JS.adminduk.API``, that is JetStream domain
  ``adminduk`` in every client library.

Why accounts rather than one account with subject permissions: in one account a user who
may send any JetStream API request can name any subject as its reply, and the server then
publishes the response there, where ``ADMINDUK_EVENTS`` stores it; subject permissions do
not apply to reply subjects. Across accounts, responses travel back into the requester's
own account. It also makes ``_INBOX.>`` harmless to grant: the services' inboxes are in
their own account, so an integrator's ``_INBOX.>`` never sees their pull fetches.

The account ``INTEGRATORS`` has limits (connections, subscriptions, message size) so that
integrators together cannot exhaust the server; the public stream limits their consumers
(``services/integrations/publisher.py``).

The integrator's own permissions restate the boundary (subscribe: public subjects and its
inboxes; publish: the exported API calls only), so that anything else is refused with a
permissions violation rather than silently going nowhere.

:func:`accounts_config` renders the ``accounts { ... }`` block; the embedded server and
``deploy/nats-server.conf.example`` both use it (a unit test keeps the example in line).
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

from shared.bus.jetstream import ALL_PUBLIC, PUBLIC_STREAM_NAME

SERVICE_ACCOUNT: Final = "ADMINDUK"
INTEGRATOR_ACCOUNT: Final = "INTEGRATORS"
SERVICE_USER: Final = "adminduk"
INTEGRATOR_USER: Final = "integrator"

INTEGRATOR_MAX_CONNECTIONS: Final = 64
"""Connections of all integrators together (the account ``INTEGRATORS``)."""
INTEGRATOR_MAX_SUBSCRIPTIONS: Final = 1024
"""Subscriptions of all integrators together."""
INTEGRATOR_MAX_PAYLOAD: Final = 64 * 1024
"""The largest message an integrator may send: API requests and acknowledgements only."""

INTEGRATOR_JS_DOMAIN: Final = "adminduk"
"""Integrators' JetStream domain: their clients send API requests to ``$JS.adminduk.API``."""
INTEGRATOR_JS_PREFIX: Final = f"$JS.{INTEGRATOR_JS_DOMAIN}.API"
JS_API_PREFIX: Final = "$JS.API"

_STREAM: Final = PUBLIC_STREAM_NAME
PUBLIC_STREAM_API: Final = (
    # Client libraries look a stream up by subject, and some check JetStream is enabled.
    "INFO",
    "STREAM.NAMES",
    f"STREAM.INFO.{_STREAM}",
    # Consumers on ADMINDUK_PUBLIC only: ephemeral (legacy and named) and durable forms.
    f"CONSUMER.CREATE.{_STREAM}",
    f"CONSUMER.CREATE.{_STREAM}.>",
    f"CONSUMER.DURABLE.CREATE.{_STREAM}.*",
    f"CONSUMER.INFO.{_STREAM}.*",
    f"CONSUMER.DELETE.{_STREAM}.*",
    f"CONSUMER.MSG.NEXT.{_STREAM}.*",
    # Reading one message by sequence or last by subject.
    f"DIRECT.GET.{_STREAM}",
    f"DIRECT.GET.{_STREAM}.>",
    f"STREAM.MSG.GET.{_STREAM}",
)
"""JetStream API calls (after ``$JS.API.``) that ``ADMINDUK`` exports to integrators."""

_STREAMED_RESPONSES: Final = frozenset({f"CONSUMER.MSG.NEXT.{_STREAM}.*"})
"""Calls answered by several messages (a fetch of a batch), not one."""

PUBLIC_ACKS: Final = f"$JS.ACK.{_STREAM}.>"
"""Acknowledgements of messages delivered by consumers on ``ADMINDUK_PUBLIC``."""

INTEGRATOR_SUBSCRIBE: Final = (ALL_PUBLIC, "_INBOX.>")
INTEGRATOR_PUBLISH: Final = (
    *(f"{INTEGRATOR_JS_PREFIX}.{call}" for call in PUBLIC_STREAM_API),
    PUBLIC_ACKS,
)

# Placeholders of deploy/nats-server.conf.example: deliberately malformed bcrypt hashes, so
# a copy nobody filled in starts but lets no one log in.
EXAMPLE_SERVICE_PASSWORD: Final = "$2a$11$REPLACE.with.bcrypt.of.the.adminduk.password"  # noqa: S105
EXAMPLE_INTEGRATOR_PASSWORD: Final = "$2a$11$REPLACE.with.bcrypt.of.ADMINDUK_INTEGRATOR_PASSWORD"  # noqa: S105


def _string(value: str) -> str:
    """A double-quoted nats-server config string (taken literally: no variables)."""
    if any(ord(char) < 0x20 or char == "\x7f" for char in value):
        raise ValueError("a NATS config value may not contain control characters")
    # JSON's escapes for '"' and '\' are the config format's own.
    return json.dumps(value, ensure_ascii=False)


def _strings(values: tuple[str, ...], indent: str) -> str:
    """A list, one value a line."""
    lines = "".join(f"{indent}  {_string(value)}\n" for value in values)
    return f"[\n{lines}{indent}]"


def _exports() -> list[str]:
    to = f"accounts: [{INTEGRATOR_ACCOUNT}]"
    lines = [f"{{ stream: {_string(ALL_PUBLIC)}, {to} }}"]
    for call in PUBLIC_STREAM_API:
        response = ", response_type: stream" if call in _STREAMED_RESPONSES else ""
        lines.append(f"{{ service: {_string(f'{JS_API_PREFIX}.{call}')}{response}, {to} }}")
    lines.append(f"{{ service: {_string(PUBLIC_ACKS)}, {to} }}")
    return lines


def _imports() -> list[str]:
    source = f"account: {SERVICE_ACCOUNT}"
    lines = [f"{{ stream: {{ {source}, subject: {_string(ALL_PUBLIC)} }} }}"]
    for call in PUBLIC_STREAM_API:
        exported, local = f"{JS_API_PREFIX}.{call}", f"{INTEGRATOR_JS_PREFIX}.{call}"
        lines.append(
            f"{{ service: {{ {source}, subject: {_string(exported)} }}, to: {_string(local)} }}"
        )
    lines.append(f"{{ service: {{ {source}, subject: {_string(PUBLIC_ACKS)} }} }}")
    return lines


def accounts_config(*, service_password: str, integrator_password: str) -> str:
    """The ``accounts { ... }`` block of a nats-server config.

    Passwords are written as given: plain text (file mode 0600) for the embedded server,
    bcrypt hashes (``nats server passwd``) in a cluster's config; the server tells them
    apart by the ``$2a$`` prefix.
    """
    indent = " " * 6
    exports = "\n".join(indent + line for line in _exports())
    imports = "\n".join(indent + line for line in _imports())
    return (
        "accounts {\n"
        f"  {SERVICE_ACCOUNT} {{\n"
        "    jetstream: enabled\n"
        "    users: [\n"
        f"      {{ user: {_string(SERVICE_USER)}, password: {_string(service_password)} }}\n"
        "    ]\n"
        "    exports: [\n"
        f"{exports}\n"
        "    ]\n"
        "  }\n"
        f"  {INTEGRATOR_ACCOUNT} {{\n"
        f"    limits: {{ max_connections: {INTEGRATOR_MAX_CONNECTIONS},"
        f" max_subscriptions: {INTEGRATOR_MAX_SUBSCRIPTIONS},"
        f" max_payload: {INTEGRATOR_MAX_PAYLOAD}, max_leafnodes: 0 }}\n"
        "    users: [\n"
        f"      {{ user: {_string(INTEGRATOR_USER)}, password: {_string(integrator_password)},"
        " permissions: {\n"
        f"        subscribe: {{ allow: {_strings(INTEGRATOR_SUBSCRIBE, ' ' * 8)} }}\n"
        f"        publish: {{ allow: {_strings(INTEGRATOR_PUBLISH, ' ' * 8)} }}\n"
        "      } }\n"
        "    ]\n"
        "    imports: [\n"
        f"{imports}\n"
        "    ]\n"
        "  }\n"
        "}\n"
    )


def example_accounts_config() -> str:
    """The block as ``deploy/nats-server.conf.example`` holds it (placeholder hashes)."""
    return accounts_config(
        service_password=EXAMPLE_SERVICE_PASSWORD,
        integrator_password=EXAMPLE_INTEGRATOR_PASSWORD,
    )


def with_credentials(url: str, user: str, password: str) -> str:
    """``nats://user:password@host:port``: the form nats-py and FastStream log in with.

    nats-py does not percent-decode what it reads from a URL, so a password that would need
    encoding is refused rather than silently sent wrong.
    """
    if quote(password, safe="") != password or quote(user, safe="") != user:
        raise ValueError("a NATS user or password in a URL must be URL-safe")
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def without_credentials(url: str) -> str:
    """The URL with any ``user:password@`` removed: what may be shown, logged or shared."""
    parts = urlsplit(url.strip())
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


if __name__ == "__main__":
    print(example_accounts_config(), end="")
