"""The generated NATS accounts block: one source for the embedded server and the cluster
example, config strings taken literally, credentials kept out of shown URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bus.permissions import (
    INTEGRATOR_PUBLISH,
    INTEGRATOR_SUBSCRIBE,
    accounts_config,
    example_accounts_config,
    with_credentials,
    without_credentials,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nats-server.conf.example"


def test_the_cluster_example_holds_the_generated_accounts() -> None:
    text = EXAMPLE.read_text()
    assert text.endswith(example_accounts_config()), (
        "deploy/nats-server.conf.example is out of date: replace its accounts block with "
        "the output of `python -m shared.bus.permissions`"
    )
    assert text.count("accounts {") == 1


def test_passwords_are_written_as_literal_strings() -> None:
    config = accounts_config(service_password='a"b\\c', integrator_password="$VAR #x")
    assert 'password: "a\\"b\\\\c"' in config
    assert 'password: "$VAR #x"' in config


@pytest.mark.parametrize("password", ["line\nbreak", "nul\x00", "tab\t"])
def test_control_characters_are_refused(password: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        accounts_config(service_password="ok", integrator_password=password)


def test_integrators_get_nothing_internal() -> None:
    assert "adminduk.events" not in " ".join(INTEGRATOR_SUBSCRIBE + INTEGRATOR_PUBLISH)
    assert all("ADMINDUK_EVENTS" not in subject for subject in INTEGRATOR_PUBLISH)
    assert not any(subject.startswith("adminduk.") for subject in INTEGRATOR_PUBLISH)


def test_service_urls_carry_url_safe_credentials_only() -> None:
    assert (
        with_credentials("nats://127.0.0.1:4222", "adminduk", "abc_DEF-123")
        == "nats://adminduk:abc_DEF-123@127.0.0.1:4222"
    )
    assert (
        with_credentials("nats://old:pw@nats-1:4222", "adminduk", "new")
        == "nats://adminduk:new@nats-1:4222"
    )
    with pytest.raises(ValueError, match="URL-safe"):
        with_credentials("nats://127.0.0.1:4222", "adminduk", "p@ss/word")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://adminduk:secret@nats-1.internal:4222", "nats://nats-1.internal:4222"),
        (" nats://token@127.0.0.1:4222 ", "nats://127.0.0.1:4222"),
        ("tls://nats-2:4222", "tls://nats-2:4222"),
    ],
)
def test_shown_urls_have_no_credentials(url: str, shown: str) -> None:
    assert without_credentials(url) == shown
