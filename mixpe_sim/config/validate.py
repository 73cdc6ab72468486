"""`mixpe-sim validate FILE`: check any of our YAML files against its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mixpe_sim.config.loader import config_error_from, load_hardware, load_yaml_file
from mixpe_sim.config.models import AreaTable, EnergyTable, HardwareConfig, MemoryConfig
from mixpe_sim.errors import ConfigError


def validate_file(path: Path) -> str:
    data = load_yaml_file(path)
    # an energy table also has a `pe` key (energy per PE class), so look for `sram` first
    if "sram" in data and "array" not in data:
        _validate_nested("energy", data, path)
        return f"ok: {path} is a valid energy table ({data.get('name')})"
    if "pe" in data or "array" in data:
        hw: HardwareConfig = load_hardware(str(path))
        return f"ok: {path} is a valid hardware config ({hw.name}, memory {hw.memory.name})"
    if "kind" in data:
        _validate_nested("memory", data, path)
        return f"ok: {path} is a valid memory config ({data.get('name')})"
    if "sram" in data:
        _validate_nested("energy", data, path)
        return f"ok: {path} is a valid energy table ({data.get('name')})"
    if "sram_macro" in data:
        _validate_nested("area", data, path)
        return f"ok: {path} is a valid area table ({data.get('name')})"
    raise ConfigError(str(path), "", "not a hardware (pe, array, ...), memory (kind: dram|flat|ideal), "
                      "energy (pe, sram, ...) or area (pe_um2, sram_macro, ...) file")


def _validate_nested(key: str, data: dict[str, Any], path: Path) -> None:
    schema: Any = {"memory": MemoryConfig, "energy": EnergyTable, "area": AreaTable}[key]
    try:
        TypeAdapter(schema).validate_python(data)
    except ValidationError as exc:
        # Locations are rendered against the hardware schema, so prefix the key this file fills.
        errors = [{**error, "loc": (key, *error["loc"])} for error in exc.errors()]
        raise config_error_from(errors, str(path), {key: str(path)}, {}) from None
