"""Settings read the variables of README.md's *Configuration* and refuse unsafe production
set-ups."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_documented_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment = {
        "ADMINDUK_DATA_DIR": str(tmp_path),
        "ADMINDUK_DATABASE_URL": "postgresql://u@db/adminduk",
        "ADMINDUK_NATS_URL": "nats://a:4222, nats://b:4222",
        "ADMINDUK_HOST": "0.0.0.0",
        "ADMINDUK_INTAKE_PORT": "9000",
        "ADMINDUK_CONSOLE_PORT": "9001",
        "ADMINDUK_SIMULATOR_PORT": "9002",
        "WHATSAPP_API_BASE_URL": "https://graph.facebook.com/v21.0",
        "WHATSAPP_ACCESS_TOKEN": "token",
        "WHATSAPP_PHONE_NUMBER_ID": "123",
        "WHATSAPP_APP_SECRET": "app-s3cr3t",
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "ADMINDUK_OFFICE_REGION": "3275",
        "ADMINDUK_BOOTSTRAP_TOKEN": "boot",
        "ADMINDUK_INTEGRATOR_PASSWORD": "integrate",
        "ADMINDUK_NATS_DUPLICATE_WINDOW": "PT6H",
        "ADMINDUK_SIAK_URL": "https://siak.example.go.id/api/v1/",
        "ADMINDUK_SIAK_TOKEN": "siak-s3cr3t",
        "ADMINDUK_SIAK_RETRY_MAX": "PT10M",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    assert settings.data_dir == tmp_path
    assert settings.database_dsn() == "postgresql://u@db/adminduk"
    assert settings.nats_url == ["nats://a:4222", "nats://b:4222"]
    assert (settings.host, settings.intake_port, settings.console_port) == ("0.0.0.0", 9000, 9001)
    assert settings.simulator_port == 9002
    assert settings.whatsapp_api_base_url == "https://graph.facebook.com/v21.0"
    assert settings.whatsapp_access_token.get_secret_value() == "token"
    assert settings.whatsapp_phone_number_id == "123"
    assert settings.whatsapp_app_secret.get_secret_value() == "app-s3cr3t"
    assert settings.whatsapp_verify_token.get_secret_value() == "verify"
    assert settings.office_region == "3275"
    assert settings.bootstrap_token is not None
    assert settings.integrator_password.get_secret_value() == "integrate"
    assert settings.nats_duplicate_window == timedelta(hours=6)
    assert not settings.embedded_postgres
    assert not settings.embedded_nats
    assert not settings.uses_simulator
    assert settings.siak_base_url == "https://siak.example.go.id/api/v1"
    assert settings.siak_retry_max == timedelta(minutes=10)
    assert "app-s3cr3t" not in repr(settings)
    assert "siak-s3cr3t" not in repr(settings)
    assert "postgresql://u@db" not in repr(settings)


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ADMINDUK_DATABASE_URL",
        "ADMINDUK_NATS_URL",
        "WHATSAPP_API_BASE_URL",
        "ADMINDUK_SIAK_URL",
        "ADMINDUK_HOST",
        "ADMINDUK_SIMULATOR_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.embedded_postgres
    assert settings.embedded_nats
    assert settings.uses_simulator
    assert settings.siak_base_url == "http://127.0.0.1:8002/siak/v1"
    assert settings.office_region == "3603"
    assert settings.intake_port == 8000


def test_production_refuses_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMINDUK_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="WHATSAPP_APP_SECRET") as refused:
        Settings()
    for named in ("ADMINDUK_SIAK_TOKEN", "ADMINDUK_SIAK_URL", "ADMINDUK_SIGNING_KEY_FILE"):
        assert named in str(refused.value)


def test_simulator_runs_for_siak_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_API_BASE_URL", "https://graph.facebook.com/v21.0")
    monkeypatch.delenv("ADMINDUK_SIAK_URL", raising=False)
    settings = Settings()
    assert settings.uses_simulator
    assert not settings.simulates_whatsapp


@pytest.mark.parametrize(
    ("name", "value"), [("ADMINDUK_INTAKE_PORT", "0"), ("ADMINDUK_OFFICE_REGION", "36")]
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("hours", "days"), [("16:00-08:00", "1-5"), ("08:00-16:00", "0-5"), ("08:00-16:00", "")]
)
def test_bad_office_hours_are_refused_at_start(hours: str, days: str) -> None:
    with pytest.raises(ValidationError):
        Settings(office_hours=hours, office_days=days)
