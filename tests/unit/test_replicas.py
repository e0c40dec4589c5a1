"""Replicas: the setting, the supervisor's plan of processes, and what lets replicas share
a port; every process on uvloop with httptools."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from adminduk.cli import build_parser
from adminduk.services import CONSUMING
from adminduk.supervisor import Supervisor, replica_counts, replica_env
from shared.config import MAX_REPLICAS, Replicas, Settings, load_settings, process_name
from shared.runtime.processes import free_port, listening_socket, socket_family
from shared.runtime.service import HTTP_PARSER, loop_factory, serve_http

PROJECT = Path(__file__).resolve().parents[2]


# -- the setting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default", "named"),
    [
        ("", 1, {}),
        ("1", 1, {}),
        ("2", 2, {}),
        ("intake=2,notify=3", 1, {"intake": 2, "notify": 3}),
        (" 3 , verification = 1 ", 3, {"verification": 1}),
        ("notify=2,4", 4, {"notify": 2}),
    ],
)
def test_replicas_are_a_count_named_counts_or_both(
    text: str, default: int, named: dict[str, int]
) -> None:
    replicas = Replicas.parse(text)
    assert replicas == Replicas(default, named)
    assert Replicas.parse(str(replicas)) == replicas


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("0", "1 to"),
        (str(MAX_REPLICAS + 1), "1 to"),
        ("two", "neither a count"),
        ("notify=", "neither a count"),
        ("notify=-1", "neither a count"),
        ("Notify=2", "neither a count"),
        ("notify=2,notify=3", "named twice"),
    ],
)
def test_wrong_replicas_are_refused_in_words(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        Replicas.parse(text)


def test_the_environment_sets_replicas_and_a_process_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADMINDUK_REPLICAS", raising=False)
    monkeypatch.delenv("ADMINDUK_REPLICA", raising=False)
    assert load_settings().replicas == Replicas()
    assert load_settings().replica is None
    monkeypatch.setenv("ADMINDUK_REPLICAS", "2,notify=3")
    monkeypatch.setenv("ADMINDUK_REPLICA", "1")
    settings = Settings()
    assert settings.replicas == Replicas(2, {"notify": 3})
    assert settings.replica == 1
    assert not settings.first_replica
    assert settings.process_name("notify") == "notify-2"
    monkeypatch.setenv("ADMINDUK_REPLICA", "0")
    assert Settings().first_replica
    assert Settings().process_name("notify") == "notify"
    monkeypatch.setenv("ADMINDUK_REPLICAS", "notify=zero")
    with pytest.raises(ValidationError, match="neither a count"):
        Settings()


def test_process_names() -> None:
    assert process_name("intake", None) == "intake"
    assert process_name("intake", 0) == "intake"
    assert process_name("intake", 1) == "intake-2"


# -- the supervisor's plan ---------------------------------------------------------------


PROCESSES = ("relay", *CONSUMING, "simulator")


def test_a_bare_count_replicates_the_consuming_services_only() -> None:
    counts = replica_counts(Replicas(2), PROCESSES)
    assert counts == {"relay": 1, **dict.fromkeys(CONSUMING, 2), "simulator": 1}
    assert set(CONSUMING) == {"intake", "verification", "issuance", "notify", "integrations"}


def test_named_counts_win_and_the_relay_gets_standbys_only_when_named() -> None:
    counts = replica_counts(Replicas(3, {"verification": 1, "relay": 2}), PROCESSES)
    assert counts["verification"] == 1
    assert counts["relay"] == 2
    assert counts["notify"] == 3


@pytest.mark.parametrize("name", ["simulator", "nobody"])
def test_processes_that_cannot_have_replicas_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"names {name}; only these run as replicas"):
        replica_counts(Replicas(1, {name: 2}), PROCESSES)


def test_each_replica_gets_its_index_and_its_share_of_the_send_rate() -> None:
    settings = load_settings(notify_rate=80)
    assert replica_env(settings, "notify", 0, 1) == {}
    assert replica_env(settings, "notify", 1, 2) == {
        "ADMINDUK_REPLICA": "1",
        "ADMINDUK_NOTIFY_RATE": "40.0",
    }
    assert replica_env(settings, "intake", 0, 2) == {"ADMINDUK_REPLICA": "0"}
    # The share parses back as the setting it is.
    assert load_settings(notify_rate=replica_env(settings, "notify", 0, 3)["ADMINDUK_NOTIFY_RATE"])


def test_the_supervisor_runs_each_replica_as_its_own_child(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, replicas="intake=2,notify=2")
    supervisor = Supervisor(settings, ("relay", "intake", "notify", "issuance"))
    children = [(child.name, child.service, dict(child.env)) for child in supervisor.children]
    assert [name for name, _, _ in children] == [
        "relay",
        "intake",
        "intake-2",
        "notify",
        "notify-2",
        "issuance",
    ]
    assert all(child.argv[-2:] == ["serve", child.service] for child in supervisor.children)
    assert children[1][2] == {"ADMINDUK_REPLICA": "0"}
    assert children[2][2] == {"ADMINDUK_REPLICA": "1"}
    assert children[0][2] == {} and children[5][2] == {}
    assert "ADMINDUK_REPLICA" in children[4][2] and "ADMINDUK_NOTIFY_RATE" in children[4][2]


def test_the_supervisor_refuses_replicas_of_the_simulator(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, replicas="simulator=2")
    with pytest.raises(SystemExit, match="only these run as replicas"):
        Supervisor(settings, ("relay", "simulator"))


def test_adminduk_run_takes_replicas_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert build_parser("run").parse_args(["run"]).replicas is None
    args = build_parser("run").parse_args(["run", "--replicas", "intake=2, notify=2"])
    assert Replicas.parse(args.replicas) == Replicas(1, {"intake": 2, "notify": 2})
    with pytest.raises(SystemExit) as raised:
        build_parser("run").parse_args(["run", "--replicas", "0"])
    assert raised.value.code == 2
    assert "a count is 1 to" in capsys.readouterr().err


# -- sharing a port ----------------------------------------------------------------------


def test_replicas_share_a_port_and_others_still_find_it_taken() -> None:
    port = free_port()
    first = listening_socket("127.0.0.1", port, reuse_port=True)
    try:
        second = listening_socket("127.0.0.1", port, reuse_port=True)
        second.close()
        # A process that does not ask to share still fails as it always did.
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port).close()
    finally:
        first.close()
    alone = listening_socket("127.0.0.1", port)
    try:
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port, reuse_port=True).close()
    finally:
        alone.close()


async def test_two_servers_on_one_port_both_answer() -> None:
    assert HTTP_PARSER == "httptools"
    port = free_port()
    stop = asyncio.Event()
    apps = []
    for name in ("first", "second"):
        app = FastAPI()

        @app.get("/who")
        async def who(name: str = name) -> str:
            return name

        apps.append(app)
    servers = [
        asyncio.create_task(serve_http(app, "127.0.0.1", port, stop, reuse_port=True))
        for app in apps
    ]
    try:
        answered: set[str] = set()
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    # A new connection each time: the kernel picks a listener per connection.
                    response = await client.get(
                        f"http://127.0.0.1:{port}/who", headers={"Connection": "close"}
                    )
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
                    continue
                answered.add(response.json())
                if len(answered) == 2:
                    break
        assert answered == {"first", "second"}
    finally:
        stop.set()
        await asyncio.gather(*servers)


# -- the event loop ----------------------------------------------------------------------


def test_loop_factory_is_uvloop_unless_turned_off() -> None:
    factory = loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    assert loop_factory(use_uvloop=False) is None


def test_loop_factory_falls_back_to_asyncio_without_uvloop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # an import of it now fails
    assert loop_factory() is None


@pytest.mark.parametrize(("uvloop", "expected"), [("true", "uvloop"), ("false", "asyncio")])
def test_a_service_process_runs_on_uvloop(tmp_path: Path, uvloop: str, expected: str) -> None:
    """``run_service`` as ``adminduk serve`` calls it: the body sees uvloop's loop (or
    asyncio's, when turned off); its log lines carry the replica's name, and its spans go
    to a file of its own under its service's name."""
    out = tmp_path / "loop"
    script = (
        "import asyncio, sys\n"
        "from opentelemetry import trace\n"
        "from shared.runtime.service import run_service\n"
        "async def main(settings, stop):\n"
        "    trace.get_tracer('test').start_span('replica').end()\n"
        "    loop = type(asyncio.get_running_loop()).__module__\n"
        f"    open({str(out)!r}, 'w').write(loop)\n"
        "run_service('notify', main)\n"
    )
    environment = {
        **os.environ,
        "ADMINDUK_DATA_DIR": str(tmp_path),
        "ADMINDUK_UVLOOP": uvloop,
        "ADMINDUK_REPLICA": "1",
        "OTEL_METRICS_EXPORTER": "none",
    }
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"):
        environment.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().split(".")[0] == expected
    assert " notify-2 " in done.stderr
    [span] = (tmp_path / "traces" / "notify-2.jsonl").read_text().splitlines()
    resource = json.loads(span)["resource"]["attributes"]
    assert resource["service.name"] == "adminduk-notify"
    assert resource["service.instance.id"] == "notify-2"


def test_a_socket_family_follows_the_host() -> None:
    assert socket_family("::1") == socket_family("::") == socket.AF_INET6
    assert socket_family("127.0.0.1") == socket_family("0.0.0.0") == socket.AF_INET
