"""Production mode refuses every unsafe configuration, naming the setting (issue 15,
findings 1 and 2): no Cloud API URL (the simulator would stand in, with the real secrets),
placeholders, development values and weak secrets. Development mode is unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from adminduk.supervisor import Supervisor
from shared.config import DEV_SECRET, Settings
from shared.runtime.processes import free_port

# Strong values, each of the shape a real office has (random, long enough).
STRONG: dict[str, Any] = {
    "environment": "production",
    "database_url": SecretStr("postgresql://adminduk:Jq7fT2pL9wXv4sRz8bNc@db.internal/adminduk"),
    "nats_url": ["nats://adminduk:Vh3kQ8zR1mWp6tYx2LsD@nats-1.internal:4222"],
    "secret_key": SecretStr("u7Gk2Qw9Zp4Lr8Tx1Vn6Bc3Hs5Jd0Fa-YeMiKoPq"),
    "bootstrap_token": SecretStr("bt_R4nD0m-T0k3n-w1th-Ent40py-9xQ"),
    "integrator_password": SecretStr("Kp2Wq8Zr4Lm6Tx1Vb"),
    "whatsapp_api_base_url": "https://graph.facebook.com/v21.0",
    "whatsapp_access_token": SecretStr("EAAGm0PX4ZCpsBAKZCn7ZBwYkqZCtQ2ZAhZBvZC8u3R"),
    "whatsapp_phone_number_id": "106540352242922",
    "whatsapp_app_secret": SecretStr("3f9c2a7e81b64d05c9e1f7a2b8d36c4e"),
    "whatsapp_verify_token": SecretStr("vt-Hq9Lz2Wk7Rp4Xm1Nc"),
    "siak_url": "https://siak.example.go.id/api/v1",
    "siak_token": SecretStr("siak-Tz8Qm3Wr6Lp1Kx9Vb"),
    "signing_key_file": Path("/run/secrets/signing-key"),
    "signing_key_password": SecretStr("p12-Mw7Zq2Rk9Lt4Xv"),
}


def production(**changes: Any) -> Settings:
    return Settings(**{**STRONG, **changes})


def refusal(**changes: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        production(**changes)
    return str(refused.value)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ADMINDUK_", "WHATSAPP_")):
            monkeypatch.delenv(name)


def test_strong_settings_load() -> None:
    assert production().environment == "production"


# -- finding 1: a real Cloud API, never the simulator ------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (None, "unset"),
        ("http://graph.facebook.com/v21.0", "https"),
        ("https://127.0.0.1:8002/v21.0", "simulator"),
        ("https://localhost:8002/v21.0", "simulator"),
        ("graph.facebook.com/v21.0", "https"),
    ],
)
def test_production_needs_a_real_cloud_api(url: str | None, why: str) -> None:
    message = refusal(whatsapp_api_base_url=url)
    assert "WHATSAPP_API_BASE_URL" in message
    assert why in message


def test_production_never_starts_the_simulator(tmp_path: Path) -> None:
    settings = production(data_dir=tmp_path)
    assert not settings.uses_simulator
    with pytest.raises(SystemExit, match="simulator"):
        Supervisor(settings, services=("relay", "simulator"))


def test_serving_the_simulator_is_refused_in_production(tmp_path: Path) -> None:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ADMINDUK_", "WHATSAPP_"))},
        "ADMINDUK_ENVIRONMENT": "production",
        "ADMINDUK_DATA_DIR": str(tmp_path),
        "ADMINDUK_SIMULATOR_PORT": str(free_port()),
        "ADMINDUK_DATABASE_URL": STRONG["database_url"].get_secret_value(),
        "ADMINDUK_NATS_URL": STRONG["nats_url"][0],
        "ADMINDUK_SECRET_KEY": STRONG["secret_key"].get_secret_value(),
        "ADMINDUK_INTEGRATOR_PASSWORD": STRONG["integrator_password"].get_secret_value(),
        "WHATSAPP_API_BASE_URL": STRONG["whatsapp_api_base_url"],
        "WHATSAPP_ACCESS_TOKEN": STRONG["whatsapp_access_token"].get_secret_value(),
        "WHATSAPP_PHONE_NUMBER_ID": STRONG["whatsapp_phone_number_id"],
        "WHATSAPP_APP_SECRET": STRONG["whatsapp_app_secret"].get_secret_value(),
        "WHATSAPP_VERIFY_TOKEN": STRONG["whatsapp_verify_token"].get_secret_value(),
        "ADMINDUK_SIAK_URL": STRONG["siak_url"],
        "ADMINDUK_SIAK_TOKEN": STRONG["siak_token"].get_secret_value(),
        "ADMINDUK_SIGNING_KEY_FILE": str(STRONG["signing_key_file"]),
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
    }
    # A process of its own: a simulator that does start would serve until stopped.
    try:
        done = subprocess.run(
            [sys.executable, "-m", "adminduk", "serve", "simulator"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("adminduk serve simulator started in production")
    assert done.returncode != 0
    assert "simulator" in done.stderr
    assert "production" in done.stderr


# -- finding 2: placeholders, development values, weak secrets --------------------------

SECRETS = {
    "secret_key": "ADMINDUK_SECRET_KEY",
    "bootstrap_token": "ADMINDUK_BOOTSTRAP_TOKEN",
    "integrator_password": "ADMINDUK_INTEGRATOR_PASSWORD",
    "whatsapp_access_token": "WHATSAPP_ACCESS_TOKEN",
    "whatsapp_app_secret": "WHATSAPP_APP_SECRET",
    "whatsapp_verify_token": "WHATSAPP_VERIFY_TOKEN",
    "siak_token": "ADMINDUK_SIAK_TOKEN",
    "signing_key_password": "ADMINDUK_SIGNING_KEY_PASSWORD",
}


@pytest.mark.parametrize("field", sorted(SECRETS))
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("CHANGE-ME", "placeholder"),
        ("change_me_please_0123456789abcdef", "placeholder"),
        (DEV_SECRET, "development"),
        ("x", "short"),
        ("Kp2Wq8Zr4Lm", "short"),
        ("a" * 64, "guessable"),
        ("abababababababababababababababab", "guessable"),
    ],
)
def test_production_refuses_weak_secrets(field: str, value: str, why: str) -> None:
    message = refusal(**{field: SecretStr(value)})
    assert SECRETS[field] in message
    assert why in message
    # The refusal names the setting, never its value.
    if len(value) > 3:
        assert value not in message


def test_the_secret_key_needs_32_characters() -> None:
    message = refusal(secret_key=SecretStr("Lq8Zr3Wk6Tx1Vb9Nm4Pc"))
    assert "ADMINDUK_SECRET_KEY" in message
    assert "32" in message


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        (
            "database_url",
            SecretStr("postgresql://adminduk:CHANGE-ME@db.internal:5432/adminduk"),
            "ADMINDUK_DATABASE_URL",
        ),
        ("nats_url", ["nats://adminduk:CHANGE-ME@nats-1.internal:4222"], "ADMINDUK_NATS_URL"),
        ("nats_url", ["nats://adminduk:secret@nats-1.internal:4222"], "ADMINDUK_NATS_URL"),
        ("whatsapp_phone_number_id", "CHANGE-ME", "WHATSAPP_PHONE_NUMBER_ID"),
        ("whatsapp_phone_number_id", "100000000000001", "WHATSAPP_PHONE_NUMBER_ID"),
    ],
)
def test_production_refuses_placeholders_in_addresses(field: str, value: Any, named: str) -> None:
    message = refusal(**{field: value})
    assert named in message
    assert "CHANGE-ME" not in message


def test_every_offending_setting_is_named_at_once() -> None:
    message = refusal(
        secret_key=SecretStr("CHANGE-ME"),
        whatsapp_app_secret=SecretStr("x"),
        whatsapp_api_base_url=None,
    )
    for named in ("ADMINDUK_SECRET_KEY", "WHATSAPP_APP_SECRET", "WHATSAPP_API_BASE_URL"):
        assert named in message


def test_a_url_without_a_password_is_not_a_weak_one() -> None:
    """Postgres and NATS may authenticate otherwise (certificates, .pgpass, nkeys)."""
    settings = production(
        database_url=SecretStr("postgresql://adminduk@db.internal/adminduk"),
        nats_url=["tls://nats-1.internal:4222"],
    )
    assert settings.database_url is not None


def test_development_keeps_its_defaults() -> None:
    settings = Settings()
    assert settings.environment == "development"
    assert settings.uses_simulator
    assert settings.secret_key.get_secret_value() == DEV_SECRET
    # The same weak values are allowed (and the simulator used) outside production.
    assert Settings(secret_key=SecretStr("x"), whatsapp_app_secret=SecretStr("CHANGE-ME"))
