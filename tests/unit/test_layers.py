"""The direction of imports is enforced: `make lint` runs import-linter with the contracts
in pyproject.toml, and a wrong import breaks them (checked here on a copy of the code)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    for package in ("adminduk", "services", "shared"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, before the installed (editable) packages.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    if not LINT_IMPORTS.exists():
        pytest.fail("lint-imports is missing: import-linter belongs to the dev dependencies")
    return _copy(tmp_path)


def test_the_code_as_it_is_keeps_both_contracts(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_shared_importing_a_service_breaks_the_layers(tree: Path) -> None:
    with (tree / "shared" / "calendar.py").open("a") as module:
        module.write("\nimport services.intake  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "shared is not allowed to import services" in result.stdout
    assert "shared.calendar -> services.intake" in result.stdout


def test_a_service_importing_another_breaks_their_independence(tree: Path) -> None:
    with (tree / "services" / "integrations" / "webhooks.py").open("a") as module:
        module.write("\nfrom services.verification.domain import officers  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "services.integrations is not allowed to import services.verification" in (result.stdout)


def test_a_service_importing_the_composition_root_breaks_the_layers(tree: Path) -> None:
    with (tree / "services" / "notify" / "main.py").open("a") as module:
        module.write("\nimport adminduk.services  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "services is not allowed to import adminduk" in result.stdout
