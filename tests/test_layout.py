"""The layout draws the layers: nothing loose at agent's root, no fakes shipped, light settings."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("agent", "connectors")


def test_agent_root_holds_only_the_package_files() -> None:
    loose = sorted(p.name for p in (ROOT / "agent").glob("*.py"))
    assert set(loose) <= {"__init__.py", "__main__.py"}, loose
    assert "__init__.py" in loose


def test_agent_root_packages_are_the_layers() -> None:
    packages = sorted(
        p.name for p in (ROOT / "agent").iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )
    assert packages == [
        "alerts",
        "cli",
        "config",
        "core",
        "report",
        "rules",
        "service",
        "sources",
        "state",
        "sync",
        "tasks",
    ]


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [str(name) for name in layers["layers"]]


def test_the_layers_contract_covers_every_package() -> None:
    packages = {p.parent.name for p in (ROOT / "agent").glob("*/__init__.py")}
    assert set(_contract_layers()) == packages


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_the_documented_diagram_is_the_contract(doc: str) -> None:
    """The diagram a reader checks against the folders is the order CI enforces."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    drawn = re.findall(r"^agent/(\w+) ", text, flags=re.MULTILINE)
    assert drawn == _contract_layers()


def test_no_fake_ships_in_the_installed_packages() -> None:
    fakes = [
        str(path.relative_to(ROOT))
        for top in SHIPPED
        for path in (ROOT / top).rglob("*")
        if "fake" in path.name.lower() and "__pycache__" not in path.parts
    ]
    assert fakes == []


def test_the_salesforce_fake_lives_with_the_tests() -> None:
    assert (ROOT / "tests" / "salesforce" / "fake" / "__init__.py").is_file()


def test_reading_the_settings_loads_no_vendor_sdk() -> None:
    """Connectors' packages load their names on first use: settings stay cheap to read."""
    probe = (
        "import sys\n"
        "from agent.config.settings import Settings\n"
        "Settings()\n"
        "import connectors.salesforce, connectors.hubspot, connectors.slack\n"
        "sdks = ('simple_salesforce', 'hubspot', 'slack_sdk')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in sdks))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
