"""The operators' tools against the running system (``adminduk run``), as an SRE uses
them from a second terminal: a replay of notify's consumer from position 1 sends the
citizen nothing again, a rebuild swaps the officers' queue in while the services run, and
``show`` tells the request's story without personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Runtime, serving
from tests.e2e.test_verification import BOOTSTRAP, KTP, PHONE, TICKET, Office, wait

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Runtime, Office]]:
    runtime = Runtime(tmp_path / "data", {"ADMINDUK_BOOTSTRAP_TOKEN": BOOTSTRAP})
    with serving(runtime):
        yield runtime, Office(runtime)


def all_sent(runtime: Runtime) -> bool:
    """Every message notify queued has gone out (or failed for good), by the log."""
    tail = runtime.cli(
        "events",
        "tail",
        "--from-position",
        "1",
        "--type",
        "NotificationQueued",
        "NotificationSent",
        "NotificationFailed",
    )
    assert tail.returncode == 0, tail.stderr
    kinds = [line.split()[3] for line in tail.stdout.splitlines()]
    return kinds.count("NotificationQueued") == len(kinds) - kinds.count("NotificationQueued")


def test_replay_sends_nothing_again_and_a_rebuild_swaps_in_while_running(
    running: tuple[Runtime, Office],
) -> None:
    runtime, office = running
    office.send_photo(KTP)
    found = TICKET.search(office.wait_for_reply(lambda t: "Nomor tiket:" in t))
    assert found is not None
    ticket = found[1]
    wait(lambda: office.state(ticket, BOOTSTRAP)["state"] == "in_queue" or None)
    wait(lambda: all_sent(runtime) or None)
    sent = len(office.replies())

    replay = runtime.cli(
        "events",
        "replay",
        "--from-position",
        "1",
        "--to",
        "consumer:notify-replies",
        "--reprocess",
    )
    assert replay.returncode == 0, replay.stderr
    delivered = re.search(r"(\d+) delivered, \d+ already handled, 0 failed", replay.stdout)
    assert delivered is not None and int(delivered[1]) > 0, replay.stdout

    # notify sends a citizen's messages in order, one at a time: had the replay queued a
    # message again, it would go out before the answer to this one.
    office.send_text("#INFO#KIA")
    wait(lambda: len(office.replies()) > sent or None)
    replies = office.replies()
    assert len(replies) == sent + 1, replies[sent:]
    assert "KIA" in replies[-1]

    rebuild = runtime.cli("projections", "rebuild", "verification")
    assert rebuild.returncode == 0, rebuild.stderr
    assert "swapped in" in rebuild.stdout
    listed = office.call("GET", "/api/requests", BOOTSTRAP)
    assert listed.status_code == 200
    assert ticket in {item["ticket"] for item in listed.json()}

    shown = runtime.cli("events", "show", ticket)
    assert shown.returncode == 0, shown.stderr
    for kind in (
        "WhatsAppMessageReceived",
        "RequestReceived",
        "RequestChecked",
        "NotificationSent",
    ):
        assert kind in shown.stdout
    for secret in (PHONE, "3603015708990001", "3603012001180003", "SITI AMINAH"):
        assert secret not in shown.stdout
