"""docs/PRIVACY.md lists every event's personal fields as the contracts declare them."""

from __future__ import annotations

import re
from pathlib import Path

from shared.contracts import registry

PRIVACY = Path(__file__).resolve().parents[2] / "docs" / "PRIVACY.md"
ROW = re.compile(r"^\| `(?P<event>[A-Za-z]+)` \| (?P<fields>[^|]+) \| (?P<whose>[^|]+) \|$")


def documented() -> dict[str, tuple[frozenset[str], str | None]]:
    rows = {}
    for line in PRIVACY.read_text(encoding="utf-8").splitlines():
        if (match := ROW.match(line)) is not None:
            fields = frozenset(re.findall(r"`([^`]+)`", match["fields"]))
            whose = re.findall(r"`([^`]+)`", match["whose"])
            rows[match["event"]] = (fields, whose[0] if whose else None)
    return rows


def test_the_privacy_table_is_the_declared_one() -> None:
    declared = {
        cls.event_type: (cls.personal, cls.citizen_field)
        for cls in registry.classes()
        if cls.personal
    }
    assert documented() == declared
