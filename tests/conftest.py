from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mixpe_sim.config import load_hardware
from mixpe_sim.config.models import HardwareConfig

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def paper_hw() -> HardwareConfig:
    return load_hardware("mixpe-w4a16")


def hw_with(base: str = "mixpe-w4a16", memory: str | None = None, **overrides: Any) -> HardwareConfig:
    """A preset with `--set`-style overrides (key paths with dots)."""
    return load_hardware(base, memory, list(overrides.items()))


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path
