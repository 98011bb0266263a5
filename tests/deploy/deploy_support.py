"""Shared helpers of the deployment tests: repository paths and unit-file parsing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = REPO / "systemd"
NIX_DIR = REPO / "nix"
ANSIBLE_DIR = REPO / "ansible"


def require_tool(name: str) -> str:
    """The tool's path, or skip the test saying which tool is missing and how CI gets it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make setup installs it); cannot run this check here")
    return path


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> directive -> every value, in order (systemd allows repeated directives)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: directive outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def cli_environment() -> dict[str, str]:
    """This process's environment without STREAMSCOUT_* settings, so `--help` runs never trip over
    a developer's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOUT_")}
