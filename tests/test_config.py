"""Config loading and validation: clear one-line errors naming file, key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mixpe_sim.config import load_hardware, parse_overrides
from mixpe_sim.config.presets import list_presets, preset_dir
from mixpe_sim.errors import ConfigError
from tests.conftest import write_yaml


def preset_data(name: str) -> dict:
    return yaml.safe_load((preset_dir("hardware") / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", list_presets("hardware"))
def test_every_hardware_preset_loads(name: str) -> None:
    hw = load_hardware(name)
    assert hw.name == name
    assert hw.core_freq_hz > 0


def test_configs_are_frozen() -> None:
    hw = load_hardware()
    with pytest.raises(ValidationError, match="frozen"):
        hw.array.rows = 3  # type: ignore[misc]


def test_unknown_key_names_file_path_and_allowed(tmp_path: Path) -> None:
    data = preset_data("mixpe-w4a16")
    data["array"]["colz"] = 4
    path = write_yaml(tmp_path / "hw.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_hardware(str(path))
    message = str(info.value)
    assert str(path) in message and "array.colz" in message
    assert "allowed:" in message and "rows" in message and "cols" in message
    assert "\n" not in message


def test_negative_size_rejected(tmp_path: Path) -> None:
    data = preset_data("mixpe-w4a16")
    data["buffers"]["weight"]["capacity_bytes"] = -5
    path = write_yaml(tmp_path / "hw.yaml", data)
    with pytest.raises(ConfigError, match=r"buffers\.weight\.capacity_bytes: .*greater than 0"):
        load_hardware(str(path))


def test_wrong_type_rejected(tmp_path: Path) -> None:
    data = preset_data("mixpe-w4a16")
    data["array"]["rows"] = "many"
    path = write_yaml(tmp_path / "hw.yaml", data)
    with pytest.raises(ConfigError, match=r"array\.rows: .*integer"):
        load_hardware(str(path))


def test_error_inside_nested_memory_file_names_that_file(tmp_path: Path) -> None:
    memory = yaml.safe_load((preset_dir("memory") / "ddr4-3200.yaml").read_text())
    memory["timing"]["trcd_ns"] = 0
    mem_path = write_yaml(tmp_path / "mem.yaml", memory)
    with pytest.raises(ConfigError) as info:
        load_hardware("mixpe-w4a16", str(mem_path))
    assert str(info.value).startswith(f"{mem_path}: timing.trcd_ns: ")


def test_unknown_presets_list_the_allowed_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown hardware preset 'tpu'.*allowed: .*mixpe-w4a16"):
        load_hardware("tpu")
    with pytest.raises(ConfigError, match=r"unknown memory preset 'sram'.*allowed: .*flat"):
        load_hardware("mixpe-w4a16", "sram")


def test_overrides_apply_and_are_blamed_when_wrong() -> None:
    hw = load_hardware("mixpe-w4a16", None, parse_overrides(["array.rows=64", "quant.group_size=64"]))
    assert hw.array.rows == 64 and hw.quant.group_size == 64
    with pytest.raises(ConfigError, match=r"^--set array.rows=0: array.rows"):
        load_hardware("mixpe-w4a16", None, parse_overrides(["array.rows=0"]))
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        parse_overrides(["array.rows"])


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_hardware(str(path))


def test_memory_kind_must_be_known() -> None:
    with pytest.raises(ConfigError, match="kind"):
        load_hardware("mixpe-w4a16", None, parse_overrides(["memory.kind=sram"]))
